"""Keeps the embedded Redis running.

The embedded redis-server is a process of its own; if it dies (OOM killer, kill -9, a
crash) nothing else brings it back, and every request fails until an operator notices.
The supervisor watches it twice a second and restarts it from its AOF with a back-off
(0.5 s doubling to 5 s); every process on the data directory does, and the directory's
lock makes them start one server between them. The exit and each restart are logged;
``healthy`` turns false (``/healthz`` 503) once the server has been down for longer than
``redis_restart_timeout_seconds``, so a process manager restarts what cannot recover.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bandit.store.embedded import EmbeddedRedis, EmbeddedRedisError

log = logging.getLogger("nextbest.redis")

POLL_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0


class RedisSupervisor:
    def __init__(self, server: EmbeddedRedis, restart_timeout: float) -> None:
        self.server = server
        self.restart_timeout = restart_timeout
        self.down_since: float | None = None   # time.monotonic() the server was found gone
        self.last_error: str | None = None
        self.restarts = 0
        self._task: asyncio.Task | None = None

    @property
    def healthy(self) -> bool:
        return self.down_since is None or time.monotonic() - self.down_since <= self.restart_timeout

    @property
    def problem(self) -> str:
        down = 0.0 if self.down_since is None else time.monotonic() - self.down_since
        return (f"the embedded Redis in {self.server.data_dir} has been down for {down:.0f} s and could not be "
                f"restarted: {self.last_error or 'unknown'}")

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="nextbest-redis-supervisor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            ended = await asyncio.to_thread(self.server.exited)
            if ended is not None:
                await self._bring_back(ended)

    async def _bring_back(self, ended: str) -> None:
        self.down_since = time.monotonic()
        log.error("the embedded redis-server stopped (%s); restarting it from its AOF", ended)
        backoff = POLL_SECONDS
        announced = False
        while True:
            try:
                await asyncio.to_thread(self.server.start)
            except (EmbeddedRedisError, OSError) as exc:
                lines = [line for line in str(exc).splitlines() if line.strip()]
                self.last_error = lines[0] + (f" {lines[-1].strip()}" if len(lines) > 1 else "")
                log.error("restarting the embedded redis-server failed (%s); next try in %.1f s", self.last_error,
                          backoff)
                wait = backoff
                if not announced:   # wake at the timeout, to say at once that /healthz turns 503
                    wait = min(wait, max(0.01, self.down_since + self.restart_timeout + 0.01 - time.monotonic()))
                await asyncio.sleep(wait)
                if not self.healthy and not announced:
                    announced = True
                    log.error("the embedded redis-server has been down for more than %.0f s "
                              "(redis_restart_timeout_seconds): /healthz now answers 503", self.restart_timeout)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            self.restarts += 1
            pid = self.server.pid()
            log.warning("the embedded redis-server is back (pid %s, %s) after %.1f s", pid,
                        "started here" if self.server.started_here else "started by another process",
                        time.monotonic() - self.down_since)
            self.down_since, self.last_error = None, None
            return
