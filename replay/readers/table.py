"""Flat tables of logged events, Parquet or CSV (pyarrow, streamed by record batch),
and the row form ``replay.export`` writes: both directions here, so they round-trip.

One row per event; the features, PMF, offer ids and extra fields are JSON text
(docs/replay.md, "Reading logs"). Columns not listed here are ignored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from replay.readers.event import (
    DEFAULT_CHUNK_SIZE,
    LoggedEvent,
    Progress,
    chunked,
    numbers,
    objects,
    parse_json,
    strings,
)
from replay.validate import (
    BAD_PMF,
    MALFORMED,
    MISSING_PROBABILITY,
    MISSING_REWARD,
    NO_ACTIONS,
    UNPARSEABLE,
    UNREADABLE,
    Checker,
    Defect,
    LogError,
    ValidationReport,
    clip,
)

REQUIRED = ("event_id", "timestamp", "context", "actions", "chosen", "probability", "reward")
OPTIONAL = ("pmf", "action_ids", "skip_learn", "policy", "extra")
COLUMNS = REQUIRED + OPTIONAL
TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def read_table(path: str | Path, *, format: str = "auto", chunk_size: int = DEFAULT_CHUNK_SIZE,
               strict: bool = False, report: ValidationReport | None = None,
               progress: Progress | None = None) -> Iterator[list[LoggedEvent]]:
    """Chunks of good events from a Parquet or CSV table (``format``: "parquet", "csv",
    or "auto" by the suffix). A missing file, an unknown format, a file that is not a
    table or lacks a required column raises ``LogError`` at once, before iteration;
    bad rows go to ``report`` (or with ``strict`` raise ``LogError``)."""
    path = Path(path)
    kind = TABLE_SUFFIXES.get(path.suffix.lower()) if format == "auto" else format
    if kind not in ("parquet", "csv"):
        raise LogError(f"{path}: cannot tell the table format from the name: use format 'parquet' or 'csv'"
                       if format == "auto" else f"unknown table format {format!r}: expected 'parquet' or 'csv'")
    if not path.is_file():
        raise LogError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    checker = Checker(report if report is not None else ValidationReport(), strict)
    opened = _parquet_rows if kind == "parquet" else _csv_rows
    return chunked(_events(opened(path, chunk_size, progress), str(path), checker), chunk_size)


Rows = Iterator[tuple[int, dict[str, Any] | Defect]]
"""(line or row number, the row's cells by column, or a defect found while reading)."""


def _events(rows: tuple[str, Rows], name: str, checker: Checker) -> Iterator[LoggedEvent]:
    unit, cells = rows
    for number, row in cells:
        if isinstance(row, Defect):
            checker.reject(row, name, number, row.snippet, unit)
            continue
        try:
            event = row_event(row)
            checker.admit(event)
        except Defect as defect:
            checker.reject(defect, name, number, _snippet(row), unit)
            continue
        yield event


def _snippet(row: dict[str, Any]) -> str:
    shown = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in row.items()}
    return orjson.dumps(shown, default=str).decode()


def _check_header(path: Path, names: list[str]) -> list[str]:
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise LogError(f"{path}: no {', '.join(map(repr, missing))} column(s); the columns are "
                       f"{', '.join(clip(n, 30) for n in names[:20]) or 'none'} (see docs/replay.md)")
    return [name for name in COLUMNS if name in names]


# --------------------------------------------------------------------------- Parquet

def _parquet_rows(path: Path, batch_rows: int, progress: Progress | None) -> tuple[str, Rows]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise LogError(f"{path}: cannot read as Parquet: {exc}") from None
    present = _check_header(path, parquet.schema_arrow.names)
    for name in present:
        _check_parquet_type(path, name, parquet.schema_arrow.field(name).type)
    return "row", _parquet_cells(parquet, path, present, batch_rows, progress)


def _check_parquet_type(path: Path, name: str, type_: Any) -> None:
    import pyarrow as pa

    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    text = pa.types.is_string(type_) or pa.types.is_large_string(type_)
    fits = {"event_id": text or pa.types.is_integer(type_), "chosen": pa.types.is_integer(type_),
            "probability": pa.types.is_floating(type_) or pa.types.is_integer(type_),
            "reward": pa.types.is_floating(type_) or pa.types.is_integer(type_),
            "skip_learn": pa.types.is_boolean(type_)}.get(name, text)
    if not (fits or pa.types.is_null(type_)):
        raise LogError(f"{path}: column {name!r} has type {type_}, expected "
                       + {"chosen": "integers", "probability": "numbers", "reward": "numbers",
                          "skip_learn": "booleans", "event_id": "strings or integers"}.get(name, "JSON text (strings)"))


def _parquet_cells(parquet: Any, path: Path, present: list[str], batch_rows: int,
                   progress: Progress | None) -> Rows:
    import pyarrow as pa

    total_rows, size = max(parquet.metadata.num_rows, 1), path.stat().st_size
    row = 0
    try:
        with parquet:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
                columns = [batch.column(name).to_pylist() for name in present]
                for values in zip(*columns):
                    row += 1
                    yield row, dict(zip(present, values))
                if progress:
                    progress(size * row // total_rows, size)
    except (OSError, pa.ArrowException) as exc:   # a corrupt page: what was read before stands
        yield row + 1, Defect(UNREADABLE, f"cannot read on after row {row}: {exc}")


# --------------------------------------------------------------------------- CSV

def _csv_rows(path: Path, batch_rows: int, progress: Progress | None) -> tuple[str, Rows]:
    """Every column is read as bytes and converted here, row by row: a bad cell is
    then one bad row, never a failed batch. One record per line (JSON text has no raw
    newlines), so numbers are physical lines (header = 1)."""
    try:
        with open(path, "rb") as fh:
            header = fh.readline()
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        names = next(csv.reader(io.StringIO(header.decode("utf-8-sig"))), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LogError(f"{path}:1: cannot read the header: {exc}") from None
    if not names:
        raise LogError(f"{path}: the file is empty: expected a header line naming the columns")
    return "line", _csv_cells(path, _check_header(path, names), progress)


def _csv_cells(path: Path, present: list[str], progress: Progress | None) -> Rows:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    invalid: dict[int, Defect] = {}

    def on_invalid(row: Any) -> str:   # (row.number is the physical line; 0 if pyarrow does not know it)
        invalid[row.number or 0] = Defect(UNPARSEABLE, f"a CSV record of {row.actual_columns} cell(s), "
                                          f"expected {row.expected_columns}", row.text)
        return "skip"

    size = path.stat().st_size
    line = 1
    with open(path, "rb") as raw:
        try:
            reader = pcsv.open_csv(
                raw, read_options=pcsv.ReadOptions(use_threads=False),
                parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
                convert_options=pcsv.ConvertOptions(column_types={name: pa.binary() for name in present},
                                                    include_columns=present, strings_can_be_null=True,
                                                    null_values=[""]))
            for batch in reader:
                columns = [batch.column(name).to_pylist() for name in present]
                for values in zip(*columns):
                    line += 1
                    while line in invalid:      # the records the handler skipped, in line order
                        yield line, invalid.pop(line)
                        line += 1
                    if any(value is not None for value in values):   # (a blank line is no record)
                        yield line, dict(zip(present, values))
                if progress:
                    progress(raw.tell(), size)
        except (OSError, pa.ArrowException) as exc:
            yield line + 1, Defect(UNREADABLE, f"cannot read on after line {line}: {exc}")
            return
        for number in sorted(invalid):   # bad records after the last good one
            yield number, invalid[number]


# --------------------------------------------------------------------------- rows ⇄ events

def row_event(row: dict[str, Any]) -> LoggedEvent:
    """One table row (Parquet values, or CSV cells as bytes) as an event."""
    event_id = _text(row["event_id"], "event_id")
    if not event_id:
        raise Defect(MALFORMED, "no event_id")
    context = _json(row["context"], "context")
    if not isinstance(context, dict):
        raise Defect(MALFORMED, "no context" if context is None else "context is not a JSON object")
    actions = _json(row["actions"], "actions")
    if not actions:
        raise Defect(NO_ACTIONS, "no candidate actions: 'actions' is empty")
    pmf, ids, extra = (_json(row.get(name), name) for name in ("pmf", "action_ids", "extra"))
    if extra is not None and not isinstance(extra, dict):
        raise Defect(MALFORMED, "extra is not a JSON object")
    return LoggedEvent(
        event_id=event_id, timestamp=_text(row["timestamp"], "timestamp"), shared=context,
        actions=objects(actions, MALFORMED, "actions"),
        action_ids=None if ids is None else strings(ids, MALFORMED, "action_ids"),
        chosen=_int(row["chosen"], "chosen"),
        probability=_float(row["probability"], MISSING_PROBABILITY, "probability"),
        pmf=None if pmf is None else numbers(pmf, BAD_PMF, "pmf"),
        reward=_float(row["reward"], MISSING_REWARD, "reward"),
        skip_learn=_bool(row.get("skip_learn"), "skip_learn"), policy=_text(row.get("policy"), "policy"),
        extra=extra or {},
    )


def event_columns(events: list[LoggedEvent]) -> dict[str, list[Any]]:
    """The table's columns for these events: rows that ``row_event`` reads back as the very events."""
    def dump(values: Any) -> list[str | None]:
        return [None if value is None else orjson.dumps(value).decode() for value in values]

    return {"event_id": [e.event_id for e in events], "timestamp": [e.timestamp for e in events],
            "context": dump(e.shared for e in events), "actions": dump(e.actions for e in events),
            "chosen": [e.chosen for e in events], "probability": [e.probability for e in events],
            "reward": [e.reward for e in events], "pmf": dump(e.pmf for e in events),
            "action_ids": dump(e.action_ids for e in events), "skip_learn": [e.skip_learn for e in events],
            "policy": [e.policy for e in events], "extra": dump(e.extra for e in events)}


def _text(value: Any, name: str) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise Defect(UNPARSEABLE, f"{name} is not UTF-8 text") from None
    if isinstance(value, int):   # a Parquet integer event_id
        return str(value)
    return value


def _json(value: Any, name: str) -> Any:
    return None if value is None else parse_json(value, name)


def _convert(value: Any, kind: str, name: str, to: Callable[[Any], Any]) -> Any:
    """A Parquet number, or a CSV cell (bytes) read as one; else the defect ``kind``."""
    if value is None:
        raise Defect(kind, f"no {name}")
    try:
        return to(value)
    except ValueError:
        raise Defect(kind, f"{name} {_shown(value)} is not {'an integer' if to is int else 'a number'}") from None


def _float(value: Any, kind: str, name: str) -> float:
    return _convert(value, kind, name, float)


def _int(value: Any, name: str) -> int:
    return _convert(value, MALFORMED, name, int)


def _bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    spelled = {b"true": True, b"1": True, b"false": False, b"0": False}.get(value.strip().lower())
    if spelled is None:
        raise Defect(MALFORMED, f"{name} {_shown(value)} is not true or false")
    return spelled


def _shown(value: Any) -> str:
    """A cell as it reads in the file (CSV cells are bytes here)."""
    return clip(repr(value.decode("utf-8", "replace") if isinstance(value, bytes) else value), 40)
