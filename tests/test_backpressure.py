"""The backlog bound against a real Redis and a real VW: a service whose learner cannot
lead (disabled, or the lease held by a process elsewhere that does nothing) fills the
joined stream past ``backlog_limit``; decide, reward and activate then answer 503
backlog_full with Retry-After and store nothing; once a leader drains the stream they answer 2xx again and
every acknowledged reward is in the decision log exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

import orjson
import pytest
import redis.asyncio as aioredis

from bandit.config import ConfigError
from tests.harness import read_lines
from bandit.runtime import open_runtime
from bandit.store.backlog import read_backlog
from bandit.store.keys import ANALYTICS_GROUP, LEARNER_GROUP, LOG_GROUP, Keys
from bandit.store.store import Store
from tests.conftest import OFFERS
from tests.harness import REPO_ROOT, wait_until
from tests.test_metrics import scrape, value

LIMIT = 8
STRANGER = "elsewhere:1:idle"   # a lease holder on another host: never taken over, never working


async def _pair(client, event_id: str) -> tuple[int, int]:
    body = {"channel": "web", "context": {"n": len(event_id) % 3}, "offers": OFFERS, "event_id": event_id}
    decided = await client.post("/v1/decide", json=body)
    if decided.status != 200:
        return decided.status, 0
    rewarded = await client.post("/v1/reward", json={"event_id": event_id, "reward": 1})
    return 200, rewarded.status


async def _status(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`nextbest status` as an operator runs it: another process, the same Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTBEST_")}
    env.update({"NEXTBEST_KEY_PREFIX": prefix, "NEXTBEST_BACKLOG_LIMIT": str(LIMIT),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))})
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bandit.cli", "status", "--redis-url", redis_url, *args],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("why", ["learner_disabled", "lease_held_elsewhere"])
async def test_a_full_backlog_refuses_until_a_leader_drains_it(why, make_client, make_settings, redis_url,
                                                               key_prefix, data_dir):
    keys = Keys(key_prefix)
    redis = aioredis.Redis.from_url(redis_url)
    if why == "lease_held_elsewhere":
        await redis.set(keys.worker_lock, STRANGER, px=600_000)
    client = await make_client(backlog_limit=LIMIT, run_learner=why == "lease_held_elsewhere")
    try:
        waiting = "waiting"   # decided, never rewarded yet: pending, not in the stream
        assert (await client.post("/v1/decide", json={"channel": "web", "offers": OFFERS,
                                                      "event_id": waiting})).status == 200
        deferred = "deferred"   # decided, not yet shown: its activation comes while the backlog is full
        assert (await client.post("/v1/decide", json={"channel": "web", "offers": OFFERS, "event_id": deferred,
                                                      "defer_activation": True})).status == 200
        acked = []
        for n in range(LIMIT + 1):   # at most LIMIT joined events wait until the last one: all accepted
            event_id = f"e{n}"
            assert await _pair(client, event_id) == (200, 200)
            acked.append(event_id)

        async def refusing():
            return (await client.get("/readyz")).status == 503
        await wait_until(refusing, timeout=5, what="the backlog reading to pass the bound")
        ready = await client.get("/readyz")
        assert (await ready.json())["error"]["code"] == "backlog_full"

        decided = await client.post("/v1/decide", json={"channel": "web", "offers": OFFERS, "event_id": "refused"})
        assert decided.status == 503 and decided.headers["Retry-After"] == "5"
        error = (await decided.json())["error"]
        assert error["code"] == "backlog_full" and f"{LIMIT + 1:,} joined events" in error["message"], error
        rewarded = await client.post("/v1/reward", json={"event_id": waiting, "reward": 1})
        assert rewarded.status == 503 and (await rewarded.json())["error"]["code"] == "backlog_full"
        assert rewarded.headers["Retry-After"] == "5"
        activated = await client.post(f"/v1/events/{deferred}/activate")
        assert activated.status == 503 and activated.headers["Retry-After"] == "5"
        assert (await activated.json())["error"]["code"] == "backlog_full"
        # nothing stored: the refused decision does not exist, the refused reward was not counted
        assert (await client.get("/v1/events/refused")).status == 404
        state = await (await client.get(f"/v1/events/{waiting}")).json()
        assert state["state"] == "pending" and state["rewards"] == 0, state
        state = await (await client.get(f"/v1/events/{deferred}")).json()
        assert state["state"] == "pending" and state["deferred"] and not state["activated"], state

        text = await scrape(client)
        assert value(text, "nextbest_backlog_refusals_total", request="decide") == 1
        assert value(text, "nextbest_backlog_refusals_total", request="reward") == 1
        assert value(text, "nextbest_backlog_refusals_total", request="activate") == 1
        assert value(text, "nextbest_backlog_full") == 1 and value(text, "nextbest_backlog_limit") == LIMIT
        for consumer in ("learner", "log", "analytics"):
            assert value(text, "nextbest_backlog_events", consumer=consumer) == LIMIT + 1, consumer

        shown = await _status(redis_url, key_prefix, "--json")
        assert shown.returncode == 0, shown.stderr
        report = orjson.loads(shown.stdout)
        leader = report["leader"]
        assert (leader is None) if why == "learner_disabled" else (leader["identity"] == STRANGER), report
        assert report["backlog"]["events"] == LIMIT + 1 and report["backlog"]["full"] is True
        assert report["backlog"]["limit"] == LIMIT
        assert report["backlog"]["consumers"]["log"]["undelivered"] == LIMIT + 1
        assert report["backlog"]["consumers"]["log"]["behind_seconds"] > 0
        assert report["model"]["checkpoint_version"] == 0
        lines = (await _status(redis_url, key_prefix)).stdout
        assert f"{LIMIT + 1} joined events behind" in lines and "FULL" in lines, lines
        assert ("leader     none" in lines) == (why == "learner_disabled"), lines

        async with _leader(why, make_settings, redis, keys):
            async def accepting():
                return (await client.get("/readyz")).status == 200
            await wait_until(accepting, timeout=20, what="a leader to drain the backlog")
            assert (await client.post("/v1/reward", json={"event_id": waiting, "reward": 1})).status == 200
            acked.append(waiting)
            activated = await client.post(f"/v1/events/{deferred}/activate")
            assert activated.status == 200 and (await activated.json())["status"] == "activated"
            for n in range(3):
                assert await _pair(client, f"after{n}") == (200, 200)
                acked.append(f"after{n}")

            async def logged():
                try:
                    lines = read_lines(data_dir / "decisions")
                except (OSError, ValueError):
                    return None
                return lines if len(lines) >= len(acked) else None
            lines = await wait_until(logged, timeout=20, what="every acknowledged reward in the log")
            await asyncio.sleep(0.5)   # a duplicate would come right after
            ids = [line["EventId"] for line in read_lines(data_dir / "decisions")]
            assert ids == acked, ids   # each once, in join order, none refused among them
            assert all(line["_nb"]["kind"] == "joined" for line in lines)
            after = orjson.loads((await _status(redis_url, key_prefix, "--json")).stdout)
            assert after["backlog"]["full"] is False and after["leader"] is not None
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def _leader(why: str, make_settings, redis: aioredis.Redis, keys: Keys):
    """A process that can lead: a separate learner (``nextbest learner`` in-process) when
    the service's is disabled; the service itself once the idle holder's lease is gone."""
    if why == "learner_disabled":
        async with open_runtime(make_settings(backlog_limit=LIMIT), lead=True):
            yield
    else:
        await redis.delete(keys.worker_lock)
        yield


@pytest.mark.parametrize("limit", ["-1", "many"])
def test_a_bad_backlog_limit_fails_at_load(make_settings, limit):
    with pytest.raises(ConfigError, match="backlog_limit"):
        make_settings(backlog_limit=limit)


def test_zero_means_unbounded(make_settings):
    assert make_settings(backlog_limit=0).backlog_limit == 0
    assert make_settings().backlog_limit == 1_000_000


async def test_the_backlog_is_exact_after_a_rewind_on_any_redis(make_client, redis_url, key_prefix):
    """Entries carry their number, so a group rewound with XGROUP SETID (Redis 7 then
    reports no lag; 6.2 never does) still has an exact backlog, in two round trips."""
    client = await make_client(run_learner=False)
    for n in range(6):
        assert await _pair(client, f"e{n}") == (200, 200)
    redis = aioredis.Redis.from_url(redis_url)
    keys = Keys(key_prefix)
    store = Store(redis, keys)
    try:
        backlog = await read_backlog(redis, keys)
        assert backlog.events == 6 and backlog.stream_length == 6
        assert all(c.exact and c.undelivered == 6 and c.pending == 0 for c in backlog.consumers.values())
        await store.ensure_group(LEARNER_GROUP)
        read = await store.read_group(LEARNER_GROUP, "c", 3, block_ms=None)
        await store.ack(LEARNER_GROUP, [read[0].stream_id])
        learner = (await read_backlog(redis, keys)).consumers[LEARNER_GROUP]
        assert (learner.pending, learner.undelivered, learner.exact) == (2, 3, True)
        assert learner.behind_seconds >= 0 and learner.last_delivered == read[-1].stream_id
        await store.rewind_group(LEARNER_GROUP, read[0].stream_id)   # as the learner does from a checkpoint
        learner = (await read_backlog(redis, keys)).consumers[LEARNER_GROUP]
        assert (learner.pending, learner.undelivered, learner.exact) == (2, 5, True)
        for event in await store.read_group(LEARNER_GROUP, "c", 10, block_ms=None):
            await store.ack(LEARNER_GROUP, [event.stream_id])
        await store.ack(LEARNER_GROUP, [e.stream_id for e in read])
        learner = (await read_backlog(redis, keys)).consumers[LEARNER_GROUP]
        assert (learner.events, learner.behind_seconds) == (0, 0.0)
        assert (await read_backlog(redis, keys)).slowest.name in (LOG_GROUP, ANALYTICS_GROUP)
    finally:
        await redis.aclose()
