"""The OpenAPI document against the live service: schemathesis generates requests for
every documented operation (valid ones and invalid ones) and checks each answer's status,
media type and body against the document, and that none is a 5xx. The service is the real
app (real VW, the embedded Redis) with API keys, on a free port in a thread of its own."""

from __future__ import annotations

import asyncio
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)
from schemathesis.checks import not_a_server_error

from bandit.app import create_app
from bandit.config import Settings, load_settings
from bandit.http import openapi
from bandit.store.embedded import EmbeddedRedis
from tests.harness import short_tempdir

KEY = "openapi-test-key-0123456789"
CHANNEL_KEY = "openapi-channel-key-0123456789"
AUTH = {"X-API-Key": KEY}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
CATALOG = [{"id": f"plan{i}", "name": f"Plan {i}", "value": 10.0 * (i + 1), "features": {"tier": f"t{i % 2}"}}
           for i in range(3)]


class LiveService:
    """The app served on 127.0.0.1 from an event loop in a thread, so the synchronous
    schemathesis client can call it like any other client would."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="openapi-service", daemon=True)
        self.runner = web.AppRunner(app)
        self.base = ""

    def start(self) -> LiveService:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]   # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def service_settings(redis_url: str, data_dir: Path) -> Settings:
    return load_settings(env={}, overrides={
        "redis_url": redis_url, "key_prefix": f"nbtest:{uuid.uuid4().hex[:12]}", "data_dir": data_dir,
        "checkpoint_every_seconds": 3600.0, "slots": {"contact_center": 3},
        "api_keys": [{"name": "all", "key": KEY, "scopes": ["admin", "channel", "profiles"]},
                     {"name": "desk", "key": CHANNEL_KEY, "scopes": ["channel"]}]})


# The document of an app with the service's settings (Redis and the data directory do not
# enter it): schemathesis makes one test per operation from it at collection time; the
# service is checked to serve exactly this document.
_SETTINGS = service_settings("redis://127.0.0.1:1", Path("/nonexistent"))
DOCUMENT = openapi.build(create_app(_SETTINGS).router, _SETTINGS)


@pytest.fixture(scope="module")
def service(embedded_redis: EmbeddedRedis) -> Iterator[LiveService]:
    data_dir = short_tempdir("nboa")
    live = LiveService(create_app(service_settings(embedded_redis.url, data_dir))).start()
    for offer in CATALOG:
        assert requests.post(f"{live.base}/v1/offers", json=offer, headers=AUTH, timeout=10).status_code == 201
    yield live
    live.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def document(service: LiveService) -> dict:
    return requests.get(f"{service.base}/v1/openapi.json", timeout=10).json()


schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_service_serves_the_generated_document_and_it_is_valid_openapi_3_1(document: dict) -> None:
    assert document == DOCUMENT
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_the_document_carries_the_enforced_limits(document: dict) -> None:
    schemas = document["components"]["schemas"]
    decide = schemas["DecideRequest"]["properties"]
    assert decide["channel"]["enum"] == ["contact_center", "web", "search", "ussd"]
    assert decide["channel"]["maxLength"] == 64
    assert decide["k"]["anyOf"][0]["maximum"] == 1000
    assert decide["offers"]["anyOf"][0]["maxItems"] == 200
    assert {"explain", "defer_activation"} <= set(decide)
    assert "value" in schemas["OfferIn"]["properties"]
    assert {"type": "null"} in schemas["DecideResponse"]["properties"]["event_id"]["anyOf"]
    assert len(schemas["RewardRequest"]["oneOf"]) == 2
    path = document["paths"]["/v1/subscribers/{subscriber_id}"]["get"]["parameters"][0]
    assert path["schema"]["maxLength"] == 256
    patch = document["paths"]["/v1/offers/{offer_id}"]["patch"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert {"401", "403", "503"} <= set(patch["responses"])
    assert {"apiKey", "bearer", "session"} == set(document["components"]["securitySchemes"])
    assert {"apiKey": ["admin"]} in document["paths"]["/v1/stats"]["get"]["security"]
    for path in ("/v1/decide", "/v1/reward", "/v1/events/{event_id}/activate"):   # refused past backlog_limit
        refused = document["paths"][path]["post"]["responses"]["503"]
        assert "backlog_full" in refused["description"] and "Retry-After" in refused["headers"], path


def test_a_key_without_the_scope_gets_the_documented_403(service: LiveService) -> None:
    operation = schema["/v1/stats"]["GET"]
    response = operation.Case().call(base_url=service.base, headers={"X-API-Key": CHANNEL_KEY})
    assert response.status_code == 403
    operation.Case().validate_response(response, checks=CHECKS)
    response = operation.Case().call(base_url=service.base)
    assert response.status_code == 401
    operation.Case().validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=50, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case, service: LiveService) -> None:
    case.call_and_validate(base_url=service.base, headers=AUTH, checks=CHECKS)


def test_every_documented_operation_is_run() -> None:
    assert len(list(schema.get_all_operations())) == len(openapi.OPERATIONS) == 28


def test_found_by_the_run_a_profile_has_at_most_1000_features_and_a_put_offer_may_omit_its_id(
        service: LiveService) -> None:
    """Two disagreements the run found: profiles took any number of features (decide's
    context takes 1,000), and PUT documented the offer id as required though the path gives it."""
    many = {f"f{i}": 1 for i in range(1001)}
    for method in ("PUT", "PATCH"):
        response = requests.request(method, f"{service.base}/v1/subscribers/big", json=many, headers=AUTH, timeout=10)
        assert response.status_code == 400 and "1000" in response.json()["error"]["message"], response.text
    put = requests.put(f"{service.base}/v1/offers/no-id-in-body", json={"name": "No id"}, headers=AUTH, timeout=10)
    assert put.status_code == 201 and put.json()["offer"]["id"] == "no-id-in-body"
    body = DOCUMENT["paths"]["/v1/offers/{offer_id}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert "id" not in body["required"]
