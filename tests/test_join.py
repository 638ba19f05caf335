"""The join in Redis under races: several processes' stores posting rewards, retrying
and expiring deadlines at once still join every event exactly once."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
import redis.asyncio as aioredis

from bandit.store.keys import Keys
from bandit.store.store import ShownOffer, Store
from tests.harness import joined_entries


@pytest.fixture
async def stores(redis_url, key_prefix):
    """Four independent clients: as if four service processes shared one Redis."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(4)]
    stores = [Store(c, Keys(key_prefix)) for c in clients]
    yield stores
    for store in stores:
        await store.close()
    for client in clients:
        await client.aclose()


RECORD = orjson.dumps({"chosen": 0, "pmf": [1.0]})


async def test_racing_rewards_and_expiry_join_each_event_once(stores):
    rng = random.Random(5)
    events = [f"ev{i}" for i in range(400)]
    await asyncio.gather(*(rng.choice(stores).create_decision(e, RECORD, 150, False) for e in events))

    async def reward_storm(store: Store) -> list[str]:
        statuses = []
        for event_id in rng.sample(events, len(events)):
            status, _ = await store.post_reward(event_id, 1.0, "first", None)
            statuses.append(status)
        return statuses

    async def expire_storm(store: Store) -> None:
        for _ in range(10):
            await store.expire_due(default_reward=0.0, limit=50)
            await asyncio.sleep(0.02)

    results = await asyncio.gather(*(reward_storm(s) for s in stores), *(expire_storm(s) for s in stores))
    statuses = [status for result in results[:4] for status in result]
    await asyncio.sleep(0.2)
    while await stores[0].expire_due(default_reward=0.0) > 0:
        pass

    joined = await joined_entries(stores[0])
    assert sorted(e.event_id for e in joined) == sorted(events)   # each event exactly once
    rewarded = sum(1 for e in joined if e.kind == "joined")
    assert statuses.count("joined") == rewarded
    assert rewarded + sum(1 for e in joined if e.kind == "defaulted") == len(events)
    counters = await stores[0].stats()
    assert counters["rewards_duplicate"] + counters.get("rewards_late", 0) + rewarded == len(statuses)


async def test_pipelined_calls_keep_their_own_answers(stores):
    """Calls coalesced into one pipeline get their own results and errors back."""
    store = stores[0]
    created = await asyncio.gather(*(store.create_decision(f"p{i}", RECORD, 60_000, False) for i in range(300)))
    assert created == [None] * 300
    answers = await asyncio.gather(*(store.post_reward(f"p{i}" if i % 3 else "absent", float(i), "first", None)
                                     for i in range(300)))
    for i, (status, detail) in enumerate(answers):
        assert (status, detail) == (("joined", repr(float(i))) if i % 3 else ("unknown", None))


async def test_scripts_reload_after_script_flush(stores):
    store = stores[0]
    assert await store.create_decision("before", RECORD, 60_000, False) is None
    await store.redis.script_flush()
    assert await store.create_decision("after", RECORD, 60_000, False) is None


async def test_a_limit_reached_between_screening_and_storing_refuses_the_decision(stores, key_prefix):
    from bandit.store.limits import Limit, ServedLimits
    from bandit.store.store import LimitReached

    counter = f"{key_prefix}:cap:o:imp:total"
    served = ServedLimits([Limit(counter, 2, 0, "", "cap", "2 impressions in total reached")], "", "", 0)
    results = await asyncio.gather(*(s.create_decision(f"l{i}", RECORD, 60_000, False, [ShownOffer("x", 1.0, served)])
                                     for i, s in enumerate(stores * 2)), return_exceptions=True)
    assert sum(r is None for r in results) == 2
    refused = [r for r in results if isinstance(r, LimitReached)]
    assert len(refused) == 6 and refused[0].limit.detail == "2 impressions in total reached"
    assert int(await stores[0].redis.get(counter)) == 2
    states = [await stores[0].event_state(f"l{i}") for i in range(8)]
    assert sum(state is not None for state in states) == 2   # refused decisions left nothing behind


async def test_one_reaper_tick_settles_every_overdue_decision_in_short_calls(stores):
    """Expiry goes in calls of EXPIRE_BATCH (a long script would stall every client), and
    one tick repeats them until nothing overdue is left: no backlog waits for the next."""
    from bandit.config import Settings
    from bandit.store.store import EXPIRE_BATCH
    from bandit.learn.worker import Worker

    store = stores[0]
    overdue = 3 * EXPIRE_BATCH + 10
    await asyncio.gather(*(store.create_decision(f"o{i}", RECORD, 0, False) for i in range(overdue)))
    await asyncio.sleep(0.01)
    assert await store.expire_due(default_reward=0.0) == EXPIRE_BATCH   # one call takes one batch
    worker = Worker(Settings(reaper_interval_seconds=3600.0), store, model=None, lead=False)  # type: ignore[arg-type]
    reaper = asyncio.create_task(worker._expire_loop())
    try:
        async with asyncio.timeout(10):
            while await store.stream_length() < overdue:
                await asyncio.sleep(0.01)
    finally:
        reaper.cancel()
    joined = await joined_entries(store)
    assert sorted(e.event_id for e in joined) == sorted(f"o{i}" for i in range(overdue))
    assert {e.kind for e in joined} == {"defaulted"}


async def test_a_settled_event_keeps_its_fields_in_a_compact_hash(stores):
    """The record (longer than hash-max-*-value) makes a pending event's hash a hashtable,
    which Redis never converts back: the join writes the fields left into a new hash, so
    what is kept for the retention is a compact list, with every field and the TTL."""
    store = stores[0]
    client = store.redis
    record = orjson.dumps({"features": "x" * 300, "chosen": 0, "pmf": [1.0]})
    limit = int((await client.config_get("hash-max-*-value")).popitem()[1])
    assert len(record) > limit
    await store.create_decision("rewarded", record, 60_000, False, (ShownOffer("o1", 2.0),))
    await store.create_decision("expired", record, 1, False, (ShownOffer("o1", 2.0),))
    assert await client.object("encoding", store.keys.event("rewarded")) == b"hashtable"   # holding the record
    pending = {e: await store.event_state(e) for e in ("rewarded", "expired")}
    big = await client.memory_usage(store.keys.event("rewarded"))

    assert (await store.post_reward("rewarded", 1.0, "first", "rid-1")) == ("joined", "1.0")
    for _ in range(500):   # the 1 ms deadline, on the Redis clock
        await store.expire_due(default_reward=0.0)
        if await store.pending_count() == 0:
            break
        await asyncio.sleep(0.01)
    for event_id, state, reward, n in (("rewarded", "j", "1.0", "1"), ("expired", "d", "0.0", "0")):
        key = store.keys.event(event_id)
        assert await client.object("encoding", key) in (b"listpack", b"ziplist")
        assert b"rec" not in await client.hkeys(key)
        settled = await store.event_state(event_id)
        assert {k: v for k, v in settled.items() if k not in ("jt", "sid")} == {
            **pending[event_id], "st": state, "r": reward, "n": n}
        assert settled["sid"] and int(settled["jt"]) > 0
        assert 2 * 86400_000 - 60_000 < await client.pttl(key) <= 2 * 86400_000
        assert await client.memory_usage(key) < big / 2
    assert (await store.post_reward("rewarded", 1.0, "first", "rid-1")) == ("duplicate", "1.0")
    assert (await store.post_reward("expired", 1.0, "first", None))[0] == "late"


async def test_a_settled_event_and_its_reward_ids_expire_after_the_settled_retention(redis_url, key_prefix):
    """``settled_retention_seconds`` bounds what Redis keeps per settled event (its hash and
    its reward ids) without shortening a pending one's life: that must outlast a reaper
    that is down past the deadline, or the decision would never be joined."""
    client = aioredis.Redis.from_url(redis_url)
    store = Store(client, Keys(key_prefix), settled_retention_seconds=30)
    try:
        await store.create_decision("short", RECORD, 60_000, False, (ShownOffer("o1"),))
        assert await client.pttl(store.keys.event("short")) > 2 * 86400_000   # wait + the pending margin
        assert (await store.post_reward("short", 1.0, "first", "rid-1"))[0] == "joined"
        for key in (store.keys.event("short"), store.keys.reward_ids("short")):
            assert 0 < await client.pttl(key) <= 30_000
        assert (await store.post_reward("short", 0.0, "first", "rid-1")) == ("duplicate", "1.0")
    finally:
        await store.close()
        await client.aclose()
