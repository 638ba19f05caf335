"""Rules read against the feature schema before they ship (issue 23, problem 1): a typo in a
feature's name, or a comparison with a value of the wrong kind, would make the offer
ineligible for everyone at run time; it is refused at save (API, so the editor too) and at
catalog load, naming the feature and the closest declared one."""

from __future__ import annotations

import pytest

from bandit.runtime import StartupError
from policies.rules import parse_rule
from policies.rules.check import rule_problem
from tests.test_ui import EXAMPLES, example

TYPES = {"tariff": "categorical", "balance": "numeric", "tenure_months": "numeric", "reason": "categorical",
         "services": "set", "usage": "numeric"}


@pytest.mark.parametrize("rule, problem", [
    ("balanse >= 0", "unknown feature 'balanse' (did you mean 'balance'?)"),
    ("tarif in [\"smart\"]", "unknown feature 'tarif' (did you mean 'tariff'?)"),
    ("tariff > 3", "'tariff' is categorical (text): comparing it with 3 is false for every subscriber"),
    ("tariff in [1, 2]", "'tariff' is categorical (text): comparing it with [1, 2]"),
    ("balance == \"high\"", "'balance' is numeric: comparing it with \"high\" is false for every subscriber"),
    ("services > 3", "'services' is a set"),
    ("contains(emial, \"@x.ru\")", "unknown feature 'emial'"),
])
def test_a_rule_that_cannot_work_is_named_with_its_feature(rule, problem):
    found = rule_problem(parse_rule(rule), TYPES)
    assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize("rule", [
    "tariff in [\"super\", \"smart\"] and not has_service(\"home_cities\")",
    "balance >= 0 and tariff != \"kids\"", "channel != \"ussd\"", "\"sms_pack\" in services",
    "usage.long_distance_minutes > 100", "tenure_months >= 3 or reason == \"roaming\"", "tariff == null",
])
def test_rules_on_declared_features_pass(rule):
    assert rule_problem(parse_rule(rule), TYPES) is None


def test_a_schema_that_declares_nothing_checks_nothing():
    assert rule_problem(parse_rule("anything > 3"), {}) is None


async def test_the_api_refuses_a_rule_on_an_undeclared_feature_and_keeps_the_catalog(make_client):
    client = await make_client(**example())
    before = await (await client.get("/v1/offers/sms_pack")).json()
    for method, path, body in (("patch", "/v1/offers/sms_pack", {"eligibility": "balanse >= 0"}),
                               ("post", "/v1/offers", {"id": "x", "name": "X", "eligibility": "tariff > 3"}),
                               ("put", "/v1/offers/x", {"name": "X", "eligibility": "arpu == \"high\""})):
        response = await getattr(client, method)(path, json=body)
        error = (await response.json())["error"]
        assert response.status == 400 and error["field"] == "eligibility", error
    assert "did you mean 'balance'" in error["message"] or "numeric" in error["message"]
    assert await (await client.get("/v1/offers/sms_pack")).json() == before
    assert (await client.get("/v1/offers/x")).status == 404
    ok = await client.patch("/v1/offers/sms_pack", json={"eligibility": "balance >= 10"})
    assert ok.status == 200


async def test_a_catalog_file_with_such_a_rule_stops_the_start_with_its_line(make_client, tmp_path):
    text = (EXAMPLES / "catalog.yaml").read_text(encoding="utf-8").replace("balance >= 0 and tariff != \"kids\"",
                                                                         "balanse >= 0 and tariff != \"kids\"")
    bad = tmp_path / "catalog.yaml"
    bad.write_text(text, encoding="utf-8")
    rows = text.splitlines()
    typo = next(n for n, row in enumerate(rows) if "balanse" in row)
    line = max(n for n in range(typo) if rows[n].strip().startswith("- id:")) + 1   # the offer's line
    with pytest.raises(StartupError, match=rf"catalog.yaml:{line}: offer '\w+': eligibility: unknown feature "
                                           r"'balanse' \(did you mean 'balance'\?\)"):
        await make_client(**example(catalog=bad))
