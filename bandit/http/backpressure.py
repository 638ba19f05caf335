"""The backlog bound: past ``backlog_limit`` joined events that some consumer (the
learner, the decision log, the analytics) has not finished, decide, reward and activate
answer 503 ``backlog_full`` with ``Retry-After`` before they store anything.

Why refuse rather than keep answering 2xx: a 2xx promises that the event is durable and
will be learned and logged once. While nothing learns or logs (no process holds the
lease, the log sink is stopped, the learner stalls) every accepted event only grows the
stream in Redis's memory until Redis refuses writes (OOM) or dies; a bounded backlog
turns that into a visible, retryable refusal while the promise still holds.

The request path must not pay a Redis round trip for it (decide is benchmarked): each
process reads the deployment's backlog (``bandit.store.backlog``) every
``REFRESH_SECONDS`` in the background and the check is an attribute read. Every process
reads the same keys, so several services and a separate ``nextbest learner`` agree
within one refresh.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from bandit.store.eventloop import cancel_and_wait

from bandit.errors import ApiError
from bandit.observe.ratelog import CauseLog
from bandit.store.backlog import Backlog, read_backlog
from bandit.store.store import Store

log = logging.getLogger("nextbest")

REFRESH_SECONDS = 0.5
RETRY_AFTER_SECONDS = 5   # a leader takes over within a few seconds (lease 5 s) and drains from there


class Backpressure:
    """This process's latest reading of the backlog and whether it is past the bound."""

    def __init__(self, store: Store, limit: int, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.store = store
        self.limit = limit                  # 0: unbounded (the backlog is still read and reported)
        self.refresh_seconds = refresh_seconds
        self.backlog: Backlog | None = None   # None until the first reading succeeds
        self.full = False                   # what the request path reads
        self._errors = CauseLog(log)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Read once before serving (a restarted process must not admit a full backlog),
        then keep reading in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="nextbest-backlog")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def refresh(self) -> None:
        """One reading. When Redis does not answer the last reading stands: requests then
        fail on Redis themselves, and the first answer brings the bound up to date."""
        try:
            async with asyncio.timeout(self.store.command_timeout):   # not wait_for (3.11, see batching)
                backlog = await read_backlog(self.store.redis, self.store.keys)
        except (RedisError, OSError, TimeoutError) as exc:
            self._errors.failed("read", "reading the backlog failed: %s", exc, level=logging.WARNING)
            return
        self._errors.recovered("read", "reading the backlog")
        was_full, self.backlog = self.full, backlog
        self.full = backlog.exceeds(self.limit)
        if self.full != was_full:
            if self.full:
                log.error("backlog full: %s; decide, reward and activate answer 503 backlog_full",
                          self.describe())
            else:
                log.warning("backlog below the bound again (%s): decide, reward and activate are accepted", self.describe())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:   # a bug here must not stop the readings (the bound would freeze)
                log.exception("reading the backlog failed")

    @property
    def events(self) -> int | None:
        return self.backlog.events if self.backlog is not None else None

    def describe(self) -> str:
        backlog = self.backlog
        if backlog is None:
            return "not read yet"
        slowest = backlog.slowest
        bound = f"backlog_limit {self.limit:,}" if self.limit else "unbounded"
        if slowest is None or not backlog.events:
            return f"0 joined events behind ({bound})"
        estimate = "" if slowest.exact else "at most "
        return (f"{estimate}{slowest.events:,} joined events not yet finished by the {slowest.name} consumer, the "
                f"oldest {slowest.behind_seconds:.0f} s old ({bound})")

    def refusal(self) -> ApiError:
        return ApiError(503, "backlog_full", f"{self.describe()}: nothing is stored until the learner and the "
                        "decision log catch up; retry", retry_after=RETRY_AFTER_SECONDS)
