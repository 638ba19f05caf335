"""The progress bar of a load or a check."""

from __future__ import annotations

import time

from bandit.loader.batches import _Source


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
