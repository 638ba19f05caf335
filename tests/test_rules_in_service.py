"""Random eligibility rules never crash the service: a rule either is refused at load
with a clear error, or screens every contact without raising."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.eligibility import screen
from policies.offers import OfferError, compile_offer
from tests.test_rules import environments, expressions

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), st.lists(environments, min_size=1, max_size=3))
def test_valid_random_rules_compile_into_offers_and_screen_any_contact(rule, envs):
    offer = compile_offer({"id": "x", "name": "X", "eligibility": rule})
    for env in envs:
        eligible, excluded = screen([offer], env, "web", NOW)
        assert len(eligible) + len(excluded) == 1
        assert all(isinstance(e.detail, str) and e.reason == "rule" for e in excluded)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab "\'()[],.=<>!-01notandorinhas_service') + ["\u00a0", "ё"]),
               max_size=40))
def test_random_rule_text_is_refused_only_with_an_offer_error(text):
    try:
        compile_offer({"id": "x", "name": "X", "eligibility": text})
    except OfferError as exc:
        assert exc.field == "eligibility" and exc.message


async def test_random_rules_over_http_never_give_a_500(make_client):
    client = await make_client()
    rng = random.Random(17)
    tokens = ["tariff", "balance", "in", "not", "and", "or", "==", "!=", ">=", "<", "(", ")", "[", "]", ",",
              '"smart"', "'x'", "0", "-1.5", "null", "true", "has_service(", "len(", "usage.minutes", "ё"]
    accepted = 0
    for i in range(150):
        rule = " ".join(rng.choice(tokens) for _ in range(rng.randrange(1, 9)))
        response = await client.put(f"/v1/offers/r{i % 5}", json={"name": "R", "eligibility": rule})
        assert response.status in (200, 201, 400), await response.text()
        if response.status == 400:
            assert (await response.json())["error"]["field"] == "eligibility"
        else:
            accepted += 1
        context = {"tariff": rng.choice(["smart", "basic", 5, None]), "balance": rng.choice([-3, 0, 12.5, "x"])}
        decision = await client.post("/v1/decide", json={"channel": "web", "context": context, "explain": True})
        assert decision.status == 200, await decision.text()
    assert accepted > 5
