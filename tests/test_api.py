"""The HTTP API end to end: real service, real Redis (embedded and REDIS_URL), real VW."""

from __future__ import annotations


import pytest

from tests.conftest import OFFERS
from tests.harness import wait_until, read_lines


def decide_body(**extra):
    return {"channel": "contact_center", "subscriber_id": "79001234567",
            "context": {"reason": "long_distance", "arpu": 350.0}, "offers": OFFERS, **extra}


async def stats(client) -> dict:
    return await (await client.get("/v1/stats")).json()


async def test_decide_returns_ranking_served_first(make_client):
    client = await make_client()
    response = await client.post("/v1/decide", json=decide_body(k=3))
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"event_id", "slots", "ranking", "model_version", "subscriber_known", "policy"}
    assert body["slots"] == [{"slot": 1, **body["ranking"][0]}]   # one slot: the served offer
    assert body["subscriber_known"] is False   # no profile stored for this subscriber: context only
    assert len(body["ranking"]) == 3
    ids = [r["offer_id"] for r in body["ranking"]]
    assert len(set(ids)) == 3 and set(ids) <= {o["id"] for o in OFFERS}
    assert all(0 < r["probability"] <= 1 for r in body["ranking"])
    rest = [r["probability"] for r in body["ranking"][1:]]
    assert rest == sorted(rest, reverse=True)


async def test_untrained_model_is_uniform_and_k_defaults_to_three(make_client):
    client = await make_client()
    body = await (await client.post("/v1/decide", json=decide_body())).json()
    assert len(body["ranking"]) == 3
    assert all(r["probability"] == pytest.approx(1 / len(OFFERS)) for r in body["ranking"])


async def test_reward_joins_and_is_learned_and_logged(make_client, data_dir):
    client = await make_client()
    decision = await (await client.post("/v1/decide", json=decide_body())).json()
    response = await client.post("/v1/reward", json={"event_id": decision["event_id"], "outcome": "accept"})
    assert response.status == 200
    assert await response.json() == {"event_id": decision["event_id"], "status": "joined", "duplicate": False,
                                     "reward": 1.0}
    state = await (await client.get(f"/v1/events/{decision['event_id']}")).json()
    assert state["state"] == "joined" and state["reward"] == 1.0

    async def learned():
        return (await stats(client))["model"]["examples_learned"] == 1
    await wait_until(learned)

    async def logged():
        return read_lines(data_dir / "decisions")
    [line] = await wait_until(logged)
    assert line["EventId"] == decision["event_id"]
    assert line["_label_cost"] == -1.0
    served = decision["ranking"][0]
    assert line["_nb"]["offers"][line["_labelIndex"]] == served["offer_id"]
    assert line["_label_probability"] == served["probability"]
    assert "79001234567" not in str(line)   # subscriber ids are logged only as a keyed hash
    assert len(line["_nb"]["subscriber"]) == 32


async def test_duplicate_reward_is_idempotent(make_client):
    client = await make_client()
    decision = await (await client.post("/v1/decide", json=decide_body())).json()
    first = await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 2.5})
    again = await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 2.5})
    assert first.status == 200 and again.status == 200
    assert (await again.json())["duplicate"] is True
    counters = (await stats(client))["counters"]
    assert counters["events_joined"] == 1
    assert counters["rewards_duplicate"] == 1


async def test_unknown_event_reward_is_404_and_counted_late(make_client):
    client = await make_client()
    response = await client.post("/v1/reward", json={"event_id": "never-decided", "reward": 1})
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "unknown_event" and error["field"] == "event_id"
    assert (await stats(client))["counters"]["rewards_late"] == 1


async def test_deadline_joins_default_reward_and_late_reward_is_409(make_client, data_dir):
    client = await make_client(reward_wait_seconds=0.3, default_reward=-0.5)
    decision = await (await client.post("/v1/decide", json=decide_body())).json()

    async def defaulted():
        state = await (await client.get(f"/v1/events/{decision['event_id']}")).json()
        return state["state"] == "defaulted" and state
    state = await wait_until(defaulted)
    assert state["reward"] == -0.5
    late = await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 1})
    assert late.status == 409
    assert (await late.json())["error"]["code"] == "late_reward"

    async def logged():
        return read_lines(data_dir / "decisions")
    [line] = await wait_until(logged)
    assert line["_nb"]["kind"] == "defaulted" and line["_label_cost"] == 0.5


async def test_client_event_id_makes_decide_idempotent(make_client):
    client = await make_client()
    first = await (await client.post("/v1/decide", json=decide_body(event_id="call-42"))).json()
    again = await (await client.post("/v1/decide", json=decide_body(event_id="call-42"))).json()
    assert first == again
    assert (await stats(client))["counters"]["decisions"] == 1


async def test_sum_aggregation_adds_rewards_until_the_deadline(make_client):
    client = await make_client(reward_aggregation="sum", reward_wait_seconds=0.5)
    event_id = (await (await client.post("/v1/decide", json=decide_body())).json())["event_id"]
    for reward_id, value in (("r1", 2.0), ("r2", 3.0), ("r1", 2.0)):   # r1 retried: counted once
        response = await client.post("/v1/reward", json={"event_id": event_id, "reward": value,
                                                         "reward_id": reward_id})
        assert response.status in (200, 202)

    async def joined():
        state = await (await client.get(f"/v1/events/{event_id}")).json()
        return state["state"] == "joined" and state
    state = await wait_until(joined)
    assert state["reward"] == 5.0 and state["rewards"] == 2


async def test_deferred_event_learned_only_when_activated(make_client, data_dir):
    client = await make_client(reward_wait_seconds=0.5)
    shown = (await (await client.post("/v1/decide", json=decide_body(defer_activation=True))).json())["event_id"]
    hidden = (await (await client.post("/v1/decide", json=decide_body(defer_activation=True))).json())["event_id"]
    stored = await client.post("/v1/reward", json={"event_id": shown, "reward": 1})
    assert stored.status == 202 and (await stored.json())["status"] == "stored"
    activated = await client.post(f"/v1/events/{shown}/activate")
    assert (await activated.json())["status"] == "joined"
    await client.post("/v1/reward", json={"event_id": hidden, "reward": 1})

    async def both_logged():
        lines = read_lines(data_dir / "decisions")
        return len(lines) == 2 and lines
    lines = {line["EventId"]: line for line in await wait_until(both_logged)}
    assert "_skipLearn" not in lines[shown]
    assert lines[hidden]["_skipLearn"] is True and lines[hidden]["_nb"]["kind"] == "dropped"

    async def learned_one():
        s = await stats(client)
        return s["counters"].get("events_dropped") == 1 and s
    assert (await wait_until(learned_one))["model"]["examples_learned"] == 1
    assert (await client.post(f"/v1/events/{hidden}/activate")).status == 409


@pytest.mark.parametrize("body, field", [
    ({"context": {}}, "channel"),
    ({"channel": 5, "offers": OFFERS}, "channel"),
    ({"channel": "web", "offers": []}, "offers"),
    ({"channel": "web", "offers": [{"id": "a"}, {"id": "a"}]}, "offers[1].id"),
    ({"channel": "web", "offers": [{"id": "a", "features": {"x": {"nested": 1}}}]}, "offers[0].features.x"),
    ({"channel": "web", "offers": [{"id": "a"}, {"id": "b", "features": ["x"]}]}, "offers[1].features"),
    ({"channel": "web", "offers": [{"id": "a", "features": {str(i): i for i in range(1001)}}]}, "offers[0].features"),
    ({"channel": "web", "offers": [{"id": "a", "features": {"big": 2**70, "x": [1]}}]}, "offers[0].features.x"),
    ({"channel": "web", "offers": OFFERS, "k": 0}, "k"),
    ({"channel": "web", "offers": OFFERS, "event_id": "has space"}, "event_id"),
    ({"channel": "web", "offers": OFFERS, "surprise": 1}, "surprise"),
    ({"channel": "web", "offers": OFFERS, "context": {"inf": float("inf")}}, None),   # not JSON: Infinity
    ({"channel": "web", "offers": OFFERS, "context": {"tags": ["a", 1]}}, "context.tags"),
])
async def test_bad_decide_is_400_naming_the_field(make_client, body, field):
    client = await make_client()
    response = await client.post("/v1/decide", json=body)
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert error["field"] == field and error["message"]


async def test_out_of_range_number_is_400(make_client):
    client = await make_client()
    body = b'{"channel": "web", "offers": [{"id": "a"}], "context": {"big": 1e400}}'
    response = await client.post("/v1/decide", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error"]["field"].startswith("context")


@pytest.mark.parametrize("body, field", [
    ({"reward": 1}, "event_id"),
    ({"event_id": "e1"}, "reward"),
    ({"event_id": "e1", "reward": 1, "outcome": "accept"}, "reward"),
    ({"event_id": "e1", "outcome": "maybe"}, "outcome"),
    ({"event_id": "e1", "reward": "1"}, "reward"),
])
async def test_bad_reward_is_400_naming_the_field(make_client, body, field):
    client = await make_client()
    response = await client.post("/v1/reward", json=body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field


async def test_transport_errors_are_json(make_client):
    client = await make_client(max_body_bytes=1024)
    not_json = await client.post("/v1/decide", data=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status == 400 and (await not_json.json())["error"]["code"] == "invalid_json"
    wrong_type = await client.post("/v1/decide", data=b"channel=web", headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 415
    too_big = await client.post("/v1/decide", json=decide_body(context={"pad": "x" * 5000}))
    assert too_big.status == 413 and (await too_big.json())["error"]["code"] == "body_too_large"
    missing = await client.get("/v1/nothing")
    assert missing.status == 404 and "error" in await missing.json()
    wrong_method = await client.get("/v1/decide")
    assert wrong_method.status == 405 and "error" in await wrong_method.json()


async def test_special_characters_in_features_never_break_vw(make_client, data_dir):
    client = await make_client()
    nasty = {"a b|c:d": "x y|z:1\nnew line", "_under": "ü 名字\t\u2028", "%": ["|", ":", " ", ""], "n:1": -2.5}
    offers = [{"id": "id.with:colon-dash_1", "features": nasty}, {"id": "plain"}]
    decision = await (await client.post("/v1/decide", json=decide_body(context=nasty, offers=offers))).json()
    assert {r["offer_id"] for r in decision["ranking"]} == {"id.with:colon-dash_1", "plain"}
    assert (await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 1})).status == 200

    async def learned():
        return (await stats(client))["model"]["examples_learned"] == 1
    await wait_until(learned)


async def test_health_ready_and_openapi(make_client):
    client = await make_client()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    spec = await (await client.get("/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.") and "/v1/decide" in spec["paths"] and "/v1/reward" in spec["paths"]


async def test_summed_reward_after_the_deadline_is_late(make_client):
    client = await make_client(reward_aggregation="sum", reward_wait_seconds=0.3)
    event_id = (await (await client.post("/v1/decide", json=decide_body())).json())["event_id"]
    assert (await client.post("/v1/reward", json={"event_id": event_id, "reward": 1, "reward_id": "a"})).status == 202

    async def joined():
        return (await (await client.get(f"/v1/events/{event_id}")).json())["state"] == "joined"
    await wait_until(joined)
    retry = await client.post("/v1/reward", json={"event_id": event_id, "reward": 1, "reward_id": "a"})
    assert retry.status == 200 and (await retry.json())["duplicate"] is True
    late = await client.post("/v1/reward", json={"event_id": event_id, "reward": 1, "reward_id": "b"})
    assert late.status == 409 and (await late.json())["error"]["code"] == "late_reward"


async def test_reserved_and_oversized_context_values_are_400(make_client):
    client = await make_client()
    reserved = await client.post("/v1/decide", json=decide_body(context={"channel": "web"}))
    assert reserved.status == 400 and (await reserved.json())["error"]["field"] == "context.channel"
    huge = b'{"channel": "web", "offers": [{"id": "a", "features": {"n": 123456789012345678901234567890}}]}'
    response = await client.post("/v1/decide", data=huge, headers={"Content-Type": "application/json"})
    assert response.status == 200   # a big integer is a (finite) number: VW sees it as a float
    too_big = b'{"channel": "web", "offers": [{"id": "a", "features": {"n": ' + b"9" * 400 + b'}}]}'
    response = await client.post("/v1/decide", data=too_big, headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"]["field"].startswith("offers[0].features")


async def test_openapi_lists_every_route(make_client):
    client = await make_client()
    spec = await (await client.get("/v1/openapi.json")).json()
    html_pages = {"/", "/ui/", "/ui/agent", "/ui/login", "/ui/static"}   # the web UI's pages are not API
    routes = {(r.method.lower(), r.resource.canonical) for r in client.app.router.routes()
              if r.resource is not None and r.method != "HEAD"
              and not (r.method == "GET" and r.resource.canonical in html_pages)}
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops if method != "parameters"}
    assert routes == documented


@pytest.mark.parametrize("slots", [{}, {"contact_center": 3}])
async def test_a_dropped_event_shows_no_reward_not_the_default(make_client, slots):
    client = await make_client(reward_wait_seconds=0.3, default_reward=0.25, slots=slots)
    quiet = (await (await client.post("/v1/decide", json=decide_body(defer_activation=True))).json())["event_id"]
    rewarded = (await (await client.post("/v1/decide", json=decide_body(defer_activation=True))).json())["event_id"]
    assert (await client.post("/v1/reward", json={"event_id": rewarded, "reward": 1})).status == 202

    async def dropped(event_id):
        state = await (await client.get(f"/v1/events/{event_id}")).json()
        return state["state"] == "dropped" and state
    for event_id in (quiet, rewarded):
        state = await wait_until(lambda: dropped(event_id))
        assert state["reward"] is None, state
        assert state["slots"] and all(s["reward"] is None for s in state["slots"]), state
    assert (await wait_until(lambda: dropped(rewarded)))["rewards"] == 1   # it was counted, never learned
