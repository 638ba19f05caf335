"""pandas in and out of replay (the optional ``replay`` extra: ``pip install 'nextbest[replay]'``).

- ``read_frame(df)``: a DataFrame with the export table's columns (one row per event,
  one per slot of a multi-slot event: docs/replay.md, "The table") read as a log, every
  row checked as a file's (bad rows skipped and counted, or ``strict``);
  ``evaluate(df, ...)`` takes one too (``frame_to_parquet``).
- ``to_frame(source)``: a log's events as that DataFrame (the export's columns, lists
  and features as Python lists and dicts); ``to_frame(result)``: an evaluation's
  per-event outputs (``evaluate(..., per_event=True)``): event id and tag, the served action,
  its reward and logged probability, the reward model's prediction for it, and per
  candidate its target probability of the served action and the weight.

pandas is imported only when one of these is called, so replay runs without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from replay.logs import DEFAULT_CHUNK_SIZE, LoggedEvent, ValidationReport, read_logs
from replay.readers.event import chunked
from replay.readers.rows import COLUMNS, REQUIRED, event_columns
from replay.results import EvaluationResult
from replay.validate import Checker, Defect, LogError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FRAME_NAME", "evaluate_frame", "frame_to_parquet", "read_frame", "to_frame"]

FRAME_NAME = "DataFrame"
"""How a DataFrame is named in defects (``DataFrame:row 3``, the first row is 1)."""


def pandas() -> Any:
    """The pandas module, or an ImportError that says how to install it."""
    try:
        import pandas
    except ImportError:
        raise ImportError("replay's DataFrame functions need pandas: pip install 'nextbest[replay]' "
                          "(or pip install 'pandas>=2')") from None
    return pandas


def read_frame(frame: pd.DataFrame, *, chunk_size: int = DEFAULT_CHUNK_SIZE, strict: bool = False,
               report: ValidationReport | None = None) -> Iterator[list[LoggedEvent]]:
    """Chunks of good events from ``frame``, checked as a table file's rows are (the same
    defects, named ``DataFrame:row N``). Cells may be JSON text (as in CSV) or nested
    values (lists, dicts, numpy arrays, as ``to_frame`` gives); NaN and None are missing.
    A frame lacking a required column raises ``LogError`` at once."""
    from replay.readers.table import _events   # the table reader's rows → events, slot rows grouped

    pd = pandas()
    if not isinstance(frame, pd.DataFrame):
        raise LogError(f"read_frame takes a pandas DataFrame, not {type(frame).__name__}")
    names = [str(name) for name in frame.columns]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise LogError(f"{FRAME_NAME}: no {', '.join(map(repr, missing))} column(s); the columns are "
                       f"{', '.join(names[:20]) or 'none'} (see docs/replay.md, 'The table')")
    present = [name for name in COLUMNS if name in names]
    checker = Checker(report if report is not None else ValidationReport(), strict)
    return chunked(_events(("row", _frame_rows(frame, present)), FRAME_NAME, checker), chunk_size)


def _frame_rows(frame: pd.DataFrame, present: list[str]) -> Iterator[tuple[int, dict[str, Any] | Defect]]:
    columns = [frame[name].tolist() for name in present]
    for number, values in enumerate(zip(*columns), start=1):
        yield number, {name: _cell(value) for name, value in zip(present, values)}


def _cell(value: Any) -> Any:
    """A DataFrame cell as the table reader's value: numpy scalars and arrays as Python
    ones, NaN / None / pd.NA / NaT as missing, a map column's (key, value) pairs as a dict."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (str, bytes, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {key: _cell(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_cell(item) for item in value]
        if items and all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in value):
            return dict(items)   # a map read without maps_as_pydicts: [(key, value), ...]
        return items
    try:
        pd = pandas()
        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:
        pass
    return value


def frame_to_parquet(frame: pd.DataFrame, out_path: str | Path, *, strict: bool = False,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> ValidationReport:
    """Write the good events of ``frame`` as an export (``replay.export``'s schema), for
    ``evaluate``'s passes to read; returns the report of the rows skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from replay.export import table_schema

    report = ValidationReport()
    schema = table_schema()
    with pq.ParquetWriter(out_path, schema) as writer:
        for chunk in read_frame(frame, chunk_size=chunk_size, strict=strict, report=report):
            table = pa.Table.from_pydict(event_columns(chunk, nested=True), schema=schema)
            writer.write_table(table, row_group_size=max(1, table.num_rows))
    return report


def evaluate_frame(frame: Any, candidates: Sequence[str], **options: Any) -> EvaluationResult:
    """``evaluate`` of a DataFrame: its good rows written once as an export in a temporary
    directory (each pass reads the log itself), the frame's own report kept."""
    import tempfile
    from dataclasses import replace

    from replay.candidates import EvaluationError
    from replay.evaluate import evaluate

    with tempfile.TemporaryDirectory(prefix="nextbest-frame-") as tmp:
        path = Path(tmp) / "frame.parquet"
        try:
            report = frame_to_parquet(frame, path)
        except LogError as exc:
            raise EvaluationError(str(exc)) from None
        if not report.good:
            raise EvaluationError(f"{FRAME_NAME}: no events to evaluate (empty, or every row defective: "
                                  f"{report.counts})")
        result = evaluate(path, candidates, **options)
    return replace(result, source=FRAME_NAME, report=report)   # (its ids and tags are the frame's rows')


def to_frame(source: str | Path | EvaluationResult, format: str = "auto", *,
             report: ValidationReport | None = None) -> pd.DataFrame:
    """A log's good events as a DataFrame with the export table's columns (``source``: any
    ``read_logs`` source; all events are held at once), or an ``EvaluationResult``'s
    per-event outputs (it must come from ``evaluate(..., per_event=True)``)."""
    pd = pandas()
    if isinstance(source, EvaluationResult):
        return _per_event_frame(source)
    import pyarrow as pa

    from replay.export import table_schema

    schema = table_schema()
    tables = [pa.Table.from_pydict(event_columns(chunk, nested=True), schema=schema)
              for chunk in read_logs(source, format, report=report)]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    frame = table.to_pandas(maps_as_pydicts="strict")
    assert isinstance(frame, pd.DataFrame)
    return frame


def _per_event_frame(result: EvaluationResult) -> pd.DataFrame:
    pd = pandas()
    values = result.per_event
    if values is None:
        if result.slates:
            raise ValueError("a multi-slot log's values are per slot: per_event=True keeps no per-event outputs "
                             "for to_frame; result.per_event_terms() has the per-event terms")
        raise ValueError("this result has no per-event outputs: evaluate(..., per_event=True) keeps them")
    columns: dict[str, Any] = {"event_id": values.event_ids, "tag": values.tags, "chosen": values.chosen,
                               "reward": values.rewards, "logged_probability": values.logged_p,
                               "reward_hat": values.reward_hat}
    for name, target_p in values.target_p.items():
        columns[f"target_probability[{name}]"] = target_p
        columns[f"weight[{name}]"] = target_p / values.logged_p
    return pd.DataFrame(columns)

