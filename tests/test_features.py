"""Subscriber profiles and the feature schema in the decision loop: a profile is read
once per decision, drives eligibility and the model's features, and the raw subscriber
id is stored nowhere."""

from __future__ import annotations

import redis

from tests.harness import wait_until, read_lines

PHONE = "+7 900 123-45-67"
SCHEMA = {"subscriber": {"tariff": {"type": "categorical"}, "balance": {"type": "numeric"},
                         "services": {"type": "set"}},
          "context": {"reason_text": {"type": "text", "namespace": "Text"}}, "strict": False}


async def test_profile_api_put_patch_get_delete(make_client):
    client = await make_client(features=SCHEMA)
    path = f"/v1/subscribers/{PHONE}"
    assert (await client.get(path)).status == 404
    created = await client.put(path, json={"tariff": "smart", "balance": 120.5, "services": ["sms_pack"]})
    assert created.status == 201
    patched = await client.patch(path, json={"balance": -3, "services": None, "region": "msk"})
    assert patched.status == 200
    body = await (await client.get(path)).json()
    assert body == {"subscriber_id": PHONE, "profile": {"tariff": "smart", "balance": -3, "region": "msk"}}
    bad = await client.patch(path, json={"balance": "a lot"})
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "balance"
    assert (await client.delete(path)).status == 200
    assert (await client.delete(path)).status == 404


async def test_decision_reads_the_profile_for_features_and_eligibility(make_client, data_dir, redis_url, key_prefix):
    client = await make_client(features=SCHEMA)
    await client.put(f"/v1/subscribers/{PHONE}", json={"tariff": "basic", "balance": 40, "services": ["mail"]})
    await client.put("/v1/offers/unlimited", json={"name": "U", "eligibility": 'tariff in ["smart", "super"]'})
    await client.put("/v1/offers/mail", json={"name": "M"})
    await client.put("/v1/offers/sms", json={"name": "S", "eligibility": "balance >= 0"})
    body = {"channel": "contact_center", "subscriber_id": PHONE, "explain": True, "k": 5,
            "context": {"reason_text": "Междугородняя связь: тарифы?"}}
    decision = await (await client.post("/v1/decide", json=body)).json()
    assert decision["subscriber_known"] is True
    assert [r["offer_id"] for r in decision["ranking"]] == ["sms"]
    assert {e["offer_id"]: e["reason"] for e in decision["excluded"]} == {"unlimited": "rule", "mail": "owned"}
    await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 1})

    async def logged():
        return read_lines(data_dir / "decisions")
    [line] = await wait_until(logged, what="the decision log")
    assert line["c"]["Subscriber"]["tariff=basic"] == 1 and line["c"]["Subscriber"]["balance"] == 40
    text_tokens = set(line["c"]["Text"])
    assert any(t.startswith("reason_text=междугородн") for t in text_tokens)
    assert any(t.startswith("reason_text=тариф") for t in text_tokens)

    unknown = await (await client.post("/v1/decide", json={**body, "subscriber_id": "+7 999"})).json()
    assert unknown["subscriber_known"] is False   # decided from the context alone: rules on profile fields fail
    assert [r["offer_id"] for r in unknown["ranking"]] == ["mail"]

    r = redis.Redis.from_url(redis_url)
    everything = b"".join(k + (r.dump(k) or b"") for k in r.scan_iter(match=f"{key_prefix}:*"))
    r.close()
    assert PHONE.encode() not in everything and b"123-45-67" not in everything
    assert PHONE not in str(read_lines(data_dir / "decisions"))


async def test_strict_schema_rejects_unknown_context_naming_the_field(make_client):
    client = await make_client(features={**SCHEMA, "strict": True})
    response = await client.post("/v1/decide", json={"channel": "web", "context": {"surprise": 1},
                                                     "offers": [{"id": "a"}]})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "context.surprise"
