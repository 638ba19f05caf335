"""The offer catalog: strict loading, live changes seen by the next decision in every
process, eligibility before the bandit, and explanations."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bandit.app import create_app
from bandit.config import ConfigError
from bandit.store.catalog import CatalogError, read_catalog, read_catalog_file
from bandit.runtime import StartupError, open_runtime
from tests.conftest import wait_ready
from tests.harness import read_lines

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "telecom" / "catalog.yaml"


def test_example_catalog_has_every_text_in_english_and_russian():
    """The shipped catalog: each offer's name, pitch and terms in both languages, and the
    desktop's call reasons labelled in both."""
    catalog = read_catalog(EXAMPLE)
    for offer in catalog.offers:
        for field in ("name", "description", "terms"):
            english, russian = offer.spec.text(field, "en"), offer.spec.text(field, "ru")
            assert english and russian and english != russian, (offer.id, field)
            assert re.search(r"[а-яА-Я]", russian) and not re.search(r"[а-яА-Я]", english), (offer.id, field)
    assert catalog.reasons and all(set(labels) == {"en", "ru"} for labels in catalog.reasons.values())
    assert {o.spec.category for o in catalog.offers} & set(catalog.reasons)   # "fits the call reason"


def test_json_catalog_gives_reasons_too(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text('{"reasons": {"roaming": {"en": "Going abroad"},\n  "x y": {"en": "?"}},\n "offers": []}\n')
    with pytest.raises(CatalogError, match=r"catalog.json:2: reasons: 'x y' is not a reason code"):
        read_catalog(path)
    path.write_text('{"reasons": {"roaming": {"en": "Going abroad", "ru": "Роуминг"}}, "offers": [{"id": "a", "name": "A"}]}')
    assert read_catalog(path).reasons == {"roaming": {"en": "Going abroad", "ru": "Роуминг"}}


def test_decline_reasons_are_read_like_the_call_reasons(tmp_path):
    assert read_catalog(EXAMPLE).decline_reasons["too_expensive"] == {"en": "Too expensive", "ru": "Дорого"}
    path = tmp_path / "catalog.yaml"
    path.write_text("decline_reasons:\n  price: {en: Too expensive}\n  late: {EN: Later}\noffers: []\n")
    with pytest.raises(CatalogError, match=r"catalog.yaml:3: decline_reasons: late: 'EN' is not a language tag"):
        read_catalog(path)
    path = tmp_path / "catalog.json"
    path.write_text('{"decline_reasons": {"price": {"en": "Too expensive"}}, "offers": []}')
    assert read_catalog(path).decline_reasons == {"price": {"en": "Too expensive"}}
    path.write_text('{"decline_reasons": ["price"], "offers": []}')
    with pytest.raises(CatalogError, match=r"catalog.json:1: decline_reasons: expected an object"):
        read_catalog(path)


def test_example_catalog_loads():
    offers = read_catalog_file(EXAMPLE)
    ids = {o.id for o in offers}
    assert {"home_cities", "balance_control", "roaming_discount", "sms_pack", "unlimited_internet",
            "favourite_country", "ringback_tones", "child_locator", "mobile_mail"} <= ids
    home = next(o for o in offers if o.id == "home_cities")
    assert home.spec.value > 0 and home.rule is not None and home.line.startswith("|Offer id=home_cities")


@pytest.mark.parametrize("text, where, reason", [
    ("- id: a\n  name: A\n- id: b\n  name: B\n  colour: red\n", ":3", "offer 'b': colour: Object contains unknown field `colour`"),
    ("- id: a\n  name: A\n  value: lots\n", ":1", "offer 'a': value: Expected `float`, got `str`"),
    ("- id: a\n  name: A\n  eligibility: 'tariff in [\"x\"'\n", ":1", "offer 'a': eligibility: expected"),
    ("- id: a\n  name: A\n- id: a\n  name: again\n", ":3", "duplicate id (first at line 1)"),
    ("- id: a\n  name: A\n  valid_from: 2026-02-01T00:00:00Z\n  valid_to: 2026-01-01T00:00:00Z\n", ":1",
     "valid_to: must be after valid_from"),
    ("- id: 'has space'\n  name: A\n", ":1", "id"),
    ("offers: {a: 1}\n", ":1", "expected a list of offers"),
    ("- id: a\n  name: A\n- id: b\n  name: B\n  locales: {ru: {nme: Б}}\n", ":3",
     "offer 'b': locales.ru.nme: Object contains unknown field `nme`; a language gives name, description, terms"),
    ("- id: a\n  name: A\n  locales: {RUS: {name: Б}}\n", ":1", "offer 'a': locales: 'RUS' is not a language tag"),
    ("- id: a\n  name: A\n  locales: {ru: {name: ''}}\n", ":1", "offer 'a': locales.ru.name: Expected `str` of length >= 1"),
    ("reasons:\n  roaming: {en: Going abroad}\n  'bad code': {en: x}\noffers:\n- id: a\n  name: A\n", ":3",
     "reasons: 'bad code' is not a reason code"),
    ("reasons:\n  roaming: Going abroad\noffers: []\n", ":2", "reasons: roaming: expected its label per language"),
    ("reasons:\n  roaming: {EN: Going abroad}\noffers: []\n", ":2", "reasons: roaming: 'EN' is not a language tag"),
    ("reasons:\n  roaming: {en: ''}\noffers: []\n", ":2", "reasons: roaming.en: expected a label"),
    ("offers: []\ncolour: red\n", ":1", "expected a list of offers or 'offers:' (and 'reasons:', 'decline_reasons:')"),
    ("- [\n", ":2", "invalid YAML"),
])
def test_bad_catalog_file_is_refused_with_line_offer_and_reason(tmp_path, text, where, reason):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as caught:
        read_catalog_file(path)
    assert f"{path}{where}:" in str(caught.value) and reason in str(caught.value)


def test_json_catalog_reports_the_offer_line(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text('{"offers": [\n  {"id": "a", "name": "A"},\n  {"id": "b", "name": "B", "value": -1}\n]}\n')
    with pytest.raises(CatalogError, match=r"catalog.json:3: offer 'b': value: Expected `float` >= 0"):
        read_catalog_file(path)


async def test_bad_catalog_at_start_is_refused_and_the_running_one_kept(make_settings, tmp_path):
    good = make_settings(catalog=EXAMPLE)
    async with open_runtime(good) as runtime:
        before = await runtime.catalog.current()
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: x\n  name: X\n  eligibility: 'tariff =='\n")
    with pytest.raises(StartupError, match="bad.yaml:1: offer 'x': eligibility"):
        async with open_runtime(make_settings(catalog=bad)):
            pass
    async with open_runtime(make_settings()) as runtime:
        after = await runtime.catalog.current()
    assert after.version == before.version and set(after.offers) == set(before.offers)


async def test_decide_over_the_catalog_with_explanations(make_client, data_dir):
    client = await make_client(catalog=EXAMPLE)
    body = {"channel": "ussd", "context": {"tariff": "basic", "balance": -5, "services": ["home_cities"],
                                            "tenure_months": 1}, "explain": True, "k": 10}
    response = await client.post("/v1/decide", json=body)
    assert response.status == 200
    decision = await response.json()
    served = {r["offer_id"] for r in decision["ranking"]}
    assert served == {"balance_control", "sms_pack", "ringback_tones", "mobile_mail"}
    reasons = {e["offer_id"]: e["reason"] for e in decision["excluded"]}
    assert reasons == {"home_cities": "owned", "roaming_discount": "channel", "unlimited_internet": "rule",
                       "favourite_country": "rule", "child_locator": "rule"}
    assert "tenure_months = 1" in next(e["detail"] for e in decision["excluded"] if e["offer_id"] == "child_locator")
    assert decision["catalog_version"] >= 1
    assert sum(r["probability"] for r in decision["ranking"]) == pytest.approx(1.0)   # PMF over the eligible set

    await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 1})
    for _ in range(100):
        lines = read_lines(data_dir / "decisions")
        if lines:
            break
        await asyncio.sleep(0.05)
    [line] = lines
    assert len(line["p"]) == 4 and sorted(line["_nb"]["offers"]) == sorted(served)


async def test_no_eligible_offer_gives_an_empty_ranking(make_client):
    client = await make_client()
    decision = await (await client.post("/v1/decide", json={"channel": "web", "explain": True})).json()
    assert decision["event_id"] is None and decision["ranking"] == [] and decision["excluded"] == []


async def test_live_change_is_seen_by_the_next_decision_in_every_process(make_settings, aiohttp_client):
    settings = make_settings(catalog=EXAMPLE)
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(make_settings()))   # another process, same Redis
    await wait_ready(first)
    await wait_ready(second)
    web_body = {"channel": "web", "context": {"tariff": "super", "balance": 10, "tenure_months": 12}, "k": 20}

    async def offered(client) -> set[str]:
        return {r["offer_id"] for r in (await (await client.post("/v1/decide", json=web_body)).json())["ranking"]}
    assert "unlimited_internet" in await offered(second)

    switched = await first.patch("/v1/offers/unlimited_internet", json={"enabled": False})
    assert switched.status == 200
    assert "unlimited_internet" not in await offered(second)
    assert "unlimited_internet" not in await offered(first)

    created = await second.post("/v1/offers", json={"id": "esim", "name": "eSIM", "value": 10,
                                                    "features": {"type": "service"}})
    assert created.status == 201
    assert "esim" in await offered(first)
    assert (await first.post("/v1/offers", json={"id": "esim", "name": "again"})).status == 409

    deleted = await first.delete("/v1/offers/esim")
    assert deleted.status == 200
    assert "esim" not in await offered(second)
    assert (await first.delete("/v1/offers/esim")).status == 404


async def test_bad_offer_is_refused_and_the_catalog_unchanged(make_client):
    client = await make_client(catalog=EXAMPLE)
    before = await (await client.get("/v1/offers")).json()
    cases = [
        ("post", "/v1/offers", {"id": "x", "name": "X", "eligibility": "tariff in ["}, "eligibility"),
        ("put", "/v1/offers/x", {"name": "X", "colour": "red"}, "colour"),
        ("patch", "/v1/offers/sms_pack", {"value": "cheap"}, "value"),
        ("patch", "/v1/offers/sms_pack", {"caps": {"accepts_per_day": -1}}, "caps.accepts_per_day"),
        ("put", "/v1/offers/x", {"id": "y", "name": "Y"}, "id"),
    ]
    for method, path, body, field in cases:
        response = await getattr(client, method)(path, json=body)
        assert response.status == 400, (path, body)
        error = (await response.json())["error"]
        assert error["field"] == field, error
        assert error["message"]
    assert (await client.patch("/v1/offers/nope", json={"value": 1})).status == 404
    assert await (await client.get("/v1/offers")).json() == before


async def test_patch_merges_and_get_returns_the_offer(make_client):
    client = await make_client(catalog=EXAMPLE)
    response = await client.patch("/v1/offers/home_cities",
                                  json={"value": 120, "contact": {"max_per_week": None}, "features": {"promo": "winter"}})
    assert response.status == 200
    offer = await (await client.get("/v1/offers/home_cities")).json()
    assert offer["value"] == 120
    assert offer["contact"] == {"declined_cooldown_days": 30.0}
    assert offer["features"]["promo"] == "winter" and offer["features"]["minute_price"] == 2.5
    assert (await client.get("/v1/offers/nope")).status == 404


async def test_a_catalog_file_seeds_an_empty_catalog_and_a_restart_keeps_live_edits(make_settings, tmp_path):
    import io
    import logging

    said = io.StringIO()   # the service's own logger, whatever capturing other tests set up
    handler = logging.StreamHandler(said)
    service_log = logging.getLogger("nextbest")
    service_log.addHandler(handler)
    try:
        async with open_runtime(make_settings(catalog=EXAMPLE)) as runtime:
            seeded = await runtime.catalog.current()
            assert "home_cities" in seeded.offers
            await runtime.catalog.change("home_cities", lambda stored: None)   # a live edit: delete it
        async with open_runtime(make_settings(catalog=EXAMPLE)) as runtime:   # restarted with the same file
            kept = await runtime.catalog.current()
        assert "home_cities" not in kept.offers and kept.version == seeded.version + 1
        assert "NOT loaded: Redis already holds a catalog (8 offers" in said.getvalue()
        async with open_runtime(make_settings(catalog=EXAMPLE, catalog_replace=True)) as runtime:
            replaced = await runtime.catalog.current()
        assert "home_cities" in replaced.offers and "REPLACED" in said.getvalue()
    finally:
        service_log.removeHandler(handler)


def test_catalog_replace_needs_a_catalog_file(make_settings):
    with pytest.raises(ConfigError, match="catalog_replace needs a catalog file"):
        make_settings(catalog_replace=True)


async def test_concurrent_edits_do_not_overwrite_each_other_unseen(make_client):
    """Two marketers read sms_pack; the first changes its value, the second its rule with the
    ETag it read: 412 stale_version with the current ETag, nothing changed by the second; with
    the new ETag the edit goes through. Without If-Match an edit is taken as before."""
    client = await make_client(catalog=EXAMPLE)
    read = await client.get("/v1/offers/sms_pack")
    tag = read.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{24}"', tag)
    first = await client.patch("/v1/offers/sms_pack", json={"value": 99}, headers={"If-Match": tag})
    assert first.status == 200 and first.headers["ETag"] != tag
    assert first.headers["ETag"] == (await client.get("/v1/offers/sms_pack")).headers["ETag"]
    second = await client.patch("/v1/offers/sms_pack", json={"eligibility": "balance >= 5"}, headers={"If-Match": tag})
    assert second.status == 412 and second.headers["ETag"] == first.headers["ETag"]
    error = (await second.json())["error"]
    assert error["code"] == "stale_version" and error["field"] == "If-Match" and first.headers["ETag"] in error["message"]
    stored = await (await client.get("/v1/offers/sms_pack")).json()
    assert stored["value"] == 99 and stored.get("eligibility") != "balance >= 5"
    again = await client.patch("/v1/offers/sms_pack", json={"eligibility": "balance >= 5"},
                               headers={"If-Match": second.headers["ETag"]})
    assert again.status == 200 and (await again.json())["offer"]["value"] == 99   # both edits kept
    for method, body in (("put", {"name": "SMS"}), ("delete", None)):
        stale = await getattr(client, method)("/v1/offers/sms_pack", json=body, headers={"If-Match": tag})
        assert stale.status == 412, method
    assert (await client.get("/v1/offers/sms_pack")).status == 200   # not deleted
    assert (await client.delete("/v1/offers/nope", headers={"If-Match": "*"})).status == 404   # as without it
    gone = await client.put("/v1/offers/nope", json={"name": "N"}, headers={"If-Match": "*"})
    assert gone.status == 412 and "does not exist" in (await gone.json())["error"]["message"]   # * asks it exists
    weak = await client.patch("/v1/offers/sms_pack", json={"value": 1}, headers={"If-Match": "W/" + again.headers["ETag"]})
    assert weak.status == 412   # a weak tag never matches a strong comparison (RFC 9110)
    assert (await client.patch("/v1/offers/sms_pack", json={"value": 7}, headers={"If-Match": "*"})).status == 200
    assert (await client.patch("/v1/offers/sms_pack", json={"value": 8})).status == 200


async def test_a_malformed_if_match_is_a_400_and_a_bad_patch_is_a_400_before_the_version(make_client):
    client = await make_client(catalog=EXAMPLE)
    for header in ("", "abc", '"unclosed'):
        response = await client.patch("/v1/offers/sms_pack", json={"value": 1}, headers={"If-Match": header})
        assert response.status == 400 and (await response.json())["error"]["field"] == "If-Match", header
    stale = await client.patch("/v1/offers/sms_pack", json={"colour": "red"}, headers={"If-Match": '"0"'})
    assert stale.status == 400 and (await stale.json())["error"]["field"] == "colour"
