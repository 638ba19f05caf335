"""The serving process's event loop: asyncio's, with a short busy poll before it sleeps.

Between requests a decide waits twice on Redis (~50-100 µs each) and the loop would block
in epoll each time. On a virtual machine a blocked vCPU halts, and waking it again (an
interrupt through the hypervisor) costs tens to hundreds of microseconds: at light load
that doubled a decision's latency. Polling for ``busy_poll_us`` before blocking catches
the Redis reply or the next request while the core is still running; a quiet process
still sleeps after that. The same trade the kernel's haltpoll and SO_BUSY_POLL make:
some CPU for latency (see docs/benchmarks.md). ``busy_poll_us: 0`` turns it off.
"""

from __future__ import annotations

import asyncio
import selectors
import time


class BusyPollSelector(selectors.DefaultSelector):   # type: ignore[misc, valid-type]
    def __init__(self, poll_seconds: float) -> None:
        super().__init__()
        self._poll_seconds = poll_seconds

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return super().select(0)
        spin = self._poll_seconds if timeout is None else min(self._poll_seconds, timeout)
        deadline = time.perf_counter() + spin
        while True:   # each select(0) releases the GIL: threads still run
            ready = super().select(0)
            if ready or time.perf_counter() >= deadline:
                break
        if ready:
            return ready
        return super().select(None if timeout is None else max(0.0, timeout - spin))


def new_event_loop(busy_poll_us: float) -> asyncio.AbstractEventLoop:
    if busy_poll_us <= 0:
        return asyncio.new_event_loop()
    return asyncio.SelectorEventLoop(BusyPollSelector(busy_poll_us / 1e6))
