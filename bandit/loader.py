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
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import datetime as dt
import decimal
import gc
import io
import itertools
import math
import operator
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from bandit.identity import SubscriberHasher
from bandit.keys import Keys
from policies.schema import FeatureSchema
from policies.vwtext import FeatureError

__all__ = ["DEFAULT_BATCH_SIZE", "ID_COLUMN", "LoadError", "LoadReport", "RowError", "check_file",
           "detect_format", "gc_paused", "load_profiles"]

ID_COLUMN = "subscriber_id"
DEFAULT_BATCH_SIZE = 2000
MAX_ERRORS = 1000          # row errors kept in a report (all of them are counted)
MSET_KEYS = 100            # profiles per MSET command in a batch's pipeline
_MAX_EXACT_INT = 2**53     # beyond this a number becomes a float, as in the feature schema
_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class RowError:
    """A skipped row: CSV: the physical line where its record starts (header = 1);
    Parquet: the 0-based row index."""

    line: int
    reason: str


@dataclass
class LoadReport:
    loaded: int
    skipped: int
    errors: list[RowError]     # the first MAX_ERRORS of them
    seconds: float
    unit: str = "line"         # how RowError.line counts: "line" (CSV) or "row" (Parquet row index)

    @property
    def rate(self) -> float:
        """Rows (loaded and skipped) per second."""
        return (self.loaded + self.skipped) / self.seconds if self.seconds > 0 else 0.0


class LoadError(Exception):
    """The file is refused: missing, an unusable header, or bad rows with ``strict``;
    nothing was written. Or it could not be read to its end (an I/O error, a corrupt
    Parquet page): the message says how many profiles were loaded before."""

    def __init__(self, message: str, errors: list[RowError] | None = None, skipped: int = 0,
                 unit: str = "line") -> None:
        super().__init__(message)
        self.errors = errors or []
        self.skipped = skipped
        self.unit = unit


@dataclass
class _Batch:
    """What a reader gives per batch: the good rows' subscriber ids and profiles, the
    bad rows, and how far into the file it got (bytes for CSV, rows for Parquet)."""

    ids: list[str]
    profiles: list[dict[str, Any]]
    errors: list[RowError]
    position: int


@dataclass
class _Source:
    unit: str                  # "line" | "row"
    total: int                 # progress total: file bytes (CSV) or rows (Parquet)
    batches: Iterator[_Batch]
    close: Callable[[], None] = field(default=lambda: None)


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
                        progress: bool = False) -> LoadReport:
    """Load every profile of a CSV or Parquet file into Redis; see the module docstring.
    Raises ``LoadError`` (nothing written) when the file is refused."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    path = Path(path)
    started = time.perf_counter()
    if strict:
        skipped, errors, unit = await _validate(path, schema, batch_size, progress)
        if skipped:
            raise LoadError(f"{path}: {skipped:,} bad row{'s' if skipped != 1 else ''}; "
                            f"nothing was written (--strict)", errors, skipped, unit)
    source = _open(path, schema, batch_size)
    loaded = skipped = 0
    errors: list[RowError] = []
    writer = _ProfileWriter(store_client, keys)
    bar = _ProgressBar(f"loading {path.name}", source) if progress else None
    try:
        for batch in _reading(path, source, lambda: loaded):   # noqa: B023 (the count so far, as wanted)
            if batch.errors:
                skipped += len(batch.errors)
                errors.extend(batch.errors[:MAX_ERRORS - len(errors)])
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


class _ProfileWriter:
    """Writes a batch of profiles as one pipeline of MSETs of MSET_KEYS profiles each,
    on a dedicated connection, packed here: redis-py packs argument by argument, which
    would cost more than all the rest of the load. A batch's replies are read before
    the next batch is sent, so Redis stores one batch while the next is read."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._pool = client.connection_pool
        self._connection: Any = None
        self._unread = 0
        self._prefix = keys.profile("")

    async def write(self, hashes: list[str], profiles: list[dict[str, Any]]) -> None:
        if not hashes:
            return
        keys = list(map(str.encode, map(self._prefix.__add__, hashes)))
        docs = list(map(orjson.dumps, profiles))
        pairs = list(map(b"$%d\r\n%b\r\n$%d\r\n%b\r\n".__mod__, zip(map(len, keys), keys, map(len, docs), docs)))
        parts: list[bytes] = []
        for at in range(0, len(pairs), MSET_KEYS):
            chunk = pairs[at:at + MSET_KEYS]
            parts.append(b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * len(chunk)))
            parts.extend(chunk)
        await self.flush()
        if self._connection is None:
            self._connection = self._pool.make_connection()
            await self._connection.connect()
        try:
            await self._connection.send_packed_command(b"".join(parts), check_health=False)
        except BaseException:
            await self.close()
            raise
        self._unread = len(parts) - len(pairs)

    async def flush(self) -> None:
        """Wait until Redis has stored what was sent; raises on an error reply."""
        try:
            while self._unread:
                await self._connection.read_response()
                self._unread -= 1
        except BaseException:
            await self.close()   # replies may be left unread: never reuse the connection
            raise

    async def close(self) -> None:
        self._unread = 0
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.disconnect()


async def _validate(path: Path, schema: FeatureSchema, batch_size: int,
                    progress: bool) -> tuple[int, list[RowError], str]:
    """Read and convert the whole file without writing: (bad rows, the first errors, unit)."""
    source = _open(path, schema, batch_size)
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


def _open(path: Path, schema: FeatureSchema, batch_size: int) -> _Source:
    try:
        kind = detect_format(path)
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LoadError(f"{path}: is a directory, not a CSV or Parquet file") from None
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if kind == "parquet":
        return _open_parquet(path, schema, batch_size)
    return _open_csv(path, schema, batch_size)


def _assemble(names: list[str], ids: Any, columns: list[Any], bad: dict[int, str]) -> tuple[list[str], list[Any]]:
    """Rows from converted columns: (ids, profiles) of the rows not in ``bad``; a None
    value leaves its feature out. Row by row only where a value is None."""
    n = len(ids)
    if columns:
        profiles = list(map(dict, map(zip, itertools.repeat(names), zip(*columns))))
        for name, column in zip(names, columns):
            if None in column:
                for profile in itertools.compress(profiles, map(operator.is_, column, itertools.repeat(None))):
                    del profile[name]
    else:
        profiles = [{} for _ in range(n)]
    if bad:
        keep = [i not in bad for i in range(n)]
        return list(itertools.compress(ids, keep)), list(itertools.compress(profiles, keep))
    return list(ids), profiles


class _ProgressBar:
    """rich progress on stderr: how far into the file (bytes for CSV, rows for
    Parquet), rows read and rows per second."""

    def __init__(self, description: str, source: _Source) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._started = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rows]:>12,} rows"), TextColumn("{task.fields[rate]:>9,.0f} rows/s"),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False)
        self._task = self._progress.add_task(description, total=source.total or None, rows=0, rate=0.0)
        self._progress.start()

    def update(self, position: int, rows: int) -> None:
        elapsed = time.perf_counter() - self._started
        self._progress.update(self._task, completed=position, rows=rows, rate=rows / elapsed if elapsed else 0.0)

    def stop(self) -> None:
        self._progress.stop()


# --------------------------------------------------------------------------- values

def _number(text: str) -> int | float:
    """A finite number written in ``text`` (an int when integral and exact); raises
    ValueError. Accepts what float() does, except NaN, infinities, underscores and
    non-ASCII digits."""
    try:
        value: int | float = int(text)
    except ValueError:
        value = float(text)
        if not math.isfinite(value) or "_" in text or not text.isascii():
            raise ValueError(text) from None
        if value.is_integer() and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return int(value)
        return value
    if "_" in text or not text.isascii():
        raise ValueError(text)
    if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
        return value
    return float(value)


_NUMBER_START = frozenset("0123456789+-. \t")


def _guess(cell: str) -> int | float | str | None:
    """An undeclared CSV cell: a number when it reads as one, else the text; None
    (left out) when empty."""
    if not cell:
        return None
    if cell[0] in _NUMBER_START:
        try:
            return _number(cell)
        except ValueError:
            pass
    return cell


def _text(name: str, value: Any) -> str | None:
    """A categorical or text value as a string (numbers as their shortest text, as the
    feature schema writes categories); None for an empty string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise FeatureError(name, "numeric values must be finite")
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    if isinstance(value, decimal.Decimal):
        return _text(name, float(value))
    if isinstance(value, (dt.date, dt.time)):   # datetime is a date
        return value.isoformat()
    raise FeatureError(name, f"expected a string or number, got {_kind(value)}")


def _numeric(name: str, value: Any) -> int | float | None:
    """A declared numeric value: a finite number (int when integral); None for NaN or
    an empty string."""
    if isinstance(value, bool):
        raise FeatureError(name, "expected a number, got a boolean")
    if isinstance(value, int):
        return value if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT else float(value)
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise FeatureError(name, "numeric values must be finite")
        return int(value) if value.is_integer() and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT else value
    if isinstance(value, str):
        if not value:
            return None
        try:
            return _number(value)
        except ValueError:
            raise FeatureError(name, f"expected a number, got {_clip(value)!r}") from None
    raise FeatureError(name, f"expected a number, got {_kind(value)}")


def _split_set(cell: str) -> list[str] | None:
    """'a; b;;c' → ['a', 'b', 'c']: split on ';', stripped, empty items dropped; None
    (left out) when no item is left."""
    return [item for item in map(str.strip, cell.split(";")) if item] or None


def _set(name: str, value: Any) -> list[str] | None:
    """A set value (a list, or one 'a;b;c' string) as a list of strings; None when empty."""
    if isinstance(value, str):
        return _split_set(value)
    if isinstance(value, (list, tuple)):
        return _list_of_text(name, value)
    raise FeatureError(name, f"expected a list or an 'a;b;c' string, got {_kind(value)}")


def _list_of_text(name: str, items: Any) -> list[str] | None:
    """List items as strings (numbers as categories), nulls and empty strings dropped;
    None when none is left."""
    out: list[str] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, (list, tuple, dict)):
            raise FeatureError(name, f"list items must be strings or numbers, got {_kind(item)}")
        if text := _text(name, item):
            out.append(text)
    return out or None


def _native(name: str, value: Any) -> Any:
    """An undeclared Parquet value as JSON can hold it; None for an empty string or NaN."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise FeatureError(name, "numeric values must be finite")
        return value
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, (list, tuple)):
        return _list_of_text(name, value)
    if isinstance(value, decimal.Decimal):
        return _native(name, float(value))
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    raise FeatureError(name, f"cannot store a {_kind(value)} in a profile")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


# --------------------------------------------------------------------------- CSV

def _open_csv(path: Path, schema: FeatureSchema, batch_size: int) -> _Source:
    try:
        raw = open(path, "rb")   # noqa: SIM115 (the source closes it)
        total = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        # Lines as the csv module wants them (newline=""); a UTF-8 byte order mark (as
        # Excel writes) is dropped; bytes that are not UTF-8 pass as surrogates, and
        # the records holding them are refused by line (_non_utf8_lines).
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise LoadError(f"{path}: the file is empty: expected a header line naming the columns, "
                            f"with {ID_COLUMN!r} among them") from None
        except csv.Error as exc:
            raise LoadError(f"{path}:1: cannot read the header: {exc}") from None
        try:
            "".join(header).encode()
        except UnicodeEncodeError:
            raise LoadError(f"{path}:1: the header is not UTF-8 text (save the file as UTF-8)") from None
        names = _check_header([name.strip() for name in header], f"{path}:1", "column")
    except BaseException:
        raw.close()
        raise
    return _Source("line", total, _csv_batches(path, raw, reader, names, schema, batch_size), raw.close)


def _non_utf8_lines(path: Path) -> set[int]:
    """The numbers of the lines that are not UTF-8 text: none, usually, which one
    decoding pass at C speed shows; else a second pass finds them."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        try:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return set()
        except UnicodeDecodeError:
            pass
        f.seek(0)
        bad = set()
        lines = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
        for number, line in enumerate(lines, 1):
            if not line.isascii():
                try:
                    line.encode()
                except UnicodeEncodeError:
                    bad.add(number)
        lines.detach()
        return bad


def _check_header(names: list[str], where: str, what: str) -> list[str]:
    if names == [] or names == [""]:
        raise LoadError(f"{where}: the header is empty: expected the column names, with {ID_COLUMN!r} among them")
    seen: dict[str, int] = {}
    for index, name in enumerate(names, 1):
        if not name:
            raise LoadError(f"{where}: {what} {index} has no name")
        if name in seen:
            raise LoadError(f"{where}: duplicate {what} name {name!r} ({what}s {seen[name]} and {index})")
        seen[name] = index
    if ID_COLUMN not in seen:
        raise LoadError(f"{where}: no {ID_COLUMN!r} {what} (the key of each profile); {what}s: "
                        f"{', '.join(_clip(n, 30) for n in names[:20])}{', ...' if len(names) > 20 else ''}")
    return names


def _csv_batches(path: Path, raw: Any, reader: Any, names: list[str], schema: FeatureSchema,
                 batch_size: int) -> Iterator[_Batch]:
    bad_lines = _non_utf8_lines(path)
    width = len(names)
    id_index = names.index(ID_COLUMN)
    features = [(index, name, _declared(schema, name)) for index, name in enumerate(names) if index != id_index]
    feature_names = [name for _, name, _ in features]
    last = reader.line_num          # the last physical line read
    done = False
    while not done:
        # Read a batch of records at C speed. Which line each starts on is worked out
        # afterwards, and only when some record is bad.
        records: list[list[str]] = []
        runs: list[tuple[int, int]] = []    # (first record, its line) of each stretch read without error
        errors: list[RowError] = []
        while not done and len(records) < batch_size:
            first = len(records)
            runs.append((first, last + 1))
            try:
                records.extend(itertools.islice(reader, batch_size - first))   # keeps what it read on error
            except csv.Error as exc:    # the reader goes on with the next line
                errors.append(RowError(last + 1 + _lines_of(records[first:]), f"malformed CSV: {exc}"))
                last = reader.line_num
                runs.append((len(records), last + 1))
                continue
            done = len(records) < batch_size
            last = reader.line_num
        runs.append((len(records), last + 1))
        lines: list[int] | None = None
        if bad_lines or not _all_width(records, width):
            lines = _record_lines(records, runs)
            kept: list[int] = []
            for i, record in enumerate(records):
                if bad_lines and (utf8 := _bad_line_in(record, lines[i], bad_lines)):
                    errors.append(RowError(utf8, "not UTF-8 text"))
                elif len(record) == width:
                    kept.append(i)
                elif record:            # (a blank line is no record)
                    errors.append(RowError(lines[i], f"expected {width} cells, got {len(record)}"))
            records = [records[i] for i in kept]
            lines = [lines[i] for i in kept]
        bad: dict[int, str] = {}
        if records:
            cells = list(zip(*records))
            ids = cells[id_index]
            if "" in ids or any(map(str.isspace, ids)):
                for i, subscriber_id in enumerate(ids):
                    if not subscriber_id or subscriber_id.isspace():
                        bad[i] = f"empty {ID_COLUMN}"
            columns = [_csv_column(name, declared, cells[index], bad) for index, name, declared in features]
            kept_ids, profiles = _assemble(feature_names, ids, columns, bad)
        else:
            kept_ids, profiles = [], []
        if bad:
            if lines is None:
                lines = _record_lines(records, runs)
            errors.extend(RowError(lines[i], reason) for i, reason in bad.items())
        if errors:
            errors.sort(key=operator.attrgetter("line"))
        yield _Batch(kept_ids, profiles, errors, raw.tell())


def _all_width(records: list[list[str]], width: int) -> bool:
    return not records or set(map(len, records)) == {width}


def _breaks(record: list[str]) -> int:
    """Line breaks inside a record's quoted fields (as newline="" reading splits lines)."""
    joined = "".join(record)
    return joined.count("\n") + joined.count("\r") - joined.count("\r\n")


def _lines_of(records: list[list[str]]) -> int:
    """Physical lines these records took up."""
    return len(records) + sum(map(_breaks, records))


def _record_lines(records: list[list[str]], runs: list[tuple[int, int]]) -> list[int]:
    """The line each record starts on. ``runs`` gives the first line of stretches of
    records read without error (the last entry: the line after the batch)."""
    lines: list[int] = []
    for (start, line), (end, next_line) in itertools.pairwise(runs):
        if next_line - line == end - start:     # one line each: the usual case
            lines.extend(range(line, next_line))
            continue
        for record in records[start:end]:
            lines.append(line)
            line += 1 + _breaks(record)
    return lines


def _bad_line_in(record: list[str], line: int, bad_lines: set[int]) -> int:
    """The first line of the record that is not UTF-8, or 0."""
    for number in range(line, line + 1 + _breaks(record)):
        if number in bad_lines:
            return number
    return 0


def _declared(schema: FeatureSchema, name: str) -> str | None:
    spec = schema.subscriber.get(name)
    return spec.type if spec is not None else None


def _csv_column(name: str, declared: str | None, cells: tuple[str, ...], bad: dict[int, str]) -> Any:
    """One column of a batch of CSV records as profile values (None: left out); a row
    whose cell cannot be converted goes into ``bad`` (its first reason)."""
    if declared in ("categorical", "text"):
        return [cell or None for cell in cells] if "" in cells else cells
    if declared == "set":
        joined = ";".join(filter(None, cells))
        if not joined or (joined[0] != ";" != joined[-1] and ";;" not in joined and len(joined.split()) == 1):
            # no empty items, no spaces: split as it is
            return [cell.split(";") if cell else None for cell in cells]
        return [_split_set(cell) if cell else None for cell in cells]
    numbers = _numbers(cells)
    if numbers is not None:
        return numbers
    if declared is None:
        return list(map(_guess, cells))
    out: list[Any] = []
    append = out.append
    for i, cell in enumerate(cells):
        if not cell:
            append(None)
            continue
        try:
            append(_number(cell))
        except ValueError:
            bad.setdefault(i, str(FeatureError(name, f"expected a number, got {_clip(cell)!r}")))
            append(None)
    return out


def _numbers(cells: tuple[str, ...]) -> list[Any] | None:
    """The column as numbers (None for empty cells) when every other cell is a plain
    finite number, converted at C speed; None when some cell needs a closer look."""
    if "" in cells:
        present = list(filter(None, cells))
        if not present:
            return [None] * len(cells)
        values = _numbers(tuple(present))
        if values is None:
            return None
        it = iter(values)
        return [next(it) if cell else None for cell in cells]
    text = "".join(cells)
    if "_" in text or not text.isascii():
        return None
    try:
        ints = list(map(int, cells))
    except ValueError:
        pass
    else:
        if -_MAX_EXACT_INT <= min(ints) and max(ints) <= _MAX_EXACT_INT:
            return ints
        return None
    try:
        floats = list(map(float, cells))
    except ValueError:
        return None
    if not math.isfinite(sum(floats)):   # a NaN or an infinity (or a sum too large: look closer)
        return None
    limit = _MAX_EXACT_INT
    return [int(v) if v.is_integer() and -limit <= v <= limit else v for v in floats]


# --------------------------------------------------------------------------- Parquet

def _open_parquet(path: Path, schema: FeatureSchema, batch_size: int) -> _Source:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise LoadError(f"{path}: reading Parquet needs the 'pyarrow' package (pip install pyarrow)") from None
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"{path}: cannot read as Parquet: {exc}") from None
    arrow_schema = parquet.schema_arrow
    names = _check_header([str(name) for name in arrow_schema.names], str(path), "column")
    for arrow_field in arrow_schema:
        _check_parquet_type(path, arrow_field.name, arrow_field.type, arrow_field.name == ID_COLUMN)
    batches = _parquet_batches(parquet, names, schema, batch_size)
    return _Source("row", parquet.metadata.num_rows, batches, parquet.close)


def _check_parquet_type(path: Path, name: str, type_: Any, is_id: bool) -> None:
    import pyarrow as pa

    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if is_id:
        if not (pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_integer(type_)
                or pa.types.is_null(type_) or getattr(pa.types, "is_string_view", lambda t: False)(type_)):
            raise LoadError(f"{path}: column {ID_COLUMN!r} has type {type_}: expected strings or integers")
        return
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        if pa.types.is_nested(type_.value_type):
            raise LoadError(f"{path}: column {name!r} has type {type_}: list items must be strings or numbers")
        return
    if pa.types.is_nested(type_):
        raise LoadError(f"{path}: column {name!r} has type {type_}, which a profile cannot hold "
                        f"(expected strings, numbers, booleans, dates or lists of them)")


def _parquet_batches(parquet: Any, names: list[str], schema: FeatureSchema, batch_size: int) -> Iterator[_Batch]:
    id_index = names.index(ID_COLUMN)
    features = [(index, name, schema.subscriber.get(name)) for index, name in enumerate(names) if index != id_index]
    feature_names = [name for _, name, _ in features]
    start = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        bad: dict[int, str] = {}
        ids = _parquet_ids(batch.column(id_index), bad)
        columns = [_parquet_column(name, spec, batch.column(index), bad) for index, name, spec in features]
        kept_ids, profiles = _assemble(feature_names, ids, columns, bad)
        errors = [RowError(start + i, reason) for i, reason in sorted(bad.items())]
        start += batch.num_rows
        yield _Batch(kept_ids, profiles, errors, start)


def _parquet_ids(array: Any, bad: dict[int, str]) -> list[str | None]:
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    values = array.to_pylist()
    if pa.types.is_integer(array.type):
        values = [None if v is None else str(v) for v in values]
    for i, value in enumerate(values):
        if value is None or not value or value.isspace():
            bad[i] = f"{'missing' if value is None else 'empty'} {ID_COLUMN}"
            values[i] = None
    return values


def _parquet_column(name: str, spec: Any, array: Any, bad: dict[int, str]) -> list[Any]:
    """A column of one batch as profile values (None: left out); a row whose value
    cannot be converted goes into ``bad`` (the first reason per row)."""
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    type_ = array.type
    if pa.types.is_decimal(type_) or pa.types.is_float16(type_):
        array = array.cast(pa.float64())
        type_ = array.type
    if pa.types.is_floating(type_) and array.null_count < len(array):
        import pyarrow.compute as pc

        array = pc.if_else(pc.is_nan(array), pa.scalar(None, type_), array)   # NaN: missing
    values = array.to_pylist()
    declared = spec.type if spec is not None else None
    # Fast paths for the common column types; everything else goes value by value.
    if pa.types.is_integer(type_) and declared in (None, "numeric"):
        if declared is None or not _has_large(array):
            return values
    elif pa.types.is_floating(type_) and declared in (None, "numeric") and not _has_infinity(array):
        if declared is None:
            return values
        limit = _MAX_EXACT_INT
        return [int(v) if v is not None and v.is_integer() and -limit <= v <= limit else v for v in values]
    elif (pa.types.is_string(type_) or pa.types.is_large_string(type_)) and declared in (None, "categorical",
                                                                                           "text"):
        return [v or None for v in values]
    elif pa.types.is_boolean(type_) and declared is None:
        return values
    elif _is_list_of_strings(type_) and declared in (None, "set"):
        return [(list(filter(None, v)) or None) if v else None for v in values]
    elif pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        values = _decode_binary(name, values, bad)
    convert = {None: _native, "numeric": _numeric, "categorical": _text, "text": _text, "set": _set}[declared]
    out: list[Any] = []
    append = out.append
    for i, value in enumerate(values):
        if value is None:
            append(None)
            continue
        try:
            append(convert(name, value))
        except FeatureError as exc:
            bad.setdefault(i, str(exc))
            append(None)
    return out


def _decode_binary(name: str, values: list[Any], bad: dict[int, str]) -> list[Any]:
    out: list[Any] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(value.decode())
        except UnicodeDecodeError:
            bad.setdefault(i, str(FeatureError(name, "binary value that is not UTF-8 text")))
            out.append(None)
    return out


def _is_list_of_strings(type_: Any) -> bool:
    import pyarrow as pa

    return ((pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_))
            and (pa.types.is_string(type_.value_type) or pa.types.is_large_string(type_.value_type)))


def _has_large(array: Any) -> bool:
    import pyarrow.compute as pc

    bounds = pc.min_max(array)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low is not None and (low < -_MAX_EXACT_INT or high > _MAX_EXACT_INT)


def _has_infinity(array: Any) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(pc.is_inf(array)).as_py())
