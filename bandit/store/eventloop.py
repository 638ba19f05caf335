"""The serving process's event loop: asyncio's, with a short busy poll before it sleeps
and a way for background work to run only when nothing else is ready.

Busy poll: between requests a decide waits twice on Redis (~50-100 µs each) and the loop
would block in epoll each time. On a virtual machine a blocked vCPU halts, and waking it
again (an interrupt through the hypervisor) costs tens to hundreds of microseconds: at
light load that doubled a decision's latency. Polling for ``busy_poll_us`` before
blocking catches the Redis reply or the next request while the core is still running; a
quiet process still sleeps after that. The same trade the kernel's haltpoll and
SO_BUSY_POLL make: some CPU for latency (see bench/NOTES.md). ``busy_poll_us: 0``
turns it off.

Idle turns: ``await idle_turn()`` returns once the loop has nothing ready to run and
would otherwise poll or sleep, so the learner, the decision log and the analytics
(bandit.learn.pacing) use the time requests leave over instead of taking turns with them.
One waiter gets each idle moment, in turn: a request arriving then waits behind one
duty's slice, not behind all three.
On any other event loop (tests, a host application) it is a plain ``sleep(0)``.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections import deque


class ServingSelector(selectors.DefaultSelector):   # type: ignore[misc, valid-type]
    def __init__(self, poll_seconds: float) -> None:
        super().__init__()
        self._poll_seconds = poll_seconds
        self._idle_waiters: deque[asyncio.Future[None]] = deque()

    def wait_idle(self, future: asyncio.Future[None]) -> None:
        self._idle_waiters.append(future)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:   # callbacks are ready: just collect I/O
            return super().select(0)
        while self._idle_waiters:   # nothing is ready: one background duty's turn (in order)
            future = self._idle_waiters.popleft()
            if not future.done():
                future.set_result(None)
                return super().select(0)
        if self._poll_seconds <= 0:
            return super().select(timeout)
        spin = self._poll_seconds if timeout is None else min(self._poll_seconds, timeout)
        deadline = time.perf_counter() + spin
        while True:   # each select(0) releases the GIL: threads still run
            ready = super().select(0)
            if ready or time.perf_counter() >= deadline:
                break
        if ready:
            return ready
        return super().select(None if timeout is None else max(0.0, timeout - spin))


class ServingEventLoop(asyncio.SelectorEventLoop):
    def __init__(self, busy_poll_us: float = 0.0) -> None:
        self.serving_selector = ServingSelector(max(0.0, busy_poll_us) / 1e6)
        super().__init__(self.serving_selector)


def new_event_loop(busy_poll_us: float) -> asyncio.AbstractEventLoop:
    return ServingEventLoop(busy_poll_us)


async def idle_turn() -> None:
    """Return when the loop has nothing else ready (at once-ish on a foreign loop)."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, ServingEventLoop):
        await asyncio.sleep(0)
        return
    future: asyncio.Future[None] = loop.create_future()
    loop.serving_selector.wait_idle(future)
    await future


async def cancel_and_wait(task: "asyncio.Task[object]") -> None:
    """Cancel ``task`` and wait for it to end, cancelling again while it runs on: a
    cancellation that lands as a library call completes can be swallowed (Python 3.11's
    ``wait_for`` and some client code do), and a background loop would then run for ever
    while its owner's ``stop`` waits on it."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
