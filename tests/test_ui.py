"""The web UI without a browser: deployment-wide analytics (counted exactly once, window
queries, the lift interval), browser sessions and CSRF, the UI's JSON endpoints, and
the pages' access rules. Real service, real Redis (embedded and REDIS_URL)."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import yaml

from bandit.observe.analytics import Analytics, Tally, lift, mean_difference, query
from bandit.decide.record import read_brief
from bandit.store.keys import ANALYTICS_GROUP, Keys
from bandit.store.store import Store
from replay.estimators import difference_of_means
from tests.harness import wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "telecom"
CHANNEL_KEY = "chan-0123456789abcdef"
ADMIN_KEY = "admin-0123456789abcdef"
KEYS = [{"name": "desktop", "key": CHANNEL_KEY, "scopes": ["channel"]},
        {"name": "marketing", "key": ADMIN_KEY, "scopes": ["admin", "channel"]}]
PROFILE = {"tariff": "smart", "region": "moscow", "arpu": 450.0, "balance": 120.0, "tenure_months": 40,
           "services": ["sms_pack"], "long_distance_minutes": 140.0, "international_minutes": 2.0,
           "roaming_days": 1.0, "data_gb": 3.0, "sms_count": 30.0, "topups_30d": 2}


def example(**extra: Any) -> dict[str, Any]:
    """The telecom example's settings and catalog, as overrides for make_client."""
    settings = yaml.safe_load((EXAMPLES / "nextbest.yaml").read_text())
    return {**settings, "catalog": EXAMPLES / "catalog.yaml", **extra}


def cookie_of(response) -> str:
    return response.cookies["nextbest_session"].value


async def sign_in(client, key: str) -> tuple[dict[str, str], str]:
    """Sign in; returns the Cookie header to send and the CSRF token."""
    response = await client.post("/ui/login", json={"key": key})
    assert response.status == 200, await response.text()
    client.session.cookie_jar.clear()   # tests send the cookie explicitly
    return {"Cookie": f"nextbest_session={cookie_of(response)}"}, (await response.json())["csrf_token"]


# -- analytics: exactly once ------------------------------------------------------------

async def test_analytics_counts_every_joined_decision_once_across_a_restart(make_client):
    client = await make_client(**example(control_share=0.5, reward_wait_seconds=1.0))
    expected: dict[str, Tally] = {}
    for i in range(24):
        subscriber = f"7900{i:07d}"
        body = {"channel": "contact_center" if i % 2 else "web", "subscriber_id": subscriber,
                "context": {"reason": "long_distance"}}
        decision = await (await client.post("/v1/decide", json=body)).json()
        offer = decision["ranking"][0]["offer_id"]
        tally = expected.setdefault(offer, Tally())
        tally.decisions += 1
        if i % 3 == 0:
            answer = await (await client.post("/v1/reward", json={"event_id": decision["event_id"],
                                                                    "outcome": "accept"})).json()
            tally.accepts += 1
            tally.value += answer["reward"]
        elif i % 3 == 1:
            await client.post("/v1/reward", json={"event_id": decision["event_id"], "outcome": "decline"})
        # i % 3 == 2: no answer, defaulted after reward_wait_seconds

    async def counted() -> dict | None:
        body = await (await client.get("/ui/api/analytics", params={"window": "15m"})).json()
        return body if body["totals"]["decisions"] == 24 else None
    first = await wait_until(counted, what="24 settled decisions counted")
    by_offer = {row["offer"]: row for row in first["by_offer"]}
    assert {o: (t.decisions, t.accepts, t.value) for o, t in expected.items()} == \
        {o: (r["decisions"], r["accepts"], pytest.approx(r["value"])) for o, r in by_offer.items()}
    assert sum(r["decisions"] for r in first["by_channel"]) == 24
    assert {r["channel"] for r in first["by_channel"]} == {"contact_center", "web"}
    assert sum(r["decisions"] for r in first["by_policy"]) == 24

    await client.close()   # the leader steps down: its duties stop, the lease is released
    again = await make_client(**example(control_share=0.5, reward_wait_seconds=1.0))
    await wait_until(lambda: _leading(again), what="the new process leads")
    second = await (await again.get("/ui/api/analytics", params={"window": "15m"})).json()
    assert second["totals"] == first["totals"] and second["by_offer"] == first["by_offer"]


async def _leading(client) -> bool:
    return (await (await client.get("/v1/stats")).json())["learner"]["leading"]


def joined_entry(offer: str, reward: float, *, ts_ms: int, channel: str = "web", policy: str = "model",
                 kind: str = "joined") -> dict[str, Any]:
    record = {"v": 1, "id": uuid.uuid4().hex, "ts": ts_ms, "channel": channel, "offers": [offer, "other"],
              "chosen": 0, "policy": policy, "pmf": [0.5, 0.5]}
    return {"id": record["id"], "rec": orjson.dumps(record), "reward": repr(reward), "kind": kind, "n": "1",
            "t": str(ts_ms)}


@pytest.fixture
async def store(redis_url: str, key_prefix: str):
    client = aioredis.Redis.from_url(redis_url)
    yield Store(client, Keys(key_prefix))
    await client.aclose()


async def test_a_crash_before_or_after_the_count_script_neither_loses_nor_repeats(store):
    now_ms = int(time.time() * 1000)
    for i in range(10):
        await store.redis.xadd(store.keys.joined, joined_entry("a" if i < 6 else "b", 2.0 if i % 2 else 0.0,
                                                               ts_ms=now_ms))
    await store.redis.xadd(store.keys.joined, {"id": "broken", "rec": b"{}", "reward": "1", "kind": "joined",
                                               "n": "1", "t": str(now_ms)})
    crashed = Analytics(store, "crashed-leader")
    await crashed.prepare()
    events = await store.read_group(ANALYTICS_GROUP, "crashed-leader", 100, block_ms=10, decode=read_brief)
    assert len(events) == 11   # read, then the process died before its count script ran

    successor = Analytics(store, "successor")
    await successor.prepare()
    assert await successor.claim_pending() == 10      # the unreadable entry is acknowledged, not counted
    assert await crashed.count(events) == 0           # the stale leader wakes up: every XACK fails
    assert await successor.count(events) == 0
    restarted = Analytics(store, "restarted")
    await restarted.prepare()
    assert await restarted.claim_pending() == 0
    await store.redis.xgroup_destroy(store.keys.joined, ANALYTICS_GROUP)   # even a lost group starts after
    await restarted.prepare()                                              # the last counted entry
    assert await store.read_group(ANALYTICS_GROUP, "restarted", 100, block_ms=10) == []

    body = await query(store.redis, store.keys, "15m")
    assert body["totals"]["decisions"] == 10 and body["totals"]["accepts"] == 5
    assert body["totals"]["value"] == pytest.approx(10.0)
    assert {r["offer"]: r["decisions"] for r in body["by_offer"]} == {"a": 6, "b": 4}
    assert await store.redis.get(store.keys.agg_offset) == (await store.redis.xrevrange(
        store.keys.joined, count=1))[0][0]


async def test_a_batch_counts_exactly_its_still_pending_entries(store):
    """A large batch, listed out of order, some entries already taken by another leader,
    some listed twice: each entry still pending is counted once, in one script."""
    now_ms = int(time.time() * 1000)
    pipe = store.redis.pipeline(transaction=False)
    for i in range(700):
        pipe.xadd(store.keys.joined, joined_entry(f"o{i % 7}", 1.0 if i % 4 == 0 else -0.5, ts_ms=now_ms))
    await pipe.execute()
    analytics = Analytics(store, "leader")
    await analytics.prepare()
    events = await store.read_group(ANALYTICS_GROUP, "leader", 1000, block_ms=10, decode=read_brief)
    assert len(events) == 700
    taken = events[::5]   # another leader counted these already
    await store.redis.xack(store.keys.joined, ANALYTICS_GROUP, *[e.stream_id for e in taken])
    taken_ids = {e.stream_id for e in taken}
    left = [e for e in events if e.stream_id not in taken_ids]
    batch = list(reversed(events)) + left[:3]
    assert await analytics.count(batch) == len(left) == 560
    assert await analytics.count(batch) == 0
    assert await store.redis.xpending(store.keys.joined, ANALYTICS_GROUP) == {
        "pending": 0, "min": None, "max": None, "consumers": []}
    body = await query(store.redis, store.keys, "15m")
    accepted = sum(1 for i, e in enumerate(events) if i % 4 == 0 and e.stream_id not in taken_ids)
    assert body["totals"]["decisions"] == 560 and body["totals"]["accepts"] == accepted
    assert body["totals"]["value"] == pytest.approx(accepted * 1.0 - (560 - accepted) * 0.5)
    assert await store.redis.get(store.keys.agg_offset) == events[-1].stream_id.encode()


async def test_window_queries_by_minute_and_hour(store):
    now = time.time()
    entries = [("recent", 0), ("half_hour", 30 * 60), ("three_hours", 3 * 3600), ("two_days", 2 * 86400)]
    for offer, age in entries:
        await store.redis.xadd(store.keys.joined, joined_entry(offer, 1.0, ts_ms=int((now - age) * 1000),
                                                               channel="ch|pipe"))
    await store.redis.xadd(store.keys.joined, joined_entry("dropped", 0.0, ts_ms=int(now * 1000), kind="dropped"))
    analytics = Analytics(store, "me")
    await analytics.prepare()
    events = await store.read_group(ANALYTICS_GROUP, "me", 100, block_ms=10, decode=read_brief)
    assert await analytics.count(events) == 5

    seen = {}
    for window, points, resolution in (("15m", 15, "minute"), ("1h", 60, "minute"), ("24h", 24, "hour"),
                                       ("7d", 168, "hour")):
        body = await query(store.redis, store.keys, window, now=now)
        assert len(body["series"]) == points and body["resolution"] == resolution
        assert body["to_ms"] > now * 1000 >= body["series"][-1]["t"]
        assert sum(p["decisions"] for p in body["series"]) == body["totals"]["decisions"]
        seen[window] = {r["offer"] for r in body["by_offer"] if r["decisions"]}
        assert body["totals"]["dropped"] == 1 and body["by_channel"][0]["channel"] in ("ch/pipe", "web")
    assert seen == {"15m": {"recent"}, "1h": {"recent", "half_hour"}, "24h": {"recent", "half_hour", "three_hours"},
                    "7d": {"recent", "half_hour", "three_hours", "two_days"}}
    ttl_minute = await store.redis.ttl(store.keys.agg_bucket("m", int(now) // 60))
    ttl_hour = await store.redis.ttl(store.keys.agg_bucket("h", int(now) // 3600))
    assert 0 < ttl_minute <= 2 * 86400 and 2 * 86400 < ttl_hour <= 8 * 86400


# -- the lift interval ------------------------------------------------------------------

def test_lift_interval_matches_a_hand_computation():
    model = [3.0, 0.0, 0.0, 5.0, 3.0, 0.0]
    control = [0.0, 1.0, 0.0, 0.0]
    # by hand: means 11/6 and 1/4; s² = (Σx² − (Σx)²/n)/(n − 1)
    var_model = (43 - 121 / 6) / 5            # Σx² = 9 + 25 + 9 = 43
    var_control = (1 - 1 / 4) / 3
    se = math.sqrt(var_model / 6 + var_control / 4)
    diff = 11 / 6 - 1 / 4
    got = mean_difference(6, sum(model), sum(x * x for x in model), 4, sum(control), sum(x * x for x in control))
    assert got["difference"] == pytest.approx(diff) and got["se"] == pytest.approx(se)
    assert got["lower"] == pytest.approx(diff - 1.959964 * se, rel=1e-6)
    assert got["upper"] == pytest.approx(diff + 1.959964 * se, rel=1e-6)
    assert got["relative"] == pytest.approx(diff / 0.25)
    reference = difference_of_means(model, control)   # the replay estimator on the raw outcomes
    assert (got["lower"], got["upper"]) == pytest.approx((reference.lower, reference.upper))

    accepts = lift(Tally(decisions=6, accepts=3, value=11.0, value_sq=43.0), Tally(decisions=4, accepts=1, value=1.0,
                                                                                    value_sq=1.0))
    ref = difference_of_means([1, 0, 0, 1, 1, 0], [0, 1, 0, 0])
    assert accepts["acceptance_rate"]["difference"] == pytest.approx(0.25)
    assert (accepts["acceptance_rate"]["lower"], accepts["acceptance_rate"]["upper"]) == \
        pytest.approx((ref.lower, ref.upper))
    one_each = mean_difference(1, 1.0, 1.0, 0, 0.0, 0.0)
    assert one_each["difference"] is None and one_each["lower"] is None   # no control decision yet


# -- sessions, scopes, CSRF -------------------------------------------------------------

async def test_sign_in_cookie_flags_and_sign_out(make_client):
    client = await make_client(api_keys=KEYS)
    assert (await client.get("/ui/api/session")).status == 401
    wrong = await client.post("/ui/login", json={"key": "not-a-real-key-at-all"})
    assert wrong.status == 401 and (await wrong.json())["error"]["field"] == "key"
    assert "Set-Cookie" not in wrong.headers
    missing = await client.post("/ui/login", json={})
    assert missing.status == 400 and (await missing.json())["error"]["field"] == "key"
    form = await client.post("/ui/login", data={"key": ADMIN_KEY})
    assert form.status == 415

    response = await client.post("/ui/login", json={"key": ADMIN_KEY})
    assert response.status == 200
    flags = response.headers["Set-Cookie"]
    assert flags.startswith("nextbest_session=") and "HttpOnly" in flags and "SameSite=Strict" in flags
    assert "Path=/" in flags and "Secure" not in flags   # plain http here: Secure only over https
    body = await response.json()
    assert body["name"] == "marketing" and body["scopes"] == ["admin", "channel"] and body["home"] == "/ui/"
    assert ADMIN_KEY not in flags and ADMIN_KEY not in await response.text()
    client.session.cookie_jar.clear()
    cookie = {"Cookie": f"nextbest_session={cookie_of(response)}"}

    session = await (await client.get("/ui/api/session", headers=cookie)).json()
    assert session["csrf_token"] == body["csrf_token"] and session["open"] is False
    page = await client.get("/ui/", headers=cookie, allow_redirects=False)
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/v1/stats", headers=cookie)).status == 200

    assert (await client.post("/ui/logout", headers=cookie)).status == 403   # no CSRF token
    out = await client.post("/ui/logout", headers={**cookie, "X-CSRF-Token": body["csrf_token"]})
    assert out.status == 200 and "nextbest_session=" in out.headers["Set-Cookie"]
    assert (await client.get("/ui/api/session", headers=cookie)).status == 401
    assert (await client.get("/v1/stats", headers=cookie)).status == 401
    gone = await client.get("/ui/", headers=cookie, allow_redirects=False)
    assert gone.status == 303 and gone.headers["Location"] == "/ui/login?next=/ui/"


async def test_a_replaced_key_ends_its_sessions_in_every_process(make_client):
    client = await make_client(api_keys=KEYS)
    cookie, _ = await sign_in(client, ADMIN_KEY)
    same = await make_client(api_keys=KEYS)   # another process of the same deployment
    assert (await same.get("/v1/stats", headers=cookie)).status == 200
    rotated = [KEYS[0], {**KEYS[1], "key": "admin-rotated-0123456789"}]
    after = await make_client(api_keys=rotated)
    assert (await after.get("/v1/stats", headers=cookie)).status == 401
    narrowed = await make_client(api_keys=[KEYS[0], {**KEYS[1], "scopes": ["channel"]}])
    assert (await narrowed.get("/v1/stats", headers=cookie)).status == 403   # scopes: what the key still has


async def test_a_channel_session_opens_the_desktop_but_not_the_dashboard(make_client):
    client = await make_client(**example(api_keys=KEYS))
    cookie, csrf = await sign_in(client, CHANNEL_KEY)
    for path in ("/ui/api/analytics", "/ui/api/overview", "/v1/offers", "/v1/stats"):
        response = await client.get(path, headers=cookie)
        assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden", path
    page = await client.get("/ui/", headers=cookie, allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/ui/login?next=/ui/&missing=admin"
    assert (await client.get("/ui/agent", headers=cookie, allow_redirects=False)).status == 200
    assert (await client.get("/ui/api/caller/79001234567", headers=cookie)).status == 200
    decide = {"subscriber_id": "79001234567", "reason": "roaming"}
    assert (await client.post("/ui/api/agent/decide", json=decide, headers=cookie)).status == 403
    assert (await client.post("/ui/api/agent/decide", json=decide, headers={**cookie, "X-CSRF-Token": csrf})).status == 200
    anonymous = await client.get("/ui/agent", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == "/ui/login?next=/ui/agent"


async def test_csrf_guards_cookie_requests_only(make_client):
    client = await make_client(**example(api_keys=KEYS))
    cookie, csrf = await sign_in(client, ADMIN_KEY)
    patch = {"value": 110}
    for headers in (cookie, {**cookie, "X-CSRF-Token": "wrong-token-0123456789"}, {**cookie, "X-CSRF-Token": ""}):
        refused = await client.patch("/v1/offers/home_cities", json=patch, headers=headers)
        assert refused.status == 403
        assert (await refused.json())["error"] == {"code": "csrf_token", "field": "X-CSRF-Token",
                                                   "message": "a signed-in browser must send the session's "
                                                              "X-CSRF-Token header"}
    assert (await (await client.get("/v1/offers/home_cities", headers=cookie)).json())["value"] == 105
    ok = await client.patch("/v1/offers/home_cities", json=patch, headers={**cookie, "X-CSRF-Token": csrf})
    assert ok.status == 200 and (await ok.json())["offer"]["value"] == 110
    by_key = await client.patch("/v1/offers/home_cities", json={"value": 120}, headers={"X-API-Key": ADMIN_KEY})
    assert by_key.status == 200   # an API key needs no CSRF token
    with_both = await client.patch("/v1/offers/home_cities", json={"value": 125},
                                   headers={**cookie, "Authorization": f"Bearer {ADMIN_KEY}"})
    assert with_both.status == 200   # a key in a header wins over the cookie
    nobody = await client.patch("/v1/offers/home_cities", json=patch)
    assert nobody.status == 401


async def test_with_no_keys_the_pages_are_open(make_client):
    client = await make_client()
    root = await client.get("/", allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/ui/"
    for path in ("/ui/", "/ui/agent", "/ui/login"):
        page = await client.get(path, allow_redirects=False)
        assert page.status == 200 and "<!doctype html>" in (await page.text()).lower(), path
    session = await (await client.get("/ui/api/session")).json()
    assert session["open"] is True and session["scopes"] == ["admin", "channel", "profiles"]
    login = await client.post("/ui/login", json={"key": "anything-at-all-000"})
    assert login.status == 200 and "Set-Cookie" not in login.headers
    for asset in ("app.css", "common.js", "charts.js", "agent.js", "i18n.js", "dashboard.js", "login.js"):
        assert (await client.get(f"/ui/static/{asset}")).status == 200, asset
    assert (await client.get("/ui/static/../session.py")).status in (403, 404)
    assert (await client.get("/ui/api/analytics")).status == 200


async def test_dashboard_endpoints(make_client):
    client = await make_client(**example())
    bad = await client.get("/ui/api/analytics", params={"window": "2d"})
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "window"
    body = await (await client.get("/ui/api/analytics")).json()
    assert body["window"] == "1h" and len(body["series"]) == 60
    assert [r["policy"] for r in body["by_policy"]] == ["control", "model"]
    assert set(body["lift"]) == {"acceptance_rate", "value_per_decision"}
    decision = await (await client.post("/v1/decide", json={"channel": "contact_center",
                                                             "context": {"reason": "slow_internet"},
                                                             "subscriber_id": "79001112233"})).json()
    overview = await (await client.get("/ui/api/overview")).json()
    [cap] = overview["caps"]
    assert cap["offer_id"] == "unlimited_internet" and cap["cap"] == "accepts_per_day" and cap["limit"] == 500
    served_unlimited = decision["ranking"][0]["offer_id"] == "unlimited_internet"
    assert (cap["used"], cap["pending"]) == (0, 1 if served_unlimited else 0)
    assert overview["pending"] == 1
    assert set(overview["consumers"]) <= {"learner", "log", "analytics"}


@pytest.mark.parametrize("setting", ["ru", "browser"])
async def test_the_pages_carry_the_configured_language(make_client, setting):
    """What i18n.js reads: the setting on <html>, served under the pages' CSP (no inline script)."""
    client = await make_client(**example(ui_language=setting))
    for path in ("/ui/agent", "/ui/", "/ui/login"):
        response = await client.get(path)
        text = await response.text()
        assert response.status == 200 and response.content_type == "text/html", path
        assert f'<html lang="en" data-ui-language="{setting}">' in text, path
        assert "script-src 'self';" in response.headers["Content-Security-Policy"]
        assert "<script>" not in text
