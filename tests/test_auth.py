"""API keys and scopes; the open mode refuses a public address."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bandit.http.auth import parse_api_keys
from bandit.cli import main
from bandit.config import ConfigError, load_settings

CHANNEL_KEY = "chan-0123456789abcdef"
ADMIN_KEY = "admin-0123456789abcdef"
KEYS = [{"name": "desktop", "key": CHANNEL_KEY, "scopes": ["channel"]},
        {"name": "marketing", "key": ADMIN_KEY, "scopes": ["admin", "channel"]}]
DECIDE = {"channel": "web", "offers": [{"id": "a"}, {"id": "b"}]}


async def test_keys_and_scopes(make_client):
    client = await make_client(api_keys=KEYS)
    assert (await client.post("/v1/decide", json=DECIDE)).status == 401
    wrong = await client.post("/v1/decide", json=DECIDE, headers={"Authorization": "Bearer not-a-real-key-at-all"})
    assert wrong.status == 401 and (await wrong.json())["error"]["code"] == "unauthorized"
    ok = await client.post("/v1/decide", json=DECIDE, headers={"Authorization": f"Bearer {CHANNEL_KEY}"})
    assert ok.status == 200
    event_id = (await ok.json())["event_id"]
    reward = await client.post("/v1/reward", json={"event_id": event_id, "reward": 1},
                               headers={"X-API-Key": CHANNEL_KEY})
    assert reward.status == 200
    forbidden = await client.get("/v1/offers", headers={"X-API-Key": CHANNEL_KEY})
    assert forbidden.status == 403 and (await forbidden.json())["error"]["code"] == "forbidden"
    assert (await client.get("/v1/offers", headers={"X-API-Key": ADMIN_KEY})).status == 200
    assert (await client.get("/v1/stats", headers={"X-API-Key": ADMIN_KEY})).status == 200
    for open_path in ("/healthz", "/readyz", "/v1/openapi.json"):
        assert (await client.get(open_path)).status == 200


def test_keys_from_the_environment_and_errors_that_never_show_a_key():
    settings = load_settings(env={"NEXTBEST_API_KEYS": f"desk={CHANNEL_KEY}:channel;ops={ADMIN_KEY}:admin+channel"})
    assert [(k.name, sorted(k.scopes)) for k in settings.api_keys] == [("desk", ["channel"]),
                                                                       ("ops", ["admin", "channel"])]
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"NEXTBEST_API_KEYS": "desk=short:channel"})
    assert "short" not in str(caught.value).replace("NEXTBEST", "")
    with pytest.raises(ValueError, match="scopes"):
        parse_api_keys([{"name": "x", "key": CHANNEL_KEY, "scopes": ["root"]}])


def test_open_mode_refuses_a_public_address(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)], env={})
    assert result.exit_code != 0
    assert "refusing to listen on 0.0.0.0 with no API keys" in result.output


async def test_the_profiles_scope_writes_profiles_and_nothing_else(make_client):
    crm_key = "crm-0123456789abcdef"
    client = await make_client(api_keys=[*KEYS, {"name": "crm", "key": crm_key, "scopes": ["profiles"]}])
    crm = {"X-API-Key": crm_key}
    admin = {"X-API-Key": ADMIN_KEY}
    assert (await client.put("/v1/subscribers/79001234567", json={"tariff": "smart"}, headers=crm)).status == 201
    assert (await client.patch("/v1/subscribers/79001234567", json={"tariff": "super"}, headers=crm)).status == 200
    assert (await client.get("/v1/subscribers/79001234567", headers=crm)).status == 200
    assert (await client.get("/v1/subscribers/79001234567", headers=admin)).status == 200   # admin keeps it all
    for method, path in (("GET", "/v1/offers"), ("POST", "/v1/offers"), ("GET", "/v1/stats"),
                         ("POST", "/v1/decide")):
        denied = await client.request(method, path, json={"id": "x", "name": "X"}, headers=crm)
        assert denied.status == 403, (method, path)
    channel_only = await client.put("/v1/subscribers/79001234567", json={"tariff": "x"},
                                    headers={"X-API-Key": CHANNEL_KEY})
    assert channel_only.status == 403
    assert "'profiles' or 'admin'" in (await channel_only.json())["error"]["message"]
    assert (await client.delete("/v1/subscribers/79001234567", headers=crm)).status == 200
    settings = load_settings(env={"NEXTBEST_API_KEYS": f"crm={crm_key}:profiles"})
    assert [sorted(k.scopes) for k in settings.api_keys] == [["profiles"]]
