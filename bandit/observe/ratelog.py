"""Error lines that cannot flood the service log.

A failing disk or Redis fails every request or every write attempt, many times a
second; a line (let alone a traceback) for each buries everything else and can fill the
disk that is already full. ``CauseLog`` logs one line when a cause starts failing, one
when it works again, and while it keeps failing one line per ``every`` seconds with the
count since the last line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass


@dataclass
class _State:
    first_ms: float
    last_line: float
    unlogged: int = 0
    total: int = 0


class CauseLog:
    def __init__(self, logger: logging.Logger, every: float = 30.0) -> None:
        self.logger = logger
        self.every = every
        self._failing: dict[str, _State] = {}

    def failed(self, cause: str, message: str, *args: object, level: int = logging.ERROR) -> None:
        """``cause`` failed again (``message % args`` says how): a line only at the start
        of a failure and then every ``every`` seconds."""
        now = time.monotonic()
        state = self._failing.get(cause)
        if state is None:
            self._failing[cause] = _State(now, now, 0, 1)
            self.logger.log(level, message, *args)
            return
        state.total += 1
        state.unlogged += 1
        if now - state.last_line >= self.every:
            self.logger.log(level, message + " (%d more failures of this kind in the last %.0f s)",
                            *args, state.unlogged, now - state.last_line)
            state.last_line, state.unlogged = now, 0

    def recovered(self, cause: str, what: str) -> None:
        """``cause`` works again: one line, if it was failing."""
        state = self._failing.pop(cause, None)
        if state is not None:
            self.logger.warning("%s works again after %d failures over %.1f s", what, state.total,
                                time.monotonic() - state.first_ms)

    def failing(self, cause: str) -> bool:
        return cause in self._failing

    @property
    def causes(self) -> list[str]:
        return list(self._failing)
