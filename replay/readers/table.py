"""Flat tables of logged events, Parquet or CSV (pyarrow, streamed by record batch), as
``replay.export`` writes them; the row form itself (both directions) is ``replay.readers.rows``.

One row per single-slot event, one row per slot of a multi-slot (CCB) event; the
features, PMF, offer ids and slot actions are nested Arrow types in an export's Parquet
(``replay.export.table_schema``) and JSON text in CSV and in older Parquet files: both
read the same (docs/replay.md, "The table"). Columns not listed here are ignored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from replay.readers.event import DEFAULT_CHUNK_SIZE, LoggedEvent, Progress, chunked
from replay.readers.rows import (  # noqa: F401 (event_columns, COLUMNS: importable from here, as before)
    COLUMNS,
    OPTIONAL,
    REQUIRED,
    NESTED,
    SLOT_COLUMNS,
    event_columns,
    row_event,
    slate_event,
)
from replay.validate import (
    UNPARSEABLE,
    UNREADABLE,
    Checker,
    Defect,
    LogError,
    ValidationReport,
    clip,
)

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
    """Rows to events: a single-slot row is an event; consecutive slot rows of one event
    id (slot 1, 2, ...) are one multi-slot event, held until the next event begins."""
    unit, cells = rows
    group: list[tuple[int, dict[str, Any]]] = []   # the slot rows of the event being read

    def admit(number: int, row: dict[str, Any], read: Callable[[], LoggedEvent]) -> Iterator[LoggedEvent]:
        try:
            event = read()
            checker.admit(event)
        except Defect as defect:
            where = getattr(defect, "row", None) or (number, row)
            checker.reject(defect, name, where[0], _snippet(where[1]), unit)
            return
        yield event

    for number, row in cells:
        if isinstance(row, Defect):   # (inside a slate, the slot left out is reported as a gap)
            checker.reject(row, name, number, row.snippet, unit)
            continue
        slot = row.get("slot")
        if group and (slot is None or row["event_id"] != group[0][1]["event_id"] or _is_first(slot)):
            yield from admit(*group[0], lambda rows=group: slate_event(rows))
            group = []
        if slot is None:
            yield from admit(number, row, lambda row=row: row_event(row))
        else:
            group.append((number, row))
    if group:
        yield from admit(*group[0], lambda rows=group: slate_event(rows))


def _is_first(slot: Any) -> bool:
    return slot == 1 or slot == b"1"


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
    if name in NESTED and not text:
        _check_nested(path, name, type_)
        return
    fits = {"event_id": text or pa.types.is_integer(type_), "chosen": pa.types.is_integer(type_),
            "probability": pa.types.is_floating(type_) or pa.types.is_integer(type_),
            "reward": pa.types.is_floating(type_) or pa.types.is_integer(type_),
            "skip_learn": pa.types.is_boolean(type_), "slot": pa.types.is_integer(type_),
            "pdrop": pa.types.is_floating(type_) or pa.types.is_integer(type_)}.get(name, text)
    if not (fits or pa.types.is_null(type_)):
        raise LogError(f"{path}: column {name!r} has type {type_}, expected "
                       + {"chosen": "integers", "slot": "integers", "probability": "numbers", "reward": "numbers", "pdrop": "numbers",
                          "skip_learn": "booleans", "event_id": "strings or integers"}.get(name, "JSON text (strings)"))


def _check_nested(path: Path, name: str, type_: Any) -> None:
    """A nested column (an export's, ``replay.export.table_schema``) of the right shape:
    its values are then checked row by row as the JSON text's are."""
    import pyarrow as pa

    def is_list(t: Any) -> bool:
        return pa.types.is_list(t) or pa.types.is_large_list(t)

    def is_features(t: Any) -> bool:
        return pa.types.is_map(t) and pa.types.is_map(t.item_type)

    item = type_.value_type if is_list(type_) else None
    fits = {"context": is_features(type_), "actions": item is not None and is_features(item),
            "pmf": item is not None and (pa.types.is_floating(item) or pa.types.is_integer(item)),
            "action_ids": item is not None and (pa.types.is_string(item) or pa.types.is_large_string(item)),
            "slot_actions": item is not None and pa.types.is_integer(item)}[name]
    if not (fits or pa.types.is_null(type_)):
        expected = {"context": "map<string, map<string, double>>", "actions": "list<map<string, map<string, double>>>",
                    "pmf": "list<double>", "action_ids": "list<string>", "slot_actions": "list<int64>"}[name]
        raise LogError(f"{path}: column {name!r} has type {type_}, expected JSON text (strings) or {expected}")


def _parquet_cells(parquet: Any, path: Path, present: list[str], batch_rows: int,
                   progress: Progress | None) -> Rows:
    import pyarrow as pa

    total_rows, size = max(parquet.metadata.num_rows, 1), path.stat().st_size
    row = 0
    try:
        with parquet:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
                columns = [batch.column(name).to_pylist(maps_as_pydicts="strict") for name in present]
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
