"""Reading decision logs for replay: streaming readers that yield chunks of
``LoggedEvent``, whatever the source, in bounded memory.

- ``read_dsjson``: the service's log directory or one DSJSON file, or VW DSJSON from
  other systems (plain or gzipped);
- ``read_table``: a flat Parquet or CSV table (what ``replay.export`` writes);
- ``read_logs``: either, chosen by the path; a directory may be the service's data dir
  (its ``decisions/`` is read: ``log_directory``).

Multi-slot (VW CCB) lines and their table rows give events with ``slots``
(``SlotOutcome``: per slot the shown action, its probability, the slot's PMF, the reward).

Every reader checks each event (``replay.validate``): defects are skipped and counted
in the ``ValidationReport`` passed as ``report``, or with ``strict=True`` raise
``LogError`` at the first. Columns and fields: docs/replay.md, docs/log-format.md.

    report = ValidationReport()
    for chunk in read_logs("nextbest-data/decisions", report=report):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from replay.readers.dsjson import log_directory, read_dsjson
from replay.readers.event import DEFAULT_CHUNK_SIZE, LoggedEvent, Progress, SlotOutcome
from replay.readers.table import TABLE_SUFFIXES, read_table
from replay.validate import LogError, ValidationReport

__all__ = ["DEFAULT_CHUNK_SIZE", "FORMATS", "LogError", "LoggedEvent", "Progress", "SlotOutcome", "ValidationReport",
           "log_directory", "log_format", "read_dsjson", "read_logs", "read_table"]

FORMATS = ("auto", "dsjson", "parquet", "csv")
_DSJSON_SUFFIXES = (".dsjson", ".json", ".jsonl")


def log_format(path: str | Path) -> str:
    """"dsjson" for a directory or a ``.dsjson``/``.json``/``.jsonl`` file (each maybe
    ``.gz``), "parquet" or "csv" for a table; ``LogError`` for anything else."""
    path = Path(path)
    if path.is_dir():
        return "dsjson"
    if not path.exists():
        raise LogError(f"{path}: no such file or directory")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(_DSJSON_SUFFIXES):
        return "dsjson"
    if (kind := TABLE_SUFFIXES.get(Path(name).suffix)) is not None and not path.name.lower().endswith(".gz"):
        return kind
    raise LogError(f"{path}: cannot tell the log format from the name (expected a directory, .dsjson, "
                   f".dsjson.gz, .json, .jsonl, .parquet or .csv): give the format explicitly")


def read_logs(path: str | Path, format: str = "auto", *, chunk_size: int = DEFAULT_CHUNK_SIZE,
              strict: bool = False, report: ValidationReport | None = None,
              progress: Progress | None = None) -> Iterator[list[LoggedEvent]]:
    """Chunks of good events from ``path`` in ``format`` (one of ``FORMATS``; "auto":
    by ``log_format``). Path and format errors raise ``LogError`` at once."""
    if format not in FORMATS:
        raise LogError(f"unknown log format {format!r}: expected one of {', '.join(FORMATS)}")
    kind = log_format(path) if format == "auto" else format
    if kind == "dsjson":
        return read_dsjson(path, chunk_size=chunk_size, strict=strict, report=report, progress=progress)
    return read_table(path, format=kind, chunk_size=chunk_size, strict=strict, report=report, progress=progress)
