"""Bulk loading of subscriber profiles (``nextbest features load``).

A CSV file (the header names the features, the ``subscriber_id`` column is the key)
or a Parquet file (the columns name the features, list columns are sets) is read in
batches; each subscriber's profile becomes ONE JSON document at
``Keys.profile(hasher(subscriber_id))``, written whole (an existing profile is
replaced, none is ever half-written). The raw subscriber id is never stored.

A batch goes to Redis as one non-transactional pipeline of MSETs of ``MSET_KEYS``
profiles: per profile exactly what a SET does, at five times the rate of one SET per
profile (whose per-command cost, in redis-py and in Redis, dominated the load); the
service's commands interleave between the MSETs, each of which holds Redis for a
fraction of a millisecond.

Values are typed by the feature schema's subscriber section: numeric → a number (an
int when integral), set → a list of strings (a CSV cell is split on ``;``, items
stripped, empty ones dropped), categorical and text → a string. An undeclared CSV cell
that reads as a finite number becomes a number ("007" → 7: declare such a column
categorical), any other stays a string; undeclared Parquet values keep their types
(lists become lists of strings). An empty cell (CSV), a null, an empty string, an
empty set or a NaN (Parquet) leaves the feature out of the profile.

A bad row (no subscriber id, a number that does not parse, a wrong number of cells,
bad quoting, a line that is not UTF-8) is skipped and reported with its place: the
physical line of the CSV file where the record starts (the header is line 1; quoted
fields may span lines), or the 0-based row index of a Parquet file. With ``strict``
the whole file is checked first and refused if any row is bad. A file that cannot be
read, or whose header is unusable, is refused at once (``LoadError``).

The first good rows are looked at for personal data in clear: a column named like a
phone number or e-mail, or whose values look like one, that the schema does not mark
with ``log:`` is warned about (``policies.privacy``); the load goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis.asyncio as aioredis

from bandit.config import Settings
from bandit.store.identity import SubscriberHasher, phone_e164
from bandit.store.keys import Keys
from bandit.loader.batches import DEFAULT_BATCH_SIZE, ID_COLUMN, CanonicalId, _Batch, _Source
from bandit.loader.csv_rows import _open_csv
from bandit.loader.errors import LoadError, LoadReport, RowError
from bandit.loader.parquet_rows import _open_parquet
from bandit.loader.progress import _ProgressBar
from bandit.loader.writer import MSET_KEYS as MSET_KEYS  # re-exported
from bandit.loader.writer import _ProfileWriter
from policies.privacy import LogMode, unmarked_columns
from policies.schema import FeatureSchema

__all__ = ["DEFAULT_BATCH_SIZE", "ID_COLUMN", "LoadError", "LoadReport", "RowError", "check_file",
           "detect_format", "gc_paused", "load_profiles"]

log = logging.getLogger("nextbest.loader")

MAX_ERRORS = 1000          # row errors kept in a report (all of them are counted)
_PARQUET_MAGIC = b"PAR1"


def detect_format(path: Path) -> str:
    """"parquet" when the file starts with Parquet's magic bytes, else "csv"."""
    with open(path, "rb") as f:
        return "parquet" if f.read(4) == _PARQUET_MAGIC else "csv"


def check_file(path: Path) -> str:
    """Open the file and check its header (or Parquet schema) without reading rows:
    its format ("csv" or "parquet"), or ``LoadError`` saying why it cannot be loaded."""
    source = _open(Path(path), FeatureSchema.default(), DEFAULT_BATCH_SIZE)
    source.close()
    return "parquet" if source.unit == "row" else "csv"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a load allocates millions of objects that
    reference counting frees (no cycles), and the collector's passes over them cost
    10-20% of the load. For a process that only loads (the CLI); a service keeps it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def load_profiles(path: Path, store_client: aioredis.Redis, keys: Keys, hasher: SubscriberHasher,
                        schema: FeatureSchema, *, strict: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
                        progress: bool = False, canonical: CanonicalId | None = None) -> LoadReport:
    """Load every profile of a CSV or Parquet file into Redis; see the module docstring.
    ``canonical``: the deployment's reading of a subscriber id (``subscriber_ids: phone``:
    E.164; a refused id skips its row). Raises ``LoadError`` (nothing written) when the file
    is refused."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    path = Path(path)
    started = time.perf_counter()
    if strict:
        skipped, errors, unit = await _validate(path, schema, batch_size, progress, canonical)
        if skipped:
            raise LoadError(f"{path}: {skipped:,} bad row{'s' if skipped != 1 else ''}; "
                            f"nothing was written (--strict)", errors, skipped, unit)
    source = _open(path, schema, batch_size, canonical)
    loaded = skipped = 0
    errors: list[RowError] = []
    writer = _ProfileWriter(store_client, keys)
    marked: dict[str, LogMode | None] | None = {name: spec.log for name, spec in schema.subscriber.items()}
    bar = _ProgressBar(f"loading {path.name}", source) if progress else None
    try:
        for batch in _reading(path, source, lambda: loaded):   # noqa: B023 (the count so far, as wanted)
            if batch.errors:
                skipped += len(batch.errors)
                errors.extend(batch.errors[:MAX_ERRORS - len(errors)])
            if batch.ids and marked is not None:   # the first rows tell: one warning per field
                for warning in unmarked_columns(batch.profiles, marked):
                    log.warning("%s: %s", path, warning)
                marked = None
            if batch.ids:
                await writer.write(list(map(hasher, batch.ids)), batch.profiles)
                loaded += len(batch.ids)
            if bar is not None:
                bar.update(batch.position, loaded + skipped)
        await writer.flush()
    except BaseException:
        with contextlib.suppress(Exception):
            await writer.flush()   # Redis drops what a closed connection sent but it did not run yet
        raise
    finally:
        source.close()
        await writer.close()
        if bar is not None:
            bar.stop()
    return LoadReport(loaded, skipped, errors, time.perf_counter() - started, source.unit)


def _reading(path: Path, source: _Source, loaded: Callable[[], int]) -> Iterator[_Batch]:
    """The source's batches; a file that cannot be read to its end (an I/O error, a
    corrupt Parquet page) raises LoadError saying how far the load got."""
    batches = source.batches
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except LoadError:
            raise
        except Exception as exc:
            if not _is_read_error(exc):
                raise
            reason = " ".join(str(exc).split())
            raise LoadError(f"{path}: cannot read on: {reason}; {loaded():,} profiles were loaded before") from exc
        yield batch


def _is_read_error(exc: Exception) -> bool:
    if isinstance(exc, OSError):
        return True
    try:
        import pyarrow as pa
    except ImportError:
        return False
    return isinstance(exc, pa.ArrowException)


async def _validate(path: Path, schema: FeatureSchema, batch_size: int, progress: bool,
                    canonical: CanonicalId | None = None) -> tuple[int, list[RowError], str]:
    """Read and convert the whole file without writing: (bad rows, the first errors, unit)."""
    source = _open(path, schema, batch_size, canonical)
    skipped = rows = 0
    errors: list[RowError] = []
    bar = _ProgressBar(f"checking {path.name}", source) if progress else None
    try:
        for batch in _reading(path, source, lambda: 0):
            rows += len(batch.ids) + len(batch.errors)
            if batch.errors:
                skipped += len(batch.errors)
                errors.extend(batch.errors[:MAX_ERRORS - len(errors)])
            if bar is not None:
                bar.update(batch.position, rows)
            await asyncio.sleep(0)   # let a service sharing the loop breathe
    finally:
        source.close()
        if bar is not None:
            bar.stop()
    return skipped, errors, source.unit


def _open(path: Path, schema: FeatureSchema, batch_size: int, canonical: CanonicalId | None = None) -> _Source:
    try:
        kind = detect_format(path)
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LoadError(f"{path}: is a directory, not a CSV or Parquet file") from None
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if kind == "parquet":
        return _open_parquet(path, schema, batch_size, canonical)
    return _open_csv(path, schema, batch_size, canonical)


async def load_into_redis(settings: Settings, file: Path, schema: FeatureSchema, *, strict: bool = False,
                          batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> LoadReport:
    """``load_profiles`` into the Redis the settings name (the embedded one of a data
    directory is shared with a service running on it), with the deployment's hash secret."""
    from bandit.runtime import connect_redis
    from bandit.store.store import Store

    client, embedded = await connect_redis(settings)
    try:
        keys = Keys(settings.key_prefix)
        secret = await Store(client, keys).shared_secret(settings.subscriber_secret)
        with gc_paused():
            phones, region = settings.subscriber_ids == "phone", settings.phone_region
            return await load_profiles(file, client, keys, SubscriberHasher(secret), schema, strict=strict,
                                       batch_size=batch_size, progress=progress,
                                       canonical=(lambda raw: phone_e164(raw, region)) if phones else None)
    finally:
        await client.aclose()
        if embedded is not None:   # the last process using it shuts it down
            await asyncio.to_thread(embedded.stop, force=True, unless_in_use=True)
