"""Bad requests of every kind get a 4xx JSON error naming the field and the reason,
never a 500 or a traceback (issue 17)."""

from __future__ import annotations

import logging
import re

import pytest

from bandit.config import ConfigError, load_settings
from tests.conftest import OFFERS
from tests.harness import wait_until, read_lines


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Where the nesting reaches a value of any type (a typed field refuses an array at once).
DEEP_BODIES = [
    ("POST", "/v1/decide", '{"channel": "web", "context": {"a": %s}}'),
    ("POST", "/v1/decide", '{"channel": "web", "offers": [{"id": "a", "features": {"x": %s}}]}'),
    ("POST", "/v1/decide", '{"channel": "web", "offers": [{"id": "a", "features": %s}]}'),
    ("POST", "/v1/offers", '{"id": "a", "name": "A", "features": {"x": %s}}'),
    ("PUT", "/v1/offers/a", '{"name": "A", "features": %s}'),
    ("PATCH", "/v1/offers/a", '{"features": {"x": %s}}'),
    ("PUT", "/v1/subscribers/79001234567", '{"tariff": %s}'),
    ("PATCH", "/v1/subscribers/79001234567", '{"tariff": %s}'),
    ("PATCH", "/v1/offers/a", '{"eligibility": %s}'),
]
TYPED_BODIES = [
    ("POST", "/v1/reward", '{"event_id": "e", "reward": %s}'),
    ("POST", "/v1/reward", '{"event_id": "e", "surprise": %s}'),
    ("POST", "/v1/decide", '{"channel": "web", "explain": %s}'),
    ("POST", "/ui/api/agent/decide", '{"subscriber_id": "1", "reason": %s}'),
]


def nested_objects(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [1000, 100_000])
@pytest.mark.parametrize("shape", [nested, nested_objects])
async def test_a_deeply_nested_body_is_a_400_on_every_parser_without_a_traceback(make_client, caplog, depth, shape):
    client = await make_client()
    await client.post("/v1/offers", json={"id": "a", "name": "A"})
    await client.put("/v1/subscribers/79001234567", json={"tariff": "smart"})
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for method, path, template in DEEP_BODIES:
            body = template % shape(depth)
            response = await client.request(method, path, data=body, headers={"Content-Type": "application/json"})
            answer = await response.json()
            assert response.status == 400, (method, path, answer)
            if depth > 1024:   # past any parser's depth limit; below it the value itself is refused
                assert answer["error"]["code"] == "invalid_json", (method, path, answer)
                assert "depth limit exceeded" in answer["error"]["message"], (method, path, answer)
            else:
                assert answer["error"]["message"], (method, path, answer)
        for method, path, template in TYPED_BODIES:
            response = await client.request(method, path, data=template % shape(depth),
                                            headers={"Content-Type": "application/json"})
            assert response.status == 400, (method, path, await response.text())
            assert (await response.json())["error"]["field"], (method, path)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_sum_that_would_leave_the_reward_bounds_is_a_400_naming_reward(make_client, data_dir):
    client = await make_client(reward_aggregation="sum", reward_wait_seconds=0.3)
    event_id = (await (await client.post("/v1/decide", json={"channel": "web", "offers": OFFERS})).json())["event_id"]
    huge = await client.post("/v1/reward", json={"event_id": event_id, "reward": 1e308})
    assert huge.status == 400 and (await huge.json())["error"]["field"] == "reward"
    assert "reward_max" in (await huge.json())["error"]["message"]
    first = await client.post("/v1/reward", json={"event_id": event_id, "reward": 6e8, "reward_id": "a"})
    assert first.status == 202
    over = await client.post("/v1/reward", json={"event_id": event_id, "reward": 6e8, "reward_id": "b"})
    assert over.status == 400
    error = (await over.json())["error"]
    assert error["field"] == "reward" and "1200000000" in error["message"].replace("1.2e+09", "1200000000")
    state = await (await client.get(f"/v1/events/{event_id}")).json()
    assert state["reward"] == 6e8 and state["rewards"] == 1
    retry = await client.post("/v1/reward", json={"event_id": event_id, "reward": 6e8, "reward_id": "b"})
    assert retry.status == 400   # "b" was not counted: its retry is refused again, not a duplicate

    async def logged():
        return read_lines(data_dir / "decisions")
    [line] = await wait_until(logged)
    assert line["_label_cost"] == -6e8


async def test_value_scaled_outcome_beyond_the_bounds_is_refused(make_client):
    client = await make_client(reward_objective="value", reward_max=100.0)
    offers = [{"id": "big", "value": 1e300}]
    event_id = (await (await client.post("/v1/decide", json={"channel": "web", "offers": offers})).json())["event_id"]
    answer = await client.post("/v1/reward", json={"event_id": event_id, "outcome": "accept"})
    assert answer.status == 400 and (await answer.json())["error"]["field"] == "reward"


@pytest.mark.parametrize("overrides, message", [
    ({"reward_min": 5.0, "reward_max": 1.0}, "reward_min (5.0) must be below reward_max (1.0)"),
    ({"reward_max": 0.5}, "outcome 'accept' (1.0) is outside [reward_min, reward_max]"),
    ({"reward_min": 1.0, "reward_max": 2.0, "outcomes": {"accept": 1.0}}, "default_reward (0.0) is outside"),
])
def test_reward_bounds_are_checked_at_load(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env={}, overrides=overrides)


async def test_an_unknown_channel_is_a_400_naming_channel_and_the_known_ones(make_client):
    client = await make_client()
    answer = await client.post("/v1/decide", json={"channel": "Web", "offers": OFFERS})
    assert answer.status == 400
    error = (await answer.json())["error"]
    assert error["field"] == "channel"
    assert "'Web'" in error["message"] and "contact_center, web, search, ussd" in error["message"]
    assert (await client.post("/v1/decide", json={"channel": "web", "offers": OFFERS})).status == 200
    bad_offer = await client.post("/v1/offers", json={"id": "a", "name": "A", "channels": ["web", "Web"]})
    assert bad_offer.status == 400 and (await bad_offer.json())["error"]["field"] == "channels"
    kiosk = await make_client(channels=["kiosk", "web"])
    assert (await kiosk.post("/v1/decide", json={"channel": "kiosk", "offers": OFFERS})).status == 200
    assert (await kiosk.post("/v1/decide", json={"channel": "ussd", "offers": OFFERS})).status == 400


@pytest.mark.parametrize("env, message", [
    ({"NEXTBEST_SLOTS": "Contact_Center=3"}, "slots: channel 'Contact_Center' is not one of the channels"),
    ({"NEXTBEST_CHANNELS": "web,web"}, "channel 'web' is listed twice"),
])
def test_channels_are_checked_at_load(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env=env)


def test_the_example_config_catalog_and_simulator_use_only_the_configured_channels():
    from pathlib import Path

    from bandit.store.catalog import read_catalog_file
    from simulator.world import CHANNELS

    examples = Path(__file__).resolve().parents[1] / "examples" / "telecom"
    settings = load_settings(examples / "nextbest.yaml", env={})
    assert set(CHANNELS) <= set(settings.channels) and set(settings.slots) <= set(settings.channels)
    read_catalog_file(examples / "catalog.yaml", settings.channels)   # every offer's channels are known


def test_a_catalog_file_naming_an_unknown_channel_is_refused_with_its_line(tmp_path):
    from bandit.store.catalog import CatalogError, read_catalog_file

    path = tmp_path / "catalog.yaml"
    path.write_text("- id: a\n  name: A\n- id: b\n  name: B\n  channels: [Web]\n")
    with pytest.raises(CatalogError, match=r"catalog.yaml:3: offer 'b': channels: unknown channel 'Web'"):
        read_catalog_file(path, load_settings(env={}).channels)


async def test_readyz_without_redis_names_no_host_or_port(make_client, caplog):
    import shutil

    from bandit.store.embedded import EmbeddedRedis
    from tests.harness import short_tempdir

    directory = short_tempdir("nbready")
    server = EmbeddedRedis(directory).start()
    try:
        client = await make_client(redis_url=server.url)
        server.stop(force=True)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            ready = await client.get("/readyz")
        assert ready.status == 503
        error = (await ready.json())["error"]
        assert error == {"code": "redis_unavailable", "message": "Redis is unreachable; see the service log",
                         "field": None}
        assert "readyz: Redis is not answering" in caplog.text   # the details are in the log
        server = EmbeddedRedis(directory).start()   # back, so the service can stop cleanly
        await wait_until(lambda: _ready(client), what="ready again")
        await client.close()
    finally:
        server.stop(force=True)
        shutil.rmtree(directory, ignore_errors=True)


async def _ready(client) -> bool:
    return (await client.get("/readyz")).status == 200


@pytest.mark.parametrize("body, field", [
    ('{"channel": "web", "context": {"arpu": 350, "balance": 1e400}}', "context.balance"),
    ('{"channel": "web", "context": {"tags": ["a", 1e400]}}', "context.tags[1]"),
    ('{"channel": "web", "offers": [{"id": "a"}, {"id": "b", "features": {"ok": 1, "price": -1e999}}]}',
     "offers[1].features.price"),
])
async def test_an_out_of_range_number_names_its_key(make_client, body, field):
    client = await make_client()
    answer = await client.post("/v1/decide", data=body, headers={"Content-Type": "application/json"})
    assert answer.status == 400
    assert (await answer.json())["error"] == {"code": "invalid_field", "message": "Number out of range",
                                              "field": field}


@pytest.mark.parametrize("offer, field", [
    ({"id": "a"}, "name"),
    ({"id": "a", "name": "A", "colour": "red"}, "colour"),
    ({"id": "a", "name": "A", "contact": {"every": 1}}, "contact.every"),
])
async def test_a_bad_offer_names_the_missing_or_unknown_key(make_client, offer, field):
    client = await make_client()
    answer = await client.post("/v1/offers", json=offer)
    assert answer.status == 400
    error = (await answer.json())["error"]
    assert error["code"] == "invalid_offer" and error["field"] == field, error


async def test_one_subscriber_id_limit_everywhere(make_client):
    client = await make_client()
    longest, too_long = "7" * 256, "7" * 300
    assert (await client.put(f"/v1/subscribers/{longest}", json={"tariff": "smart"})).status == 201
    for method in ("PUT", "PATCH", "GET", "DELETE"):
        answer = await client.request(method, f"/v1/subscribers/{too_long}", json={"tariff": "smart"})
        assert answer.status == 400, method
        assert (await answer.json())["error"]["field"] == "subscriber_id"
        assert "at most 256 characters" in (await answer.json())["error"]["message"]
    decide = await client.post("/v1/decide", json={"channel": "web", "subscriber_id": too_long, "offers": OFFERS})
    assert decide.status == 400 and (await decide.json())["error"]["field"] == "subscriber_id"
    ok = await client.post("/v1/decide", json={"channel": "web", "subscriber_id": longest, "offers": OFFERS})
    assert ok.status == 200 and (await ok.json())["subscriber_known"] is True


@pytest.mark.parametrize("offer_id", ["has space", "pipe|id", "x" * 129, "ü"])
async def test_inline_offer_ids_follow_the_catalog_rule(make_client, offer_id):
    client = await make_client()
    answer = await client.post("/v1/decide", json={"channel": "web", "offers": [{"id": "ok"}, {"id": offer_id}]})
    assert answer.status == 400 and (await answer.json())["error"]["field"] == "offers[1].id"
    catalog = await client.post("/v1/offers", json={"id": offer_id, "name": "X"})
    assert catalog.status == 400 and (await catalog.json())["error"]["field"] == "id"


async def test_patch_endpoints_take_the_merge_patch_media_type(make_client):
    client = await make_client()
    await client.post("/v1/offers", json={"id": "a", "name": "A"})
    await client.put("/v1/subscribers/79001234567", json={"tariff": "smart"})
    patch = {"Content-Type": "application/merge-patch+json"}
    offer = await client.patch("/v1/offers/a", data='{"value": 2.5}', headers=patch)
    assert offer.status == 200 and (await offer.json())["offer"]["value"] == 2.5
    profile = await client.patch("/v1/subscribers/79001234567", data='{"tariff": null, "arpu": 3}', headers=patch)
    assert profile.status == 200 and (await profile.json())["profile"] == {"arpu": 3}
    # only where a merge patch is what the endpoint applies
    put = await client.put("/v1/offers/a", data='{"name": "A"}', headers=patch)
    assert put.status == 415 and (await put.json())["error"]["code"] == "unsupported_media_type"
    text = await client.patch("/v1/offers/a", data='{"value": 1}', headers={"Content-Type": "text/plain"})
    assert text.status == 415


async def _raw_http(client, request: bytes) -> tuple[bytes, bytes]:
    import asyncio

    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_an_unparseable_header_gets_a_json_400_and_no_traceback(make_client, caplog):
    import orjson

    client = await make_client()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        head, body = await _raw_http(client, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
    assert head.split(b" ")[1] == b"400" and b"application/json" in head.lower(), head
    error = orjson.loads(body)["error"]
    assert error["code"] == "bad_request"
    assert error["message"].startswith("the request cannot be parsed as HTTP: ") and "\n" not in error["message"]
    assert "header" in error["message"].lower()   # llhttp: "Invalid header value char"
    assert set(error) == {"code", "message", "field"}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_405_names_the_allowed_methods_in_allow(make_client):
    client = await make_client()
    answer = await client.delete("/v1/decide")
    assert answer.status == 405 and (await answer.json())["error"]["code"] == "method_not_allowed"
    assert answer.headers["Allow"] == "POST"
    offers = await client.post("/v1/offers/a", json={})
    assert offers.status == 405
    assert set(offers.headers["Allow"].split(",")) >= {"GET", "PUT", "PATCH", "DELETE"} - {"POST"}
    assert "POST" not in offers.headers["Allow"].split(",")
