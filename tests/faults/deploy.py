"""What the fault scenarios run on: real ``nextbest serve`` processes (tests.harness), on
the embedded Redis or on a redis-server of the scenario's own (TCP, AOF on) that it may
kill, restart, freeze or starve; and the end of every scenario: wait for the backlog to
drain, stop the services cleanly, read the counters and check the log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis

from tests.faults.checker import Verdict, check
from tests.faults.load import Load
from tests.harness import Harness, Service, _free_port, _s, short_tempdir


@dataclass(frozen=True)
class Plan:
    """How long and how hard: the short version (tests/test_faults.py, seconds per phase)
    or the full one (``make faults``)."""
    full: bool = False

    @property
    def phase_s(self) -> float:
        """Load before, during and after a fault."""
        return 30.0 if self.full else 2.0

    @property
    def workers(self) -> int:
        return 8 if self.full else 4

    @property
    def rate(self) -> float:
        return 150.0 if self.full else 60.0

    def load(self, bases: list[str], **kwargs) -> Load:
        return Load(bases, workers=self.workers, rate=self.rate, **kwargs)


class OwnRedis:
    """A redis-server of the scenario alone, on a free TCP port, appendonly (everysec): it
    is killed with -9 and restarted on the same files, frozen with SIGSTOP, or refused
    memory; always stopped at the end."""

    def __init__(self) -> None:
        self.dir = short_tempdir("nbfr")
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                    if client.ping():
                        return self
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"redis-server on {self.port} did not start: {self.dir / 'redis.log'}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(30)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def deployment(own_redis: bool = False) -> AsyncIterator[tuple[Harness, OwnRedis | None]]:
    """A harness on the embedded Redis, or on an OwnRedis with a unique key prefix; every
    process it started is stopped at the end, whatever happened."""
    server = OwnRedis().start() if own_redis else None
    data_dir = short_tempdir("nbf")
    if server is None:
        h = Harness("embedded", data_dir, "nb", None)
    else:
        h = Harness("external", data_dir, f"nbfault:{uuid.uuid4().hex[:10]}", server.url)
    try:
        yield h, server
    finally:
        for load in list(Load.running):   # a scenario that failed half-way
            await load.stop()
        try:
            h.cleanup()
        finally:
            if server is not None:
                server.stop()


async def stats(base: str) -> dict | None:
    """/v1/stats of one process, or None when it does not answer 200."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.get(f"{base}/v1/stats") as response:
                return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None


async def leader(services: list[Service]) -> Service | None:
    """The live process that holds the learner lease, if any."""
    for service in services:
        if service.proc.poll() is None:
            body = await stats(service.base)
            if body and body["learner"]["leading"]:
                return service
    return None


async def wait_leader(services: list[Service], timeout: float) -> tuple[Service | None, float]:
    """The leader among ``services`` within ``timeout``, and how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = await leader(services)
        if found is not None:
            return found, time.monotonic() - started
        await asyncio.sleep(0.1)
    return None, time.monotonic() - started


async def drain(services: list[Service], timeout: float = 60.0) -> None:
    """Wait until the leader has learned and logged every joined event (its /v1/stats), or
    ``timeout``: the checker then says what is missing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await leader(services)
        body = await stats(found.base) if found else None
        if body:
            counters = body["counters"]
            settled = counters.get("events_joined", 0) + counters.get("events_defaulted", 0) + \
                counters.get("events_dropped", 0)
            if counters.get("events_logged", 0) >= settled and body["model"]["examples_learned"] >= \
                    counters.get("events_joined", 0) - counters.get("events_unlearnable", 0):
                return
        await asyncio.sleep(0.2)


async def finish(verdict: Verdict, h: Harness, load: Load, log_dirs: list[Path] | None = None) -> Verdict:
    """The end of a scenario: stop the load, drain, stop every live service with SIGTERM
    (a final checkpoint), then check the log against the record and the counters."""
    record = await load.stop()
    live = [s for s in h.services if s.proc.poll() is None]
    await drain(live)
    for service in live:
        await h.terminate(service)
    client = h.redis()
    logged = _s(client.hget(h.keys.stats, "events_logged"))
    learned = _s(client.hget(h.keys.model, "learned"))
    check(verdict, record, log_dirs or [h.data_dir / "decisions"], int(logged or 0),
          int(learned) if learned is not None else None)
    tracebacks = [s.log_path.name for s in h.services if "Traceback" in s.log_path.read_text(errors="replace")]
    verdict.require(not tracebacks, f"a traceback in {tracebacks}")
    if not verdict.passed:
        verdict.notes += [s.log_tail() for s in h.services]
    return verdict
