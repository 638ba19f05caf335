"""The command line's inputs and per-event output shared by every ``nextbest replay``
subcommand: the log as LOGS or ``--logs DIR`` (either may be the service's data dir),
and ``evaluate --per-event FILE``. Kept apart from ``replay.cli`` (the commands)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["LOGS", "write_per_event"]

_LOG_PATH = click.Path(exists=True, path_type=Path)


def LOGS(command: Callable[..., None]) -> Callable[..., None]:
    """LOGS as the positional argument or as ``--logs DIR``: exactly one of them (a click
    usage error otherwise, exit 2). Either may be the service's data dir: its
    ``decisions/`` is read (``replay.logs.log_directory``) and, for optimize and ablate,
    its ``models/`` gives the deployed settings."""
    @functools.wraps(command)
    def run(*args: Any, logs: Path | None, logs_option: Path | None, **kwargs: Any) -> None:
        if logs is not None and logs_option is not None:
            raise click.UsageError(f"the log is given twice ({logs} and --logs {logs_option}): give LOGS or "
                                   f"--logs DIR, not both")
        if logs is None and logs_option is None:
            raise click.UsageError("no log: give LOGS or --logs DIR (a decision log directory, the service's "
                                   "data dir, a DSJSON file or a Parquet/CSV table)")
        command(*args, logs=logs if logs is not None else logs_option, **kwargs)

    run = click.option("--logs", "logs_option", type=_LOG_PATH, default=None, metavar="DIR",
                       help="The log, instead of the LOGS argument: a decision log directory or the service's "
                            "data dir (the one with decisions/ and models/), or a log file.")(run)
    return click.argument("logs", type=_LOG_PATH, required=False)(run)


def write_per_event(columns: dict[str, list[Any]], path: Path) -> None:
    """The per-event columns as Parquet or CSV (by the suffix), written beside and renamed."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pa.table({"event_id": pa.array(columns["event_id"], pa.string()),
                      "tag": pa.array(columns["tag"], pa.string()),
                      **{name: pa.array(values, pa.float64()) for name, values in columns.items()
                         if name not in ("event_id", "tag")}})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            pcsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
