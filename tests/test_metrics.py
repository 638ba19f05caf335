"""GET /metrics and the JSON log format: real service, real Redis (embedded 6.2 and
REDIS_URL), parsed with Prometheus' own parser."""

from __future__ import annotations

import io
import json
import logging
import math
import socket
import sys
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from bandit.app import REDIS_ERRORS, error_middleware
from bandit.observe.ratelog import CauseLog
from bandit.cli import main
from bandit.config import ConfigError, load_settings
from bandit.store.keys import LEARNER_GROUP, Keys
from bandit.observe.logging_json import JsonFormatter, RedactSubscriberIds, configure_logging, formatter_for
from bandit.observe.metrics import LABEL_CAP, OTHER, BoundedLabel, add_metrics, metrics_middleware, read_snapshot
from bandit.state import DECIDER, STORE, WORKER
from bandit.store.store import Store
from tests.conftest import OFFERS
from tests.harness import wait_until
from tests.test_auth import ADMIN_KEY, CHANNEL_KEY, KEYS

N = 12
REWARDED = 8


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples(text).items() if n == name and labels.items() <= dict(ls).items())


async def scrape(client, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await response.text()


async def test_metrics_follow_decisions_rewards_and_the_learner(make_client):
    client = await make_client(checkpoint_every_events=4)
    event_ids = []
    for i in range(N):
        body = {"channel": "web" if i % 2 else "ussd", "subscriber_id": f"7900000{i:04d}", "offers": OFFERS}
        response = await client.post("/v1/decide", json=body)
        assert response.status == 200
        event_ids.append((await response.json())["event_id"])
    for event_id in event_ids[:REWARDED]:
        assert (await client.post("/v1/reward", json={"event_id": event_id, "reward": 1})).status == 200
    assert (await client.post("/v1/reward", json={"event_id": event_ids[0], "reward": 1})).status == 200   # dup
    assert (await client.post("/v1/reward", json={"event_id": "never-decided", "reward": 1})).status == 404
    assert (await client.get(f"/v1/events/{event_ids[-1]}")).status == 200
    assert (await client.get("/no/such/path")).status == 404

    async def caught_up():
        text = await scrape(client)
        return text if value(text, "nextbest_learner_lag") == 0 and \
            (value(text, "nextbest_checkpoint_version") or 0) >= 1 else None
    text = await wait_until(caught_up, timeout=15, what="the learner to catch up and checkpoint")
    stats = await (await client.get("/v1/stats")).json()

    assert total(text, "nextbest_decisions_total") == N
    assert total(text, "nextbest_decisions_total", channel="web") == N / 2
    assert total(text, "nextbest_decisions_total", policy="model") == N
    assert total(text, "nextbest_decisions_without_offer_total") == 0
    assert value(text, "nextbest_http_request_duration_seconds_count", method="POST", route="/v1/decide") == N
    assert value(text, "nextbest_http_requests_total", method="POST", route="/v1/decide", status="200") == N
    assert value(text, "nextbest_rewards_total", status="joined") == REWARDED
    assert value(text, "nextbest_rewards_total", status="duplicate") == 1
    assert value(text, "nextbest_rewards_total", status="unknown") == 1
    # route templates, never raw ids
    assert value(text, "nextbest_http_requests_total", method="GET", route="/v1/events/{event_id}",
                 status="200") == 1
    assert value(text, "nextbest_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert event_ids[-1] not in text and "never-decided" not in text
    # deployment-wide values agree with /v1/stats
    assert value(text, "nextbest_redis_up") == 1
    assert value(text, "nextbest_store_events_joined_total") == stats["counters"]["events_joined"] == REWARDED
    assert value(text, "nextbest_store_decisions_total") == stats["counters"]["decisions"] == N
    assert value(text, "nextbest_pending_decisions") == stats["pending"] == N - REWARDED
    assert 0 <= value(text, "nextbest_joined_stream_length") <= REWARDED   # a checkpoint may trim it meanwhile
    assert value(text, "nextbest_model_examples_learned") == stats["model"]["examples_learned"] == REWARDED
    assert value(text, "nextbest_learner_lease") == 1
    age = value(text, "nextbest_checkpoint_age_seconds")
    assert age is not None and math.isfinite(age) and 0 <= age < 60


async def test_metrics_need_the_admin_key(make_client):
    client = await make_client(api_keys=KEYS)
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"X-API-Key": CHANNEL_KEY})).status == 403
    text = await scrape(client, Authorization=f"Bearer {ADMIN_KEY}")
    assert value(text, "nextbest_redis_up") == 1


async def test_learner_lag_counts_pending_and_undelivered_entries(redis_url, key_prefix):
    """Redis 6.2 has no `lag` in XINFO GROUPS, nor has 7 after XGROUP SETID: both paths."""
    client = aioredis.Redis.from_url(redis_url)
    store = Store(client, Keys(key_prefix))
    try:
        async def unacked() -> int:
            return (await read_snapshot(store)).backlog.consumers[LEARNER_GROUP].events
        assert await unacked() == 0       # no stream yet
        await store.ensure_group(LEARNER_GROUP)
        for i in range(5):
            await client.xadd(store.keys.joined, {"i": i})
        await client.xreadgroup(LEARNER_GROUP, "c", {store.keys.joined: ">"}, count=2)
        assert await unacked() == 5    # 2 pending + 3 undelivered
        await store.rewind_group(LEARNER_GROUP, "0-0")               # SETID: Redis 7 may drop `lag`
        assert await unacked() == 7    # 2 pending + 5 to redeliver
        reply = await client.xreadgroup(LEARNER_GROUP, "c", {store.keys.joined: ">"}, count=10)
        await client.xack(store.keys.joined, LEARNER_GROUP, *[sid for sid, _ in reply[0][1]])
        assert await unacked() == 0
    finally:
        await client.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_scrape_answers_when_redis_is_down(aiohttp_client):
    app = web.Application(middlewares=[metrics_middleware, error_middleware])
    app[REDIS_ERRORS] = CauseLog(logging.getLogger("nextbest"))   # what create_app sets
    add_metrics(app)
    redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{_closed_port()}", socket_connect_timeout=0.5, retry=None)
    app[STORE] = Store(redis, Keys("down"))
    app[DECIDER] = SimpleNamespace(model=SimpleNamespace(version=3, learner=SimpleNamespace(learned=7)))
    app[WORKER] = SimpleNamespace(leading=False)

    async def uses_redis(request: web.Request) -> web.Response:
        await redis.ping()
        return web.Response()
    app.router.add_get("/uses-redis", uses_redis)
    client = await aiohttp_client(app)
    assert (await client.get("/uses-redis")).status == 503
    text = await scrape(client)
    assert value(text, "nextbest_redis_up") == 0
    assert value(text, "nextbest_model_version") == 3 and value(text, "nextbest_model_examples_learned") == 7
    assert value(text, "nextbest_learner_lease") == 0
    assert value(text, "nextbest_redis_errors_total", kind="connection") == 1
    assert value(text, "nextbest_http_requests_total", method="GET", route="/uses-redis", status="503") == 1
    assert not any(n.startswith("nextbest_store_") or n == "nextbest_pending_decisions" for n, _ in samples(text))
    await redis.aclose()


def test_label_values_are_capped():
    label = BoundedLabel()
    assert [label(f"c{i}") for i in range(LABEL_CAP)] == [f"c{i}" for i in range(LABEL_CAP)]
    assert label("one-too-many") == OTHER and label("c0") == "c0"


def _record(message: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("nextbest.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_json_log_lines_carry_extras_and_survive_any_text():
    message = "событие %s:\nline two \"quoted\" \u2603"
    line = JsonFormatter().format(_record(message, "e1", event_id="e1", stream_id="1-0", big=1 << 70))
    assert "\n" not in line
    out = json.loads(line)
    assert out["message"] == message % "e1" and out["event_id"] == "e1" and out["stream_id"] == "1-0"
    assert out["level"] == "WARNING" and out["logger"] == "nextbest.test" and out["ts"].endswith("Z")
    assert out["big"] == str(1 << 70)
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("failed", event_id="e2")
        record.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter().format(record))
    assert out["event_id"] == "e2" and "ValueError: boom" in out["exc"]


def test_no_log_line_shows_a_raw_subscriber_id():
    stream = io.StringIO()
    logger = logging.getLogger("aiohttp.access.test")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSubscriberIds())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("%s", '127.0.0.1 "GET /v1/subscribers/79001234567?x=1 HTTP/1.1" 200',
                    extra={"first_request_line": "GET /v1/subscribers/79001234567 HTTP/1.1",
                           "response_status": "200", "remote_address": "127.0.0.1"})
    finally:
        logger.removeHandler(handler)
    out = json.loads(stream.getvalue())
    assert "79001234567" not in stream.getvalue()
    assert out["path"] == "/v1/subscribers/{subscriber_id}" and out["method"] == "GET" and out["status"] == 200


def test_log_format_setting_and_option():
    assert load_settings(env={}).log_format == "text"
    settings = load_settings(env={"NEXTBEST_LOG_FORMAT": "json"})
    assert settings.log_format == "json" and isinstance(formatter_for(settings.log_format), JsonFormatter)
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(env={"NEXTBEST_LOG_FORMAT": "xml"})
    stream = io.StringIO()
    handler = configure_logging("json", stream=stream)
    logging.getLogger().removeHandler(handler)   # only if basicConfig installed it (no pytest handlers)
    handler.handle(_record("hello", event_id="e3"))
    assert json.loads(stream.getvalue())["event_id"] == "e3"
    assert "--log-format" in CliRunner().invoke(main, ["--help"]).output
