"""Multi-slot decisions end to end, on a real Redis and a real VW CCB workspace: every
offer shown has its own probability, reward, join, learning, contact counting and log line."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
import redis.asyncio as aioredis

from bandit.decide.record import read_record
from bandit.state import DECIDER, SETTINGS
from bandit.store.keys import Keys
from tests.harness import read_lines

OFFERS = [{"id": f"o{i}", "features": {"price": float(i), "kind": "k|" + "ab"[i % 2]}, "value": 1.0 + i}
          for i in range(5)]
SLOTS = {"contact_center": 3}


def body(**extra):
    return {"channel": "contact_center", "subscriber_id": "79001234567", "context": {"reason": "roaming"},
            "offers": OFFERS, **extra}


async def decide(client, **extra) -> dict:
    response = await client.post("/v1/decide", json=body(**extra))
    assert response.status == 200, await response.text()
    return await response.json()


async def reward(client, expect: int, **fields) -> dict:
    response = await client.post("/v1/reward", json=fields)
    assert response.status == expect, await response.text()
    return await response.json()


async def until(predicate, timeout: float = 15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def logged(data_dir, count: int) -> list[dict]:
    async def lines():
        found = list(read_lines(data_dir / "decisions"))
        return found if len(found) >= count else None
    return await until(lines)


async def test_three_slots_distinct_each_with_its_probability(make_client):
    client = await make_client(slots=SLOTS, value_prior_examples=0)   # a cold model alone: uniform
    answer = await decide(client, event_id="ev-1")
    slots = answer["slots"]
    assert [s["slot"] for s in slots] == [1, 2, 3]
    assert len({s["offer_id"] for s in slots}) == 3
    # a cold model explores uniformly: 1/5, then 1/4 of the rest, then 1/3
    assert [s["probability"] for s in slots] == pytest.approx([1 / 5, 1 / 4, 1 / 3])
    assert answer["ranking"] == [{"offer_id": s["offer_id"], "probability": s["probability"]} for s in slots]
    assert (await decide(client, event_id="ev-1"))["slots"] == slots   # same id, same answer
    assert len((await decide(client, k=2))["slots"]) == 2              # k asks for fewer
    web = await decide(client, channel="web", k=3)                     # a one-slot channel
    assert len(web["slots"]) == 1 and len(web["ranking"]) == 3


async def test_each_slot_joins_with_its_own_reward(make_client, data_dir):
    client = await make_client(slots=SLOTS)
    shown = [s["offer_id"] for s in (await decide(client, event_id="ev-2"))["slots"]]
    assert (await reward(client, 202, event_id="ev-2", offer_id=shown[1], reward=1.0))["status"] == "stored"
    assert (await reward(client, 202, event_id="ev-2", slot=3, outcome="decline"))["status"] == "stored"
    assert (await reward(client, 200, event_id="ev-2", offer_id=shown[1], reward=5.0))["status"] == "duplicate"
    assert (await reward(client, 200, event_id="ev-2", reward=0.5))["status"] == "joined"   # slot 1 by default
    state = await (await client.get("/v1/events/ev-2")).json()
    assert state["state"] == "joined" and state["reward"] == pytest.approx(1.5)
    assert [(s["offer_id"], s["rewards"]) for s in state["slots"]] == [(o, 1) for o in shown]
    (line,) = await logged(data_dir, 1)
    assert [o["_label_cost"] for o in line["_outcomes"]] == [-0.5, -1.0, 0.0]
    assert [line["_nb"]["offers"][o["_a"][0]] for o in line["_outcomes"]] == shown
    assert [s["reward"] for s in line["_nb"]["slots"]] == [0.5, 1.0, 0.0]


async def test_slots_without_a_reward_get_the_default_at_the_deadline(make_client, data_dir):
    client = await make_client(slots=SLOTS, reward_wait_seconds=0.5, default_reward=-0.25)
    shown = [s["offer_id"] for s in (await decide(client, event_id="ev-3"))["slots"]]
    await reward(client, 202, event_id="ev-3", offer_id=shown[2], outcome="accept")
    (line,) = await logged(data_dir, 1)
    assert line["_nb"]["kind"] == "joined"
    assert [o["_label_cost"] for o in line["_outcomes"]] == [0.25, 0.25, -1.0]
    assert [s["rewards"] for s in line["_nb"]["slots"]] == [0, 0, 1]


async def test_bad_slot_rewards_are_refused_by_name(make_client):
    client = await make_client(slots=SLOTS)
    shown = [s["offer_id"] for s in (await decide(client, event_id="ev-4"))["slots"]]
    missing = next(o["id"] for o in OFFERS if o["id"] not in shown)
    error = (await reward(client, 400, event_id="ev-4", offer_id=missing, reward=1.0))["error"]
    assert error["field"] == "offer_id" and missing in error["message"]
    assert (await reward(client, 400, event_id="ev-4", slot=4, reward=1.0))["error"]["field"] == "slot"
    assert (await reward(client, 400, event_id="ev-4", slot=1, offer_id=shown[0], reward=1.0))["error"]["field"] == "slot"
    state = await (await client.get("/v1/events/ev-4")).json()
    assert state["state"] == "pending" and state["rewards"] == 0   # nothing was counted


async def test_sum_mode_and_reward_ids_hold_per_slot(make_client, data_dir):
    client = await make_client(slots=SLOTS, reward_aggregation="sum", reward_wait_seconds=0.6)
    await decide(client, event_id="ev-5")
    assert (await reward(client, 202, event_id="ev-5", slot=1, reward=1.0, reward_id="r1"))["status"] == "accumulated"
    assert (await reward(client, 200, event_id="ev-5", slot=1, reward=1.0, reward_id="r1"))["status"] == "duplicate"
    assert (await reward(client, 202, event_id="ev-5", slot=2, reward=2.0, reward_id="r1"))["status"] == "accumulated"
    assert (await reward(client, 202, event_id="ev-5", slot=2, reward=0.5))["reward"] == pytest.approx(2.5)
    (line,) = await logged(data_dir, 1)
    assert [o["_label_cost"] for o in line["_outcomes"]] == [-1.0, -2.5, 0.0]
    assert [s["rewards"] for s in line["_nb"]["slots"]] == [1, 2, 0]


async def test_an_accepted_offer_is_owned_at_the_next_decision(make_client, redis_url, key_prefix):
    client = await make_client(slots=SLOTS)
    for offer in OFFERS[:4]:
        response = await client.put(f"/v1/offers/{offer['id']}", json={"id": offer["id"], "name": offer["id"]})
        assert response.status in (200, 201), await response.text()
    profile = {"tariff": "basic"}
    assert (await client.put("/v1/subscribers/s-own", json=profile)).status in (200, 201, 204)
    first = await decide(client, subscriber_id="s-own", offers=None, event_id="own-1", explain=True)
    taken = first["slots"][1]["offer_id"]
    await reward(client, 202, event_id="own-1", offer_id=taken, outcome="accept")
    # a profile update meanwhile loses nothing
    assert (await client.put("/v1/subscribers/s-own", json={"tariff": "plus"})).status in (200, 201, 204)
    second = await decide(client, subscriber_id="s-own", offers=None, explain=True)
    assert taken not in [s["offer_id"] for s in second["slots"]]
    assert {"offer_id": taken, "reason": "owned"}.items() <= next(
        e for e in second["excluded"] if e["offer_id"] == taken).items()
    # a decline writes nothing
    declined = second["slots"][0]["offer_id"]
    await reward(client, 202, event_id=second["event_id"], offer_id=declined, outcome="decline")
    third = await decide(client, subscriber_id="s-own", offers=None, explain=True)
    assert all(e["offer_id"] != declined or e["reason"] != "owned" for e in third["excluded"])


async def test_caps_and_contact_rules_count_every_slot(make_client):
    client = await make_client(slots=SLOTS, max_offers_per_subscriber_per_day=4)
    for offer in OFFERS:
        response = await client.put(f"/v1/offers/{offer['id']}", json={
            "id": offer["id"], "name": offer["id"], "caps": {"impressions_per_day": 1}})
        assert response.status in (200, 201), await response.text()
    first = await decide(client, subscriber_id="s-cap", offers=None, explain=True)
    assert len(first["slots"]) == 3
    # the same subscriber: one offer left today of four (contact rule), two offers left at all (caps)
    second = await decide(client, subscriber_id="s-cap", offers=None, explain=True)
    assert len(second["slots"]) == 1
    assert second["slots"][0]["offer_id"] not in {s["offer_id"] for s in first["slots"]}
    # another subscriber: only the one offer no one was shown yet
    third = await decide(client, subscriber_id="s-other", offers=None, explain=True)
    shown = {s["offer_id"] for s in first["slots"] + second["slots"]}
    assert [s["offer_id"] for s in third["slots"]] == [o["id"] for o in OFFERS if o["id"] not in shown]
    capped = {e["offer_id"] for e in third["excluded"] if e["reason"] == "cap"}
    assert capped == shown


async def test_a_pending_event_of_the_one_slot_release_is_joined_and_learned(make_client, redis_url, key_prefix,
                                                                            data_dir):
    """An upgrade finds pending decisions written with version 1 records and the old hash."""
    client = await make_client(slots=SLOTS)
    v1 = {"v": 1, "id": "old-1", "ts": 1765100000000, "channel": "web", "sid": None,
          "shared": {"Context": {"reason=x": 1}}, "offers": ["a", "b"],
          "actions": [{"id=a": 1}, {"id=b": 1, "price": 2.0}], "values": [1.0, 1.0], "chosen": 1,
          "pmf": [0.4, 0.6], "policy": "model", "model": "0.0", "k": 2, "defer": False, "catalog": None,
          "known": None}
    keys = Keys(key_prefix)
    r = aioredis.Redis.from_url(redis_url)
    await r.hset(keys.event("old-1"), mapping={"rec": orjson.dumps(v1), "st": "p", "defer": "0", "act": "0",
                                               "n": "0", "dl": "99999999999999", "val": "1.0"})
    await r.zadd(keys.deadlines, {"old-1": 99999999999999})
    await r.aclose()
    assert read_record(orjson.dumps(v1)).slots[0].probability == 0.6
    assert (await reward(client, 200, event_id="old-1", reward=1.0))["status"] == "joined"
    (line,) = await logged(data_dir, 1)
    assert line["_outcomes"] == [{"_id": "1", "_label_cost": -1.0, "_a": [1, 0], "_p": [0.6, 0.4]}]
    await until(lambda: _at_least(client, 1))


async def _learned(client) -> int:
    return client.app[DECIDER].model.learner.learned


async def test_the_log_is_vw_ccb_dsjson_and_retrains_the_service_model(make_client, data_dir):
    """VW itself reads the multi-slot log with --ccb_explore_adf --dsjson, and learning the
    log again gives the model the service learned online."""
    from vowpalwabbit import pyvw

    from policies.learner import Learner
    from policies.vwtext import action_line, shared_line

    client = await make_client(slots=SLOTS)
    for i in range(60):
        answer = await decide(client, event_id=f"l-{i}", context={"reason": ["roaming", "balance"][i % 2]})
        for slot in answer["slots"]:
            good = (slot["offer_id"] == "o3") == (i % 2 == 0)
            await reward(client, 202 if slot["slot"] < 3 else 200, event_id=f"l-{i}", offer_id=slot["offer_id"],
                         reward=1.0 if good else 0.0)
    lines = await logged(data_dir, 60)
    await until(lambda: _at_least(client, 60))
    learner_settings = client.app[SETTINGS].learner
    ws = pyvw.Workspace(learner_settings.vw_args() + " --dsjson")
    for line in lines:
        examples = ws.parse(json.dumps(line))
        ws.learn(examples)
        ws.finish_example(examples)
    relearned = Learner(learner_settings, _model_bytes(ws))
    ws.finish()
    context = lines[0]["c"]
    shared = shared_line({ns: f for ns, f in context.items() if not ns.startswith("_")})
    actions = [action_line(a["Offer"]) for a in context["_multi"]]
    online = client.app[DECIDER].model.learner
    for shown in ((), (3,), (3, 1)):
        assert relearned.predict_slot(shared, actions, shown) == pytest.approx(
            online.predict_slot(shared, actions, shown), abs=1e-6)
    assert online.predict_slot(shared, actions, ()) != pytest.approx([0.2] * 5)   # it did learn


async def _at_least(client, count: int) -> bool:
    return await _learned(client) >= count


def _model_bytes(ws) -> bytes:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.vw")
        ws.save(path)
        with open(path, "rb") as fh:
            return fh.read()


async def test_replay_reads_and_evaluates_the_services_own_multi_slot_log(make_client, data_dir, tmp_path):
    """What the service writes, replay reads without a defect (a dropped decision too) and
    evaluates per slot and for the slate; export gives a row per slot."""
    from click.testing import CliRunner

    from replay.cli import replay
    from replay.logs import ValidationReport, read_logs

    client = await make_client(slots=SLOTS, reward_wait_seconds=0.5)
    for i in range(30):
        answer = await decide(client, event_id=f"r-{i}", context={"reason": ["roaming", "balance"][i % 2]},
                              defer_activation=i == 0)
        for slot in answer["slots"][: 1 + i % 3]:
            await client.post("/v1/reward", json={"event_id": f"r-{i}", "offer_id": slot["offer_id"],
                                                  "reward": float(slot["offer_id"] == "o3")})
    lines = await logged(data_dir, 30)
    assert sum(1 for line in lines if line.get("_skipLearn")) == 1
    report = ValidationReport()
    events = [e for chunk in read_logs(data_dir / "decisions", report=report) for e in chunk]
    assert report.counts == {} and len(events) == 30
    assert all(len(e.slots) == 3 for e in events)
    runner = CliRunner()
    result = runner.invoke(replay, ["evaluate", str(data_dir / "decisions"), "--policy", "--epsilon 0.1",
                                    "--json", str(tmp_path / "r.json"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["candidates"][0]["slots"]) == 3
    result = runner.invoke(replay, ["export", str(data_dir / "decisions"), "--out", str(tmp_path / "rows.parquet")])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "rows.parquet").num_rows == 30 * 3


async def test_deferred_activation_holds_for_the_whole_decision(make_client, data_dir):
    client = await make_client(slots=SLOTS)
    shown = [s["offer_id"] for s in (await decide(client, event_id="d-1", defer_activation=True))["slots"]]
    for offer in shown:   # every slot answered before the decision was shown: kept
        assert (await reward(client, 202, event_id="d-1", offer_id=offer, reward=1.0))["status"] == "stored"
    response = await client.post("/v1/events/d-1/activate")
    assert (await response.json())["status"] == "joined"
    (line,) = await logged(data_dir, 1)
    assert [o["_label_cost"] for o in line["_outcomes"]] == [-1.0, -1.0, -1.0] and not line.get("_skipLearn")


async def test_a_decline_in_any_slot_starts_that_offers_cool_down(make_client):
    client = await make_client(slots=SLOTS)
    for offer in OFFERS:
        response = await client.put(f"/v1/offers/{offer['id']}", json={
            "id": offer["id"], "name": offer["id"], "contact": {"declined_cooldown_days": 7}})
        assert response.status in (200, 201), await response.text()
    first = await decide(client, subscriber_id="s-cool", offers=None, explain=True)
    third = first["slots"][2]["offer_id"]
    await reward(client, 202, event_id=first["event_id"], slot=3, outcome="decline")
    again = await decide(client, subscriber_id="s-cool", offers=None, explain=True)
    assert third not in [s["offer_id"] for s in again["slots"]]
    assert next(e for e in again["excluded"] if e["offer_id"] == third)["reason"] == "contact"
