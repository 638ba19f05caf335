"""The joined decision log as one flat Parquet table, for notebooks and warehouses.

Written chunk by chunk (one row group each) as the log streams, so memory stays
bounded; the columns are ``read_table``'s, so reading the file back gives the very
events read from the log. Lists and features are nested Arrow types (``table_schema``). A multi-slot event is one row per slot (all in one row group).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from replay.logs import DEFAULT_CHUNK_SIZE, Progress, ValidationReport, read_logs
from replay.readers.table import COLUMNS, event_columns

if TYPE_CHECKING:
    import pyarrow as pa


def table_schema() -> pa.Schema:
    """The Parquet schema of an export (docs/replay.md, "The table"): the PMF, offer ids
    and slot actions as lists, features as maps (namespace → token → value), so a
    notebook gets real columns; ``extra`` and ``slot_features`` (of mixed types) and
    ``features_json`` (features the maps cannot hold) stay JSON text."""
    import pyarrow as pa

    features = pa.map_(pa.string(), pa.map_(pa.string(), pa.float64()))
    types = {"chosen": pa.int64(), "probability": pa.float64(), "reward": pa.float64(), "skip_learn": pa.bool_(),
             "slot": pa.int64(), "pdrop": pa.float64(), "context": features, "actions": pa.list_(features),
             "pmf": pa.list_(pa.float64()), "action_ids": pa.list_(pa.string()), "slot_actions": pa.list_(pa.int64())}
    nullable = {"timestamp", "pmf", "action_ids", "policy", "offer", "slot", "slot_id", "slot_actions", "slot_features",
                "tag", "context", "actions", "features_json"}
    return pa.schema([pa.field(name, types.get(name, pa.string()), nullable=name in nullable) for name in COLUMNS])


def export_parquet(source: str | Path, out_path: str | Path, *, format: str = "auto",
                   chunk_size: int = DEFAULT_CHUNK_SIZE, strict: bool = False,
                   progress: Progress | None = None) -> ValidationReport:
    """Write the good events of ``source`` (any ``read_logs`` source) to ``out_path``;
    returns the report of what was skipped. The file appears only when complete (it
    is written beside, then renamed): a strict error or a crash leaves no half file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    report = ValidationReport()
    chunks = read_logs(source, format, chunk_size=chunk_size, strict=strict, report=report, progress=progress)
    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    schema = table_schema()
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for chunk in chunks:
                table = pa.Table.from_pydict(event_columns(chunk, nested=True), schema=schema)
                writer.write_table(table, row_group_size=max(1, table.num_rows))
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return report
