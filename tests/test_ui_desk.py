"""The agent desktop's endpoints without a browser: a real logged, explained decision
remembered in the caller's contacts (and the raw number stored nowhere), an answer
refused for another caller's event, errors that name their field, numbers read as
E.164, and the call reasons the page lists. Real service, real Redis."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
import yaml

from tests.test_ui import PROFILE, example


async def test_desktop_decision_is_logged_explained_and_remembered(make_client, redis_url, key_prefix):
    client = await make_client(**example())
    number = "+79005550123"   # E.164: the desktop reads what the agent types in the configured region (RU)
    assert (await client.put(f"/v1/subscribers/{number}", json=PROFILE)).status == 201
    unknown = await (await client.get("/ui/api/caller/79000000000")).json()
    assert unknown == {"subscriber_id": "+79000000000", "known": False, "profile": None, "service_names": {},
                       "contacts": []}

    response = await client.post("/ui/api/agent/decide", json={"subscriber_id": "8 900 555-01-23",
                                                               "reason": "long_distance",
                                                               "reason_text": "звонила подруге в другой город"})
    assert response.status == 200
    body = await response.json()
    assert len(body["offers"]) == 3 and body["offers"][0]["served"] and body["policy"] in ("model", "control")
    first = body["offers"][0]
    assert first["name"] and first["description"] and first["value"] > 0 and 0 < first["probability"] <= 1
    assert first["why"] and all(isinstance(line, str) for line in first["why"])
    assert body["excluded_count"] == len(body["excluded"]) >= 1   # sms_pack is owned
    assert {"offer_id": "sms_pack", "reason": "owned"}.items() <= body["excluded"][0].items()
    assert body["eligible"] == 9 - body["excluded_count"]
    state = await (await client.get(f"/v1/events/{body['event_id']}")).json()
    assert state["state"] == "pending"   # a real logged decision, waiting for its reward

    assert [o["slot"] for o in body["offers"]] == [1, 2, 3] and all(o["served"] for o in body["offers"])
    for offer in body["offers"]:   # the agent records each pitched offer's answer
        await client.post("/v1/reward", json={"event_id": body["event_id"], "offer_id": offer["offer_id"],
                                              "outcome": "accept" if offer["slot"] == 1 else "decline"})
    caller = await (await client.get("/ui/api/caller/79005550123")).json()
    assert caller["known"] and caller["profile"]["tariff"] == "smart"
    assert first["offer_id"] in caller["profile"]["services"]   # accepted: owned from now on
    [contact] = caller["contacts"]
    assert contact["event_id"] == body["event_id"] and contact["reason"] == "long_distance"
    assert contact["offer_id"] == first["offer_id"] and contact["state"] == "joined" and contact["reward"] > 0

    raw = aioredis.Redis.from_url(redis_url)   # the raw number is stored nowhere
    try:
        async for name in raw.scan_iter(match=f"{key_prefix}:*"):
            assert b"9005550123" not in name
            if (await raw.type(name)) == b"list":
                assert all(b"9005550123" not in item for item in await raw.lrange(name, 0, -1))
    finally:
        await raw.aclose()


async def test_a_desktop_answer_is_refused_for_another_caller(make_client):
    """The desktop's reward carries the caller's number: an event decided for someone else
    is a 409 and nothing is recorded; the caller's own answer goes through /v1/reward."""
    client = await make_client(**example())
    decision = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": "79005550123",
                                                                      "reason": "roaming"})).json()
    offer = decision["offers"][0]["offer_id"]
    answer = {"event_id": decision["event_id"], "offer_id": offer, "outcome": "accept"}
    refused = await client.post("/ui/api/agent/reward", json={**answer, "subscriber_id": "79005550999"})
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "other_subscriber" and "another caller" in error["message"]
    state = await (await client.get(f"/v1/events/{decision['event_id']}")).json()
    assert state["rewards"] == 0
    taken = await client.post("/ui/api/agent/reward", json={**answer, "subscriber_id": "79005550123"})
    assert taken.status == 202 and (await taken.json())["status"] == "stored"
    for slot in decision["offers"][1:]:   # every slot answered: joined; the event's hash no longer has the record
        last = await client.post("/ui/api/agent/reward", json={**answer, "offer_id": slot["offer_id"],
                                                               "outcome": "decline", "subscriber_id": "79005550123"})
    assert (await last.json())["status"] == "joined"
    again = await client.post("/ui/api/agent/reward", json={**answer, "subscriber_id": "79005550999"})
    assert again.status == 409   # still refused once settled: from the caller's recent contacts
    duplicate = await client.post("/ui/api/agent/reward", json={**answer, "subscriber_id": "79005550123"})
    assert duplicate.status == 200 and (await duplicate.json())["duplicate"]
    unknown = await client.post("/ui/api/agent/reward", json={**answer, "event_id": "never-decided",
                                                              "subscriber_id": "79005550123"})
    assert unknown.status == 404


@pytest.mark.parametrize("body, field", [
    ({"subscriber_id": "79001234567"}, "reason"),
    ({"subscriber_id": "79001234567", "reason": "  ", "reason_text": ""}, "reason"),
    ({"subscriber_id": "  ", "reason": "roaming"}, "subscriber_id"),
    ({"reason": "roaming"}, "subscriber_id"),
    ({"subscriber_id": "79001234567", "reason": "roaming", "k": 5}, "k"),
    ({"subscriber_id": "79001234567", "reason": 5}, "reason"),
    ({"subscriber_id": "abc", "reason": "roaming"}, "subscriber_id"),
    ({"subscriber_id": "+7 987", "reason": "roaming"}, "subscriber_id"),
])
async def test_desktop_errors_name_the_field(make_client, body, field):
    client = await make_client(**example())
    response = await client.post("/ui/api/agent/decide", json=body)
    assert response.status == 400 and (await response.json())["error"]["field"] == field


async def test_desktop_numbers_are_one_caller_in_e164(make_client):
    client = await make_client(**example())
    for typed in ("8 987 739-80-22", "79877398022", "+7 987 739 80 22"):
        body = await (await client.get(f"/ui/api/caller/{typed}")).json()
        assert body["subscriber_id"] == "+79877398022"
        decision = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": typed,
                                                                          "reason": "roaming"})).json()
        assert decision["subscriber_id"] == "+79877398022"
    contacts = (await (await client.get("/ui/api/caller/+79877398022")).json())["contacts"]
    assert len(contacts) == 3   # one caller, however the number was typed
    bad = await client.post("/ui/api/agent/decide", json={"subscriber_id": "abc", "reason": "roaming"})
    error = (await bad.json())["error"]
    assert bad.status == 400 and error["field"] == "subscriber_id" and "not a phone number" in error["message"]
    assert (await (await client.get("/v1/stats")).json())["counters"]["decisions"] == 3   # "abc" made none
    short = await (await client.get("/ui/api/caller/8987")).json()
    assert "too short" in short["error"]["message"]


async def test_the_call_reasons_and_offer_texts_are_the_catalogs_per_language(make_client):
    """The desktop lists the catalog file's reasons (in its order, labelled in the page's
    language); a reason it does not list is refused by field; offer names, pitches and
    terms come from the catalog's locales, the API's own offer fields stay as written."""
    client = await make_client(**example())
    catalog = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "telecom" / "catalog.yaml").read_text())
    en = (await (await client.get("/ui/api/agent/reasons")).json())["reasons"]
    ru = (await (await client.get("/ui/api/agent/reasons", headers={"Accept-Language": "ru"})).json())["reasons"]
    assert [r["code"] for r in en] == list(catalog["reasons"]) == [r["code"] for r in ru]
    assert {r["code"]: r["label"] for r in en} == {code: labels["en"] for code, labels in catalog["reasons"].items()}
    assert {r["code"]: r["label"] for r in ru} == {code: labels["ru"] for code, labels in catalog["reasons"].items()}

    refused = await client.post("/ui/api/agent/decide", json={"subscriber_id": "79005550123", "reason": "weather"})
    error = (await refused.json())["error"]
    assert refused.status == 400 and error["field"] == "reason" and "not a call reason" in error["message"]

    assert (await client.put("/v1/subscribers/+79005550123", json=PROFILE)).status == 201   # E.164, as the desk keys it
    body = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": "79005550123", "reason": "roaming"},
                                    headers={"Accept-Language": "ru"})).json()
    specs = {o["id"]: o for o in catalog["offers"]}
    for card in body["offers"]:
        texts = specs[card["offer_id"]]["locales"]["ru"]
        assert (card["name"], card["description"], card["terms"]) == (texts["name"], texts["description"], texts["terms"])
    assert {e["offer_id"]: e["name"] for e in body["excluded"]}["sms_pack"] == specs["sms_pack"]["locales"]["ru"]["name"]
    card = await (await client.get("/ui/api/caller/79005550123", headers={"Accept-Language": "ru"})).json()
    assert card["service_names"] == {"sms_pack": "Пакет 300 SMS"}
    assert card["contacts"][0]["offer_name"] == specs[body["offers"][0]["offer_id"]]["locales"]["ru"]["name"]
    english = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": "79005550123",
                                                                     "reason": "roaming"})).json()
    assert all(card["name"] == specs[card["offer_id"]]["name"] for card in english["offers"])
    offers = {o["id"]: o for o in (await (await client.get("/v1/offers")).json())["offers"]}
    assert offers["sms_pack"]["name"] == "SMS Pack 300"   # the API's machine field: the offer's own name


def test_a_less_likely_draw_names_the_offer_the_model_prefers():
    """Slot 1 drew a 0.1 offer while the model gives 0.7 to another, shown in slot 2: the
    card says which one the model prefers and why this one is shown at all."""
    from bandit.decide.record import DecisionRecord, SlotChoice
    from bandit.ui.explain import offer_card, preferences

    record = DecisionRecord(ts=0, channel="contact_center", offers=["a", "b", "c"], actions=[], shared={},
                            model="1.0", slots=[SlotChoice(1, [0.7, 0.1, 0.2]), SlotChoice(0, [1.0, 0.0, 0.0])])
    preferred = preferences(record, {})
    assert set(preferred) == {1} and preferred[1].name == "a" and preferred[1].slot == 2
    card = offer_card(1, {"slot": 1, "offer_id": "b", "probability": 0.1}, "model", None, None, 3, "uniform",
                      preferred[1])
    assert card["why"][0] == ("The model prefers a for this caller (p = 0.70, offered in slot 2); b is shown less "
                              "often (p = 0.10), to keep learning what callers like this one take")
    top = offer_card(2, {"slot": 2, "offer_id": "a", "probability": 1.0}, "model", None, None, 3, "uniform")
    assert top["why"][0].startswith("Slot 2: the model's top choice among the 2 offers")


async def test_every_less_likely_card_of_a_real_decision_says_what_the_model_prefers(make_client):
    """Over real decisions of a cold model: a card whose probability is below another
    card's in the same slot names an offer of the catalog it prefers; none names itself."""
    client = await make_client(**example())
    names = {o["id"]: o["name"] for o in (await (await client.get("/v1/offers")).json())["offers"]}
    said = 0
    for i in range(12):
        body = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": f"7900555{i:04d}",
                                                                      "reason": "roaming"})).json()
        for card in body["offers"]:
            line = card["why"][0]
            if line.startswith("The model prefers "):
                said += 1
                favourite = line.removeprefix("The model prefers ").split(" for this caller")[0]
                assert favourite in names.values() and favourite != card["name"], line
                assert "shown less often" in line and body["policy"] == "model"
    assert said > 0   # squarecb on a cold model spreads its draws


def test_a_close_call_is_not_called_a_preference():
    from bandit.ui.explain import Preferred, offer_card

    card = offer_card(2, {"slot": 2, "offer_id": "b", "probability": 0.34}, "model", None, None, 5, "uniform",
                      Preferred("Ring-back Tones", 0.38, None))
    assert card["why"][0] == ("A close call: the model rates Ring-back Tones about as high for this caller "
                              "(p = 0.38 against 0.34 for b); either could be shown")


def test_every_russian_phrase_fills_in_the_values_of_its_english_one():
    from bandit.ui.words import RU

    fields = re.compile(r"\{(\w+)\}")
    assert {en: sorted(fields.findall(en)) for en in RU} == {en: sorted(fields.findall(ru)) for en, ru in RU.items()}


async def test_the_desktop_answers_in_the_pages_language(make_client):
    client = await make_client(**example())
    ru = {"Accept-Language": "ru"}
    bad = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": "abc", "reason": "roaming"},
                                   headers=ru)).json()
    assert bad["error"]["message"].startswith("«abc» — не номер телефона")
    body = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": "79005550123",
                                                                  "reason": "roaming"}, headers=ru)).json()
    assert all(re.search(r"[а-яА-Я]", card["why"][0]) for card in body["offers"]), body["offers"]
    contacts = (await (await client.get("/ui/api/caller/79005550123", headers=ru)).json())["contacts"]
    assert contacts[0]["reason_label"] == "Поездка за границу / роуминг"
    english = await (await client.get("/ui/api/caller/79005550123", headers={"Accept-Language": "de-DE"})).json()
    assert english["contacts"][0]["reason_label"] == "Going abroad / roaming"


def _taught_learner(algorithm: str, slots: bool = False):
    """A real VW learner taught 8,000 uniformly drawn pitches of three offers whose chance of
    a yes is known (0.3, 0.9, 0.075 for context x; a third of that for y)."""
    import random

    from policies.exploration import Exploration
    from policies.learner import Learner, LearnerSettings

    learner = Learner(LearnerSettings(exploration=Exploration(algorithm), interactions=("CO",), slots=slots))
    actions = ["|Offer id=a", "|Offer id=b", "|Offer id=c"]
    draws = random.Random(7)
    for _ in range(8000):
        context = draws.choice("xy")
        shown = draws.randrange(3)
        chance = (0.3, 0.9, 0.075)[shown] * (1.0 if context == "x" else 1 / 3)
        learner.learn_one(f"shared |Context c={context}", actions, shown, 1 / 3,
                          1.0 if draws.random() < chance else 0.0)
    return learner, actions


@pytest.mark.parametrize("slots", [False, True], ids=["one-slot", "ccb"])
def test_the_model_expects_each_offers_chance_of_a_yes(slots):
    """The reward estimate read from VW's scores behind the exploration PMF is the chance of a
    yes learned from the answers (within 0.1 of the truth here, in the same order), for CB and CCB models alike."""
    learner, actions = _taught_learner("squarecb", slots)
    try:
        for context, scale in (("x", 1.0), ("y", 1 / 3)):
            expected = learner.expected_rewards(f"shared |Context c={context}", actions)
            truth = [0.3 * scale, 0.9 * scale, 0.075 * scale]
            assert expected is not None and all(abs(e - t) < 0.1 for e, t in zip(expected, truth)), (expected, truth)
            assert expected[1] > expected[0] > expected[2]
    finally:
        learner.close()
    cover, actions = _taught_learner("cover")
    try:   # --cover scores the lines with its cover policies: no reward estimate to show
        assert cover.expected_rewards("shared |Context c=x", actions) is None
    finally:
        cover.close()


def test_acceptance_is_read_through_the_outcomes_and_the_value_and_blended_with_the_prior():
    from bandit.config import load_settings
    from bandit.decide.record import DecisionRecord, SlotChoice
    from bandit.ui.explain import acceptance_estimates
    from policies.offers import compile_offer

    learner, _ = _taught_learner("squarecb")
    learner.learned = 300   # as if loaded from a checkpoint of 300 answers
    record = DecisionRecord(ts=0, channel="contact_center", offers=["a", "b", "c"], shared={"Context": {"c=x": 1}},
                            actions=[msgspec.Raw(b'{"id=a":1}'), msgspec.Raw(b'{"id=b":1}'), msgspec.Raw(b'{"id=c":1}')],
                            values=[10.0, 20.0, 0.0], model="1.300", slots=[SlotChoice(0, [0.4, 0.3, 0.3])])
    offers = {o: compile_offer({"id": o, "name": o, "value": v, "prior": 0.2}) for o, v in (("a", 10), ("b", 20), ("c", 0))}
    try:
        model = dict(zip("abc", learner.expected_rewards("shared |Context c=x", ["|Offer id=a", "|Offer id=b",
                                                                                 "|Offer id=c"])))
        plain = acceptance_estimates(record, learner, load_settings(env={"NEXTBEST_VALUE_PRIOR_EXAMPLES": "0"}), offers)
        assert plain == pytest.approx({o: min(1.0, max(0.0, r)) for o, r in model.items()})
        # accept → 2, decline → 1: a reward estimate of 1.5 is an even chance
        mapped = acceptance_estimates(record, learner, load_settings(
            env={"NEXTBEST_VALUE_PRIOR_EXAMPLES": "0", "NEXTBEST_OUTCOMES": "accept=2,decline=1"}), offers)
        assert mapped == {o: 0.0 for o in "abc"}   # this model's estimates (≤ 1) all read as a sure no
        # a young model (100 prior examples against 300 learned): a quarter the prior's
        young = acceptance_estimates(record, learner, load_settings(env={"NEXTBEST_VALUE_PRIOR_EXAMPLES": "100"}),
                                     offers)
        assert young == pytest.approx({o: 0.25 * 0.2 + 0.75 * plain[o] for o in "abc"})
        # under the value objective an accept is worth the offer's value: per unit of it (none for a 0 value)
        valued = acceptance_estimates(record, learner, load_settings(
            env={"NEXTBEST_VALUE_PRIOR_EXAMPLES": "0", "NEXTBEST_REWARD_OBJECTIVE": "value"}), offers)
        assert valued == pytest.approx({"a": min(1.0, max(0.0, model["a"] / 10)), "b": min(1.0, max(0.0, model["b"] / 20))})
    finally:
        learner.close()


async def test_a_cold_models_cards_carry_the_catalogs_estimate(make_client):
    """Nothing learned yet: each card's acceptance is the offer's catalog prior, its expected
    value prior × value, and the decision says the model learned from 0 answers."""
    client = await make_client(**example())
    offers = {o["id"]: o for o in (await (await client.get("/v1/offers")).json())["offers"]}
    body = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": "79005550123",
                                                                  "reason": "roaming"})).json()
    assert body["learned"] == 0 and len(body["offers"]) == 3
    for card in body["offers"]:
        prior = offers[card["offer_id"]].get("prior", 0.1)
        assert card["acceptance"] == pytest.approx(prior)
        assert card["expected_value"] == pytest.approx(prior * card["value"])


async def test_a_decline_says_why_with_the_outcome_of_that_reason(make_client):
    """A Decline may carry one of the catalog's decline reasons: posted as the outcome of that
    name when one is configured (its own reward), else as `decline`; the caller's contact keeps
    what was said to each offer with the reason's label; anything else is a 400 on the field."""
    outcomes = {"accept": 1.0, "decline": 0.0, "too_expensive": -0.5}
    client = await make_client(**example(outcomes=outcomes))
    listed = await (await client.get("/ui/api/agent/reasons", headers={"Accept-Language": "ru"})).json()
    assert {"code": "too_expensive", "label": "Дорого"} in listed["decline_reasons"]
    decision = await (await client.post("/ui/api/agent/decide", json={"subscriber_id": "79005550123",
                                                                      "reason": "roaming"})).json()
    first, second, third = (card["offer_id"] for card in decision["offers"])
    answer = {"event_id": decision["event_id"], "subscriber_id": "8 900 555-01-23", "outcome": "decline"}
    for body, field in (({**answer, "offer_id": first, "decline_reason": "weather"}, "decline_reason"),
                        ({**answer, "offer_id": first, "outcome": "accept", "decline_reason": "too_expensive"},
                         "decline_reason")):
        refused = await client.post("/ui/api/agent/reward", json=body)
        assert refused.status == 400 and (await refused.json())["error"]["field"] == field
    assert (await (await client.get(f"/v1/events/{decision['event_id']}")).json())["rewards"] == 0   # nothing counted

    posts = [({**answer, "offer_id": first, "decline_reason": "too_expensive"}, -0.5 * decision["offers"][0]["value"]),
             ({**answer, "offer_id": second, "decline_reason": "has_similar"}, 0.0),   # no outcome of its own
             ({**answer, "offer_id": third, "outcome": "accept"}, 1.0 * decision["offers"][2]["value"])]
    for body, _ in posts:
        assert (await client.post("/ui/api/agent/reward", json=body)).status in (200, 202)
    state = await (await client.get(f"/v1/events/{decision['event_id']}")).json()
    assert state["state"] == "joined"   # the example's value objective: an outcome times the offer's value
    assert [slot["reward"] for slot in state["slots"]] == [reward for _, reward in posts]
    contact = (await (await client.get("/ui/api/caller/79005550123")).json())["contacts"][0]
    assert contact["answers"][first] == {"outcome": "decline", "posted": "too_expensive", "reason": "too_expensive",
                                         "name": decision["offers"][0]["name"], "reason_label": "Too expensive"}
    assert contact["answers"][second]["posted"] == "decline" and contact["answers"][third]["outcome"] == "accept"


async def test_phone_ids_are_one_subscriber_across_the_api(make_client):
    """``subscriber_ids: phone``: the profile API and decide read a number in any spelling as
    its E.164 form (one profile, one caller); an id that is no number is a 400 on the field
    and makes no decision."""
    client = await make_client(**example(subscriber_ids="phone"))
    put = await client.put("/v1/subscribers/8 900 555-01-23", json=PROFILE)
    assert put.status == 201 and (await put.json())["subscriber_id"] == "+79005550123"
    got = await client.get("/v1/subscribers/%2B7 900 555 01 23")
    assert got.status == 200 and (await got.json())["profile"]["tariff"] == "smart"
    decided = await client.post("/v1/decide", json={"channel": "web", "subscriber_id": "79005550123",
                                                    "context": {"reason": "roaming"}, "explain": True})
    assert decided.status == 200 and (await decided.json())["subscriber_known"] is True
    before = (await (await client.get("/v1/stats")).json())["counters"]["decisions"]
    for bad in ("abc", "+7 987"):
        refused = await client.post("/v1/decide", json={"channel": "web", "subscriber_id": bad})
        error = (await refused.json())["error"]
        assert refused.status == 400 and error["field"] == "subscriber_id" and "number" in error["message"], error
    assert (await (await client.get("/v1/stats")).json())["counters"]["decisions"] == before
    assert (await client.put("/v1/subscribers/abc", json=PROFILE)).status == 400
