"""The hot path's pipelined Redis connection: replies reach their own callers, errors
stay with the call that caused them, and a lost connection fails only what was in
flight and is reopened for the next call."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bandit.store.batching import Script, ScriptBatcher

ECHO = Script("return {KEYS[1], ARGV[1]}")
FAIL = Script("return redis.error_reply('refused: ' .. ARGV[1])")


@pytest.fixture
async def batcher(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    batcher = ScriptBatcher(client)
    yield batcher, client
    await batcher.close()
    await client.aclose()


async def test_concurrent_calls_get_their_own_replies_and_errors(batcher, key_prefix):
    batcher, _ = batcher
    calls = [batcher.call(FAIL if i % 7 == 0 else ECHO, [f"{key_prefix}:k{i}"], [f"é|{i}"]) for i in range(500)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    for i, result in enumerate(results):
        if i % 7 == 0:
            assert isinstance(result, ResponseError) and f"refused: é|{i}" in str(result)
        else:
            assert result == [f"{key_prefix}:k{i}".encode(), f"é|{i}".encode()]
    assert await batcher.command("MGET", f"{key_prefix}:absent") == [None]


async def test_unknown_scripts_are_loaded_once_redis_forgot_them(batcher, key_prefix):
    batcher, client = batcher
    script = Script(f"return '{key_prefix}'")   # a script this Redis has never seen
    assert await client.script_exists(script.sha) == [False]
    assert await asyncio.gather(*(batcher.call(script, [], []) for _ in range(20))) == [key_prefix.encode()] * 20
    assert await client.script_exists(script.sha) == [True]
    await client.script_flush()
    assert await batcher.call(script, [], []) == key_prefix.encode()


async def test_a_lost_connection_fails_what_was_in_flight_and_reconnects(batcher, key_prefix):
    batcher, client = batcher
    name = f"{key_prefix}-pipe"
    await batcher.command("CLIENT", "SETNAME", name)
    blocked = asyncio.ensure_future(batcher.command("BLPOP", f"{key_prefix}:never", 30))
    await asyncio.sleep(0.1)
    assert await _kill(client, name) == 1
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(blocked, 5)
    assert await batcher.call(ECHO, [f"{key_prefix}:k"], ["again"]) == [f"{key_prefix}:k".encode(), b"again"]


async def _kill(client: aioredis.Redis, name: str) -> int:
    killed = 0
    for info in await client.client_list():
        if info.get("name") == name:
            killed += await client.execute_command("CLIENT", "KILL", "ID", info["id"])
    return killed


async def test_background_slices_are_short_while_a_request_waits_on_redis(batcher, key_prefix):
    """bandit.learn.pacing: a duty that gets an idle turn while a reply is pending works for
    SHORT_SLICE_SECONDS only, then for the full SLICE_SECONDS once nothing is pending."""
    from bandit.store.batching import replies_pending
    from bandit.learn.pacing import SHORT_SLICE_SECONDS, SLICE_SECONDS, Pace

    batcher, _ = batcher
    await batcher.command("PING")   # open the pipe
    pace = Pace(max_lag_seconds=10)
    assert not replies_pending()
    blocked = asyncio.ensure_future(batcher.command("BLPOP", f"{key_prefix}:slow", 0.3))
    await asyncio.sleep(0.05)
    assert replies_pending()
    started = time.perf_counter()
    await pace.turn()
    assert pace._deadline - started <= SHORT_SLICE_SECONDS + 0.005
    assert await blocked is None
    assert not replies_pending()
    started = time.perf_counter()
    await pace.turn()
    assert pace._deadline - started >= SLICE_SECONDS * 0.9
