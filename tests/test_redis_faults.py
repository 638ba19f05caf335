"""The service facing a Redis that does not answer: a real redis-server this test starts
itself is frozen with SIGSTOP. Every request that needs Redis gets a 503
``redis_unavailable`` with ``Retry-After`` within the command deadline; the probes,
``/metrics`` and ``/v1/stats`` answer within a bounded time; after SIGCONT decisions work
again."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.conftest import OFFERS

DEADLINE = 0.5


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


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


async def test_error_replies_name_the_condition_or_are_a_500(own_redis, make_client, key_prefix, caplog):
    """Real server states: out of memory, a failed RDB save, a replica, a script that runs
    too long; and an error reply that is none of those (a key of the wrong type)."""
    import threading

    import redis

    from bandit.store.keys import Keys

    client = await make_client(redis_url=own_redis.url)
    r = redis.Redis.from_url(own_redis.url)
    n = iter(range(1000))

    async def decide(event_id: str | None = None):
        body = {"channel": "web", "context": {"a": 1}, "offers": OFFERS, "event_id": event_id or f"d{next(n)}"}
        response = await client.post("/v1/decide", json=body)
        return response.status, await response.json(), response.headers

    assert (await decide())[0] == 200
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", "1")
    status, body, headers = await decide()
    r.config_set("maxmemory", "0")
    assert (status, body["error"]["code"]) == (503, "redis_oom"), body
    assert headers["Retry-After"] == "1" and "out of memory" in body["error"]["message"]

    r.config_set("save", "3600 1")
    r.config_set("dir", "/proc")   # the RDB temp file cannot be created there
    r.bgsave()
    _wait(lambda: r.info("persistence")["rdb_last_bgsave_status"] == "err"
          and not r.info("persistence")["rdb_bgsave_in_progress"])
    status, body, _ = await decide()
    r.config_set("dir", str(own_redis.data_dir))
    r.bgsave()
    _wait(lambda: r.info("persistence")["rdb_last_bgsave_status"] == "ok")
    r.config_set("save", "")
    assert (status, body["error"]["code"]) == (503, "redis_misconf"), body

    r.replicaof("127.0.0.1", "1")   # a replica of a primary that is not there: read-only
    try:
        status, body, _ = await decide()
    finally:
        r.replicaof("NO", "ONE")
    assert (status, body["error"]["code"]) == (503, "redis_readonly"), body

    r.config_set("lua-time-limit", "50")
    looping = threading.Thread(target=_run_forever_script, args=(own_redis.url,))
    looping.start()
    try:
        await asyncio.sleep(0.3)
        status, body, _ = await decide()
    finally:
        _wait(lambda: _kill_script(r))
        looping.join(10)
    assert (status, body["error"]["code"]) == (503, "redis_busy"), body

    r.set(Keys(key_prefix).event("wrong-type"), "a string, not a hash")
    for _ in range(3):
        status, body, _ = await decide("wrong-type")
        assert (status, body["error"]["code"]) == (500, "redis_error"), body
    started = time.monotonic()
    while (await decide())[0] != 200:   # everything passed: decisions work again
        assert time.monotonic() - started < 5
        await asyncio.sleep(0.05)

    lines = [rec for rec in caplog.records if rec.name == "nextbest" and "redis" in rec.getMessage()]
    messages = [rec.getMessage() for rec in lines]
    for name in ("OOM", "MISCONF", "READONLY", "BUSY"):
        assert sum(f"({name})" in m for m in messages) == 1, messages
    assert sum("redis error reply" in m for m in messages) == 1, messages   # 3 requests, one line
    assert not any(rec.exc_info for rec in lines)
    r.close()


def _run_forever_script(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as blocker:
        with __import__("contextlib").suppress(redis.ResponseError):
            blocker.eval("while true do end", 0)


def _kill_script(r) -> bool:
    import redis

    try:
        r.script_kill()
        return True
    except redis.ResponseError:   # NOTBUSY: the script has not started yet
        return False


async def test_a_redis_loading_its_data_is_a_503_naming_it(own_redis, make_client):
    """A restart with a large AOF: while Redis loads it, it answers LOADING."""
    import subprocess

    import redis

    client = await make_client(redis_url=own_redis.url)
    decide = {"channel": "web", "context": {"a": 1}, "offers": OFFERS}
    assert (await client.post("/v1/decide", json=decide)).status == 200
    r = redis.Redis.from_url(own_redis.url)
    r.execute_command("DEBUG", "POPULATE", 1_500_000, "filler")
    r.bgrewriteaof()
    _wait(lambda: not r.info("persistence")["aof_rewrite_in_progress"]
          and not r.info("persistence")["aof_rewrite_scheduled"], timeout=60)
    r.close()
    os.kill(own_redis._proc.pid, signal.SIGKILL)
    own_redis._proc.wait()
    restarted = subprocess.Popen(own_redis._server_args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 cwd=own_redis.data_dir)
    own_redis._proc = restarted   # the fixture stops it
    codes = []
    started = time.monotonic()
    while time.monotonic() - started < 30:
        response = await client.post("/v1/decide", json=decide)
        if response.status == 200:
            break
        codes.append((await response.json())["error"]["code"])
        await asyncio.sleep(0.01)
    assert "redis_loading" in codes, sorted(set(codes))
    assert set(codes) <= {"redis_unavailable", "redis_loading"}, sorted(set(codes))
