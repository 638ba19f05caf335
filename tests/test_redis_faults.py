"""The service facing a Redis that does not answer: a real redis-server this test starts
itself is frozen with SIGSTOP. Every request that needs Redis gets a 503
``redis_unavailable`` with ``Retry-After`` within the command deadline; the probes,
``/metrics`` and ``/v1/stats`` answer within a bounded time; after SIGCONT decisions work
again."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Iterator

import pytest

from bandit.store.embedded import EmbeddedRedis
from tests.conftest import OFFERS
from tests.harness import short_tempdir

DEADLINE = 0.5


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of this test alone: it may be frozen and killed."""
    directory = short_tempdir("nbr")
    server = EmbeddedRedis(directory).start()
    assert server._proc is not None
    try:
        yield server
    finally:
        with_pid = server._proc.pid if server._proc is not None else None
        if with_pid is not None:
            with __import__("contextlib").suppress(ProcessLookupError):
                os.kill(with_pid, signal.SIGCONT)
        server.stop(force=True)
        shutil.rmtree(directory, ignore_errors=True)


async def _timed(client, method: str, path: str, **kwargs):
    started = time.monotonic()
    response = await client.request(method, path, **kwargs)
    body = await response.read()
    return response, body, time.monotonic() - started


async def test_a_frozen_redis_gets_503_within_the_deadline(own_redis, make_client, caplog):
    client = await make_client(redis_url=own_redis.url, redis_command_timeout_seconds=DEADLINE)
    decide = {"channel": "web", "context": {"a": 1}, "offers": OFFERS}
    assert (await client.post("/v1/decide", json=decide)).status == 200
    pid = own_redis._proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        for attempt in range(3):   # the first waits out the deadline; the next fail fast
            response, body, took = await _timed(client, "POST", "/v1/decide", json=decide)
            assert response.status == 503, body
            assert response.headers["Retry-After"] == "1"
            assert b'"code":"redis_unavailable"' in body
            assert took < DEADLINE * 2 + 0.5, took
        response, body, took = await _timed(client, "POST", "/v1/reward", json={"event_id": "x", "reward": 1})
        assert response.status == 503 and b"redis_unavailable" in body and took < DEADLINE * 2 + 0.5, took
        for path, status in (("/readyz", 503), ("/v1/stats", 503), ("/healthz", 200), ("/metrics", 200)):
            response, body, took = await _timed(client, "GET", path)
            assert response.status == status, (path, body)
            assert took < DEADLINE * 3 + 0.5, (path, took)
            if path == "/metrics":
                assert b"nextbest_redis_up 0.0" in body
            if status == 503:
                assert b'"redis_unavailable"' in body and response.headers["Retry-After"] == "1"
    finally:
        os.kill(pid, signal.SIGCONT)
    started = time.monotonic()
    while (await client.post("/v1/decide", json=decide)).status != 200:
        assert time.monotonic() - started < 5, "decisions did not come back after SIGCONT"
        await asyncio.sleep(0.05)
    assert (await client.get("/readyz")).status == 200
    lines = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
    assert 1 <= len(lines) <= 2, [r.getMessage() for r in lines]   # not one per request
    assert not any(r.exc_info for r in lines)
