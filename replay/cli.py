"""``nextbest replay``: check a decision log, export it as a Parquet table.

A click group, registered under the ``nextbest`` command. Reports go to stdout, the
progress bar (bytes read; only on a terminal) to stderr; every expected failure is a
one-line message with exit code 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from replay.logs import FORMATS, LogError, ValidationReport, read_logs
from replay.validate import KINDS

_LOGS = click.argument("logs", type=click.Path(exists=True, path_type=Path))
_FORMAT = click.option("--format", "log_format", type=click.Choice(FORMATS), default="auto", show_default=True,
                       help="Log format; auto: a directory or .dsjson[.gz]/.json[l] is DSJSON, .parquet/.csv a table.")


@click.group()
def replay() -> None:
    """Replay: read, check and export decision logs (DSJSON from the service or VW, or tables)."""


@replay.command()
@_LOGS
@click.option("--strict", is_flag=True, help="Exit 1 if any event is defective.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON to this file.")
@_FORMAT
def validate(logs: Path, strict: bool, json_file: Path | None, log_format: str) -> None:
    """Check every event in LOGS (a log directory or file): count each kind of defect,
    with examples (file:line). Defective events are what replay would skip."""
    report = ValidationReport()
    with _progress(f"checking {logs.name}") as progress, _errors():
        for _ in read_logs(logs, log_format, report=report, progress=progress):
            pass
    _print_report(report)
    if json_file is not None:
        with _errors():
            json_file.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if strict and report.defects:
        sys.exit(1)


@replay.command()
@_LOGS
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The Parquet file to write (replaced if it exists).")
@click.option("--strict", is_flag=True, help="Stop at the first defective event, naming file and line; write nothing.")
@_FORMAT
def export(logs: Path, out: Path, strict: bool, log_format: str) -> None:
    """Write the good events of LOGS to one Parquet table (the columns of docs/replay.md),
    skipping and reporting defective ones."""
    from replay.export import export_parquet

    with _progress(f"exporting {logs.name}") as progress, _errors():
        report = export_parquet(logs, out, format=log_format, strict=strict, progress=progress)
    click.echo(f"wrote {report.good:,} event{'' if report.good == 1 else 's'} to {out}")
    if report.defects:
        _print_report(report)


@contextmanager
def _errors() -> Iterator[None]:
    """A log that cannot be read, a strict defect, a file that cannot be written: one line."""
    try:
        yield
    except LogError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None] | None]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_report(report: ValidationReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    console.print(f"[bold]{report.good:,}[/] good event{'' if report.good == 1 else 's'}, "
                  f"[bold]{report.defects:,}[/] defective")
    if not report.defects:
        return
    table = Table("defect", "count", "meaning")
    for kind, count in sorted(report.counts.items(), key=lambda item: -item[1]):
        table.add_row(kind, f"{count:,}", KINDS[kind])
    console.print(table)
    for kind in sorted(report.counts, key=lambda k: -report.counts[k]):
        console.print(f"[bold]{kind}[/]:", highlight=False)
        for example in report.examples.get(kind, []):
            console.print(f"  {example.where}: {example.reason}", markup=False, highlight=False)
            if example.snippet:
                console.print(f"    {example.snippet}", markup=False, highlight=False)
