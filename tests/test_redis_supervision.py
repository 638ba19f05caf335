"""The embedded Redis is supervised: kill -9 its redis-server under a running
``nextbest serve`` and decisions work again within seconds, restarted from the AOF with
nothing acknowledged lost; a server that cannot be brought back (its AOF unreadable)
turns /healthz 503 after ``redis_restart_timeout_seconds``, and comes back once it can."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp
import pytest

from tests.harness import decide_and_reward, Harness, Service, wait_until, read_lines

OFFERS = [{"id": f"o{i}"} for i in range(3)]


_pairs = decide_and_reward


async def _status(http: aiohttp.ClientSession, url: str, **kwargs) -> int:
    try:
        async with http.request("POST" if "json" in kwargs else "GET", url, **kwargs) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return 0


@pytest.mark.timeout(120)
async def test_a_killed_embedded_redis_is_restarted_and_loses_nothing(harness: Harness) -> None:
    if harness.redis_url is not None:
        pytest.skip("supervision is of the embedded Redis")
    service = await harness.start(env={"NEXTBEST_REDIS_RESTART_TIMEOUT_SECONDS": "2"})
    pidfile, aof = harness.data_dir / "redis.pid", harness.data_dir / "appendonly.aof"
    probe = {"channel": "web", "context": {}, "offers": OFFERS}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        acked = await _pairs(http, service, "a", 40)

        first = int(pidfile.read_text())
        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        await wait_until(lambda: _decides(http, service, probe), timeout=15, what=f"decide after the kill\n"
                         f"{service.log_tail()}")
        back_after = time.monotonic() - killed
        print(f"decide works again {back_after:.2f} s after kill -9 of redis-server")
        assert back_after < 5, back_after
        assert int(pidfile.read_text()) != first
        assert await _status(http, f"{service.base}/healthz") == 200
        acked += await _pairs(http, service, "b", 40)

        # A server that cannot start: its AOF replaced by garbage (the real one kept aside;
        # the running server goes on appending to it, so it holds every acknowledged write).
        os.rename(aof, aof.with_suffix(".kept"))
        aof.write_bytes(b"not an append-only file\r\n")
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        await wait_until(lambda: _is(http, f"{service.base}/healthz", 503), timeout=15,
                         what=f"/healthz 503\n{service.log_tail()}")
        async with http.get(f"{service.base}/healthz") as response:
            body = await response.json()
        assert body["error"]["code"] == "redis_down" and "could not be restarted" in body["error"]["message"]
        os.replace(aof.with_suffix(".kept"), aof)
        await wait_until(lambda: _decides(http, service, probe), timeout=15, what=f"decide after the AOF is back\n"
                         f"{service.log_tail()}")
        await wait_until(lambda: _is(http, f"{service.base}/healthz", 200), timeout=2, what="/healthz 200")
        acked += await _pairs(http, service, "c", 20)
        await wait_until(lambda: _logged(harness, len(acked)), timeout=15, what=f"the log to catch up\n"
                         f"{service.log_tail()}")
    await harness.terminate(service)
    logged = [line["EventId"] for line in read_lines(harness.data_dir / "decisions")]
    assert logged == acked, service.log_tail()   # each acknowledged event exactly once, in order
    log = service.log_path.read_text()
    assert "killed by signal 9" in log and "redis-server is back" in log and "/healthz now answers 503" in log


async def _logged(harness: Harness, count: int) -> bool:
    try:
        return len(read_lines(harness.data_dir / "decisions")) >= count
    except (OSError, ValueError):
        return False


async def _decides(http: aiohttp.ClientSession, service: Service, body: dict) -> bool:
    return await _status(http, f"{service.base}/v1/decide", json=body) == 200


async def _is(http: aiohttp.ClientSession, url: str, status: int) -> bool:
    return await _status(http, url) == status
