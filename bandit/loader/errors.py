"""The loader's outcomes: a skipped row, a load's report, a refused file."""

from __future__ import annotations

from dataclasses import dataclass


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
