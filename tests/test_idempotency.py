"""Client ids (event_id on decide, reward_id on reward) make retries safe: the same id
with the same body keeps its answer; the same id with another body is a 409 that says
so, instead of a silent first answer (issue 17)."""

from __future__ import annotations

from tests.conftest import OFFERS


def decide_body(**extra):
    return {"channel": "web", "subscriber_id": "79001234567", "context": {"reason": "roaming", "arpu": 350.0},
            "offers": OFFERS, "event_id": "call-1", **extra}


async def test_a_retried_decide_keeps_its_answer_and_another_body_under_the_id_is_a_409(make_client):
    client = await make_client()
    first = await client.post("/v1/decide", json=decide_body())
    assert first.status == 200
    # the same request, keys in another order: a retry
    retry = await client.post("/v1/decide", json=dict(reversed(list(decide_body().items()))))
    assert retry.status == 200 and await retry.json() == await first.json()
    for changed in ({"context": {"reason": "balance"}}, {"subscriber_id": "79001111111"}, {"offers": OFFERS[:2]}):
        reused = await client.post("/v1/decide", json=decide_body(**changed))
        assert reused.status == 409, changed
        assert (await reused.json())["error"]["code"] == "event_id_reused"
        assert (await reused.json())["error"]["field"] == "event_id"
    stats = await (await client.get("/v1/stats")).json()
    assert stats["counters"]["decisions"] == 1
    again = await client.post("/v1/decide", json=decide_body())   # the retry still gets its answer
    assert again.status == 200 and await again.json() == await first.json()


async def test_a_reward_id_reused_with_another_value_is_a_409_and_a_retry_a_duplicate(make_client):
    client = await make_client(reward_aggregation="sum")
    event_id = (await (await client.post("/v1/decide", json=decide_body())).json())["event_id"]
    first = await client.post("/v1/reward", json={"event_id": event_id, "reward": 2.0, "reward_id": "topup-1"})
    assert first.status == 202 and (await first.json())["reward"] == 2.0
    retry = await client.post("/v1/reward", json={"reward_id": "topup-1", "reward": 2.0, "event_id": event_id})
    assert retry.status == 200 and (await retry.json())["status"] == "duplicate"
    reused = await client.post("/v1/reward", json={"event_id": event_id, "reward": 5.0, "reward_id": "topup-1"})
    assert reused.status == 409
    error = (await reused.json())["error"]
    assert error["code"] == "reward_id_reused" and error["field"] == "reward_id"
    state = await (await client.get(f"/v1/events/{event_id}")).json()
    assert state["reward"] == 2.0 and state["rewards"] == 1   # nothing was added


async def test_first_mode_reward_id_reused_for_another_outcome_is_a_409(make_client):
    client = await make_client()
    event_id = (await (await client.post("/v1/decide", json=decide_body())).json())["event_id"]
    joined = await client.post("/v1/reward", json={"event_id": event_id, "outcome": "accept", "reward_id": "r"})
    assert joined.status == 200 and (await joined.json())["status"] == "joined"
    retry = await client.post("/v1/reward", json={"event_id": event_id, "outcome": "accept", "reward_id": "r"})
    assert retry.status == 200 and (await retry.json())["status"] == "duplicate"
    reused = await client.post("/v1/reward", json={"event_id": event_id, "outcome": "decline", "reward_id": "r"})
    assert reused.status == 409 and (await reused.json())["error"]["code"] == "reward_id_reused"
