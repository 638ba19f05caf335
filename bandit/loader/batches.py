"""What the CSV and Parquet readers share: the batch and source they give, the
header check, and rows assembled from converted columns."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bandit.loader.convert import _clip
from bandit.loader.errors import LoadError, RowError

ID_COLUMN = "subscriber_id"
DEFAULT_BATCH_SIZE = 2000


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


# The id a profile is keyed by, from the id column's text (``canonical_subscriber_id``): the
# deployment's ``subscriber_ids`` rule; a ValueError refuses the row with its reason.
CanonicalId = Callable[[str], str]


def _canonical_ids(ids: Any, bad: dict[int, str], canonical: CanonicalId | None) -> Any:
    """``ids`` as profiles are keyed (E.164 phone numbers with ``subscriber_ids: phone``); a
    refused one puts its row in ``bad`` with the reason."""
    if canonical is None:
        return ids
    out = list(ids)
    for i, subscriber_id in enumerate(out):
        if i in bad or subscriber_id is None:
            continue
        try:
            out[i] = canonical(subscriber_id)
        except ValueError as exc:
            bad[i] = f"{ID_COLUMN}: {exc}"
    return out


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
