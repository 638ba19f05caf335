"""Background duties give way to requests, within a bound on how far behind they fall.

The learner, the decision log and the analytics share the serving process's event loop
with the requests. Taking turns with them (a slice of work per loop iteration) made a
reward cost the HTTP request *plus* learning, logging and counting it, and a slice
stalled the decisions queued behind it. Instead each duty works in short slices
(``SLICE_SECONDS``) started only when the loop is idle (bandit.store.eventloop.idle_turn): the
requests are served first and the duties use what is left. When the loop is idle only
because requests wait for Redis (their reply is microseconds away), a slice is short
(``SHORT_SLICE_SECONDS``, about one event learned) so the reply does not wait behind it.
Under a sustained overload nothing is left, so a duty that is more than
``background_max_lag_seconds`` behind (by the stream id of the entry it is at, the time it
was joined) stops waiting and takes plain turns again: the model, the log and the
dashboard are never staler than that, and rewards then slow down to what the process can
also learn. 0 turns the idle wait off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from bandit.store.batching import replies_pending
from bandit.store.eventloop import idle_turn

if TYPE_CHECKING:
    from bandit.store.store import JoinedEvent

SLICE_SECONDS = 0.0005   # a request arriving during a slice waits at most about this long
SHORT_SLICE_SECONDS = 0.00005   # while requests wait on Redis


class Pace:
    """One duty's pacing: ``async for event in pace.each(events)`` hands out the events
    one by one, yielding to requests between slices."""

    def __init__(self, max_lag_seconds: float) -> None:
        self.max_lag_ms = max_lag_seconds * 1000.0
        self._deadline = 0.0
        self.behind_turns = 0   # turns taken without waiting for idle: the duty was too far behind

    async def each(self, events: Iterable[JoinedEvent]) -> AsyncIterator[JoinedEvent]:
        for event in events:
            if self.slice_over():
                await self.turn(event.stream_id)
            yield event

    def slice_over(self) -> bool:
        return time.perf_counter() >= self._deadline

    async def turn(self, stream_id: str | None = None) -> None:
        """Yield to the loop; wait for it to be idle unless the duty is too far behind."""
        if self.max_lag_ms <= 0 or (stream_id is not None and lag_ms(stream_id) > self.max_lag_ms):
            if self.max_lag_ms > 0:
                self.behind_turns += 1
            await asyncio.sleep(0)
        else:
            await idle_turn()
        self._deadline = time.perf_counter() + (SHORT_SLICE_SECONDS if replies_pending() else SLICE_SECONDS)


def lag_ms(stream_id: str) -> float:
    """How long ago a stream entry was added (its id starts with Redis's clock in ms)."""
    ms, _, _ = stream_id.partition("-")
    try:
        return time.time() * 1000.0 - int(ms)
    except ValueError:
        return 0.0
