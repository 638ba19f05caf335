"""Sales-plan caps and contact rules, enforced in Redis: never exceeded, even by several
service processes deciding at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from bandit.store.keys import Keys
from bandit.store.limits import Limits
from policies.offers import compile_offer
from tests.harness import Harness, _s, read_lines


async def put_offers(client, offers):
    for offer in offers:
        response = await client.put(f"/v1/offers/{offer['id']}", json=offer)
        assert response.status in (200, 201), await response.text()


async def decide(client, subscriber="s1", **extra):
    body = {"channel": "web", "subscriber_id": subscriber, "explain": True, "k": 10, **extra}
    response = await client.post("/v1/decide", json=body)
    assert response.status == 200
    return await response.json()


async def test_impression_cap_drops_the_offer_and_the_next_day_brings_it_back(make_client, redis_url, key_prefix):
    client = await make_client()
    await put_offers(client, [{"id": "capped", "name": "C", "caps": {"impressions_per_day": 5}},
                              {"id": "free", "name": "F"}])
    served = []
    for i in range(40):
        decision = await decide(client, subscriber=f"s{i}")
        served.append(decision["ranking"][0]["offer_id"])
    assert served.count("capped") == 5
    last = await decide(client, subscriber="late")
    assert [e for e in last["excluded"] if e["offer_id"] == "capped"][0]["reason"] == "cap"

    import redis.asyncio as aioredis
    r = aioredis.Redis.from_url(redis_url)
    limits = Limits(lambda keys: r.mget(keys), Keys(key_prefix), None)
    offer = compile_offer({"id": "capped", "name": "C", "caps": {"impressions_per_day": 5}})
    today = datetime.now(timezone.utc)
    assert "capped" in (await limits.check([offer], None, today))[0]
    assert (await limits.check([offer], None, today + timedelta(days=1)))[0] == {}
    await r.aclose()


async def test_contact_rules(make_client):
    client = await make_client(max_offers_per_subscriber_per_day=4)
    await put_offers(client, [
        {"id": "cooldown", "name": "A", "value": 100, "contact": {"declined_cooldown_days": 7}},
        {"id": "weekly", "name": "B", "contact": {"max_per_week": 1}},
        {"id": "other", "name": "C"},
    ])
    # decline "cooldown" as s1, whenever it is served
    for _ in range(30):
        decision = await decide(client, subscriber="s1")
        if not decision["ranking"]:
            break
        if decision["ranking"][0]["offer_id"] == "cooldown":
            await client.post("/v1/reward", json={"event_id": decision["event_id"], "outcome": "decline"})
            after = await decide(client, subscriber="s1")
            reasons = {e["offer_id"]: e for e in after["excluded"]}
            assert reasons["cooldown"]["reason"] == "contact" and "declined" in reasons["cooldown"]["detail"]
            other = await decide(client, subscriber="s-other")
            assert "cooldown" not in {e["offer_id"] for e in other["excluded"]}
            break
    else:
        pytest.fail("the cooldown offer was never served")

    seen_weekly = 0
    for i in range(4):
        decision = await decide(client, subscriber="s2")
        if not decision["ranking"]:
            assert {e["reason"] for e in decision["excluded"]} == {"contact"}
            break
        seen_weekly += decision["ranking"][0]["offer_id"] == "weekly"
    assert seen_weekly <= 1
    capped_day = await decide(client, subscriber="s2")
    assert capped_day["ranking"] == [] and capped_day["event_id"] is None   # 4 offers today: no more


@pytest.mark.timeout(180)
async def test_caps_hold_under_concurrent_decisions_from_several_processes(harness: Harness, tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "- {id: capped, name: Capped, value: 50, caps: {impressions_total: 60, accepts_total: 15}}\n"
        "- {id: plain, name: Plain, value: 1}\n")
    services = [await harness.start("--catalog", str(catalog))]
    services += [await harness.start("--no-learner") for _ in range(2)]
    outcomes = {"served": 0, "accepted": 0}

    async def stream(base: str, tag: str) -> None:
        async with aiohttp.ClientSession() as http:
            for i in range(50):
                body = {"channel": "web", "subscriber_id": f"{tag}-{i}"}
                async with http.post(f"{base}/v1/decide", json=body) as response:
                    assert response.status == 200
                    decision = await response.json()
                if decision["ranking"] and decision["ranking"][0]["offer_id"] == "capped":
                    outcomes["served"] += 1
                    async with http.post(f"{base}/v1/reward", json={"event_id": decision["event_id"],
                                                                   "outcome": "accept"}) as response:
                        assert response.status == 200
                        outcomes["accepted"] += 1

    await asyncio.gather(*(stream(services[i % 3].base, f"t{i}") for i in range(9)))
    redis = harness.redis()
    keys = harness.keys
    impressions = int(_s(redis.get(keys.cap("capped", "imp", "total"))) or 0)
    accepted = int(_s(redis.get(keys.cap("capped", "acc", "total"))) or 0)
    reserved = int(_s(redis.get(keys.cap("capped", "res", "total"))) or 0)
    assert outcomes["served"] == impressions <= 60
    assert accepted == outcomes["accepted"] <= 15 and reserved == 0
    assert accepted == 15   # the acceptance cap was the binding one, and it was reached exactly
    for service in services:
        await harness.terminate(service)
    joined = [line for line in read_lines(harness.data_dir / "decisions")
              if line["_nb"]["offers"][line["_outcomes"][0]["_a"][0]] == "capped"]   # the default: CCB lines
    assert len(joined) <= 60
