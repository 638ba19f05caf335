"""The DSJSON log: rotation, compression, and recovery after a crash mid-write."""

from __future__ import annotations

import asyncio

import orjson
import redis.asyncio as aioredis

from bandit.decide.record import read_record
from bandit.learn.decision_log import DecisionLog, log_files
from bandit.store.keys import Keys
from bandit.store.store import Store
from tests.conftest import OFFERS
from tests.harness import read_lines


async def test_rotates_by_size_compresses_and_keeps_order(make_client, data_dir):
    client = await make_client(log_rotate_bytes=3000, log_compress=True)
    ids = []
    for i in range(40):
        body = {"channel": "web", "context": {"i": i}, "offers": OFFERS, "event_id": f"rot-{i}"}
        decision = await (await client.post("/v1/decide", json=body)).json()
        await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 1})
        ids.append(decision["event_id"])
        await asyncio.sleep(0.01)   # several write batches, so rotation happens between them
    for _ in range(200):
        if len(read_lines(data_dir / "decisions")) == 40:
            break
        await asyncio.sleep(0.05)
    files = log_files(data_dir / "decisions")
    assert len(files) > 2
    assert all(f.name.endswith(".dsjson.gz") for f in files[:-1]) and files[-1].name.endswith(".dsjson")
    assert [line["EventId"] for line in read_lines(data_dir / "decisions")] == ids


async def test_recovery_cuts_a_torn_line_and_resumes_after_the_last_written(make_settings, redis_url, data_dir):
    settings = make_settings()
    client = aioredis.Redis.from_url(redis_url)
    store = Store(client, Keys(settings.key_prefix))
    record = orjson.dumps({"id": "x", "ts": 0, "channel": "web", "sid": None, "shared": {"Context": {"a=1": 1}},
                           "offers": ["o"], "actions": [{"id=o": 1}], "chosen": 0, "pmf": [1.0], "model": "0.0",
                           "k": 1, "defer": False})
    for i in range(6):
        await store.create_decision(f"e{i}", record, 60_000, False)
        await store.post_reward(f"e{i}", 1.0, "first", None)
    first = DecisionLog(settings, store, "writer-1")
    await first.prepare()
    events = await store.read_group("log", "writer-1", 4, block_ms=10, decode=read_record)
    await first.write(events)                        # e0..e3 written and acknowledged
    first.close_file()
    [current] = log_files(settings.log_dir)
    with open(current, "ab") as fh:                   # a crash in the middle of the next line
        fh.write(b'{"_label_cost": -1.0, "EventId": "e4", "_nb": {"str')
    await client.set(store.keys.log_offset, events[1].stream_id)   # Redis lagging behind the file

    second = DecisionLog(settings, store, "writer-2")
    await second.prepare()
    assert second.offset == events[-1].stream_id
    rest = await store.read_group("log", "writer-2", 10, block_ms=10, decode=read_record)
    assert [e.event_id for e in rest] == ["e4", "e5"]
    await second.write(rest)
    second.close_file()
    assert [line["EventId"] for line in read_lines(settings.log_dir)] == [f"e{i}" for i in range(6)]
    await client.aclose()


async def test_the_typed_record_keeps_every_field_and_the_same_lines(make_client, make_settings, redis_url):
    """The decision record is one typed value (bandit.decide.record): what the decider
    writes decodes into it with nothing left over, the actions stay raw JSON whose VW
    lines equal those of the decoded features, and a record re-encoded logs the same."""
    import msgspec

    from bandit.decide.record import DecisionRecord, encode_record, read_record
    from bandit.learn.decision_log import dsjson_record
    from bandit.learn.records import action_lines
    from bandit.store.store import JoinedEvent
    from policies.vwtext import action_line

    client = await make_client()
    tricky = [{**OFFERS[0], "features": {"note": "a|b:c d\né", "price": 2.5}}, *OFFERS[1:]]
    body = {"channel": "web", "subscriber_id": "s-1", "context": {"reason": "x|y"}, "offers": tricky,
            "event_id": "rec-1"}
    assert (await client.post("/v1/decide", json=body)).status == 200
    settings = make_settings()
    raw = await aioredis.Redis.from_url(redis_url).hget(Keys(settings.key_prefix).event("rec-1"), "rec")
    plain = orjson.loads(raw)
    fields = set(DecisionRecord.__struct_fields__)
    assert set(plain) <= fields, set(plain) - fields
    record = read_record(raw)
    assert record.v == 2 and record.id == "rec-1" and len(record.slots) == 1
    assert all(isinstance(a, msgspec.Raw) for a in record.actions)
    assert action_lines(record.actions) == [action_line(a) for a in plain["actions"]]
    again = read_record(encode_record(record))
    events = [JoinedEvent("1-0", "rec-1", r, 1.0, "joined", 1, 0) for r in (record, again)]
    assert orjson.loads(orjson.dumps(dsjson_record(events[0]))) == orjson.loads(orjson.dumps(dsjson_record(events[1])))


async def test_a_malformed_record_is_skipped_by_the_learner_and_the_log(make_settings, redis_url):
    """Records the background reader cannot read (not JSON, actions not a list) are
    skipped by both, loudly; an action that is not an object cannot be learned but is
    logged as it was stored; the entries around them are learned and logged."""
    from bandit.decide.decider import ModelHolder
    from bandit.decide.record import read_record
    from bandit.learn.training import Trainer
    from policies.learner import Learner

    settings = make_settings()
    store = Store(aioredis.Redis.from_url(redis_url), Keys(settings.key_prefix))
    good = {"id": "g", "ts": 0, "channel": "web", "sid": None, "shared": {"Context": {"a=1": 1}}, "offers": ["o"],
            "actions": [{"id=o": 1}], "chosen": 0, "pmf": [1.0], "model": "0.0", "k": 1, "defer": False}
    records = [orjson.dumps(good), b"not json", orjson.dumps({**good, "actions": 5}),
               orjson.dumps({**good, "actions": [[1, 2]]}), orjson.dumps(good)]
    for i, record in enumerate(records):
        await store.create_decision(f"m{i}", record, 60_000, False)
        await store.post_reward(f"m{i}", 1.0, "first", None)
    log = DecisionLog(settings, store, "writer")
    await log.prepare()
    events = await store.read_group("log", "writer", 10, block_ms=10, decode=read_record)
    await log.write(events)
    log.close_file()
    assert [line["EventId"] for line in read_lines(settings.log_dir)] == ["m0", "m3", "m4"]

    model = ModelHolder(Learner(settings.learner), 0)
    trainer = Trainer(settings, store, model, "learner")
    assert trainer.learn(events) == 3
    assert model.learner.learned == 2
