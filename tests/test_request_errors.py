"""Bad requests of every kind get a 4xx JSON error naming the field and the reason,
never a 500 or a traceback (issue 17)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import OFFERS


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
