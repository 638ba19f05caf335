"""Feature encoding: escaping is a bijection, never breaks VW's parser, and the text
form the service learns from equals the JSON form the decision log stores."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from vowpalwabbit import pyvw

from policies.vwtext import (action_line, adf_example, encode_features, encode_offer, escape, shared_line)

SEPARATORS = set(" \t\n\r|:")


@given(st.text())
def test_escape_removes_every_separator(token):
    escaped = escape(token)
    assert not SEPARATORS & set(escaped)
    assert not escaped.startswith("_")
    assert "=" not in escaped


@given(st.text(), st.text())
def test_escape_is_injective(a, b):
    if a != b:
        assert escape(a) != escape(b)


def test_encoding_by_type_is_deterministic():
    features = {"tariff": "smart", "arpu": 350, "ratio": 0.25, "roaming": True, "prepaid": False,
                "services": ["sms_pack", "mail"], "missing": None}
    encoded = encode_features(features)
    assert encoded == {"tariff=smart": 1, "arpu": 350, "ratio": 0.25, "roaming=true": 1, "prepaid=false": 1,
                       "services=sms_pack": 1, "services=mail": 1}
    assert encode_features(dict(reversed(list(features.items())))).keys() == encoded.keys()
    assert shared_line({"Context": encoded}) == (
        "shared |Context tariff=smart arpu:350 ratio:0.25 roaming=true prepaid=false services=sms_pack services=mail")
    assert action_line(encode_offer("home cities", {"price": 3.5})) == "|Offer id=home%20cities price:3.5"


def test_label_goes_on_the_chosen_action_only():
    lines = adf_example("shared |Context a=1", ["|Offer id=x", "|Offer id=y"], (1, -1.0, 0.25))
    assert lines == ["shared |Context a=1", "|Offer id=x", "0:-1.0:0.25 |Offer id=y"]


unicode_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
feature_values = st.one_of(unicode_text, st.floats(-1e9, 1e9, width=32).filter(lambda x: x == 0 or abs(x) > 1e-9),
                           st.booleans(), st.none(), st.lists(unicode_text, max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(unicode_text, feature_values, max_size=6), st.dictionaries(unicode_text, feature_values,
                                                                                   max_size=4))
def test_vw_parses_any_unicode_features_as_exactly_the_encoded_features(context, offer):
    """VW must see one feature per encoded token: nothing split, merged or dropped."""
    vw = _workspace("--cb_explore_adf --quiet --noconstant --audit")
    encoded = encode_features(context)
    lines = [shared_line({"Context": encoded}), action_line(encode_offer("o1", offer))]
    examples = vw.parse(lines)
    try:
        shared_ex = examples[0]
        counted = sum(shared_ex.num_features_in(i) for i in range(shared_ex.num_namespaces()))
        assert counted == sum(1 for value in encoded.values() if value != 0)   # VW drops zeros
        assert len(vw.predict(lines)) == 1
    finally:
        vw.finish_example(examples)


_workspaces: dict[str, pyvw.Workspace] = {}


def _workspace(args: str) -> pyvw.Workspace:
    if args not in _workspaces:
        _workspaces[args] = pyvw.Workspace(args)
    return _workspaces[args]


def test_text_and_dsjson_forms_train_identical_models():
    """What the service learns (text) equals what `vw --dsjson` learns from the log: the same
    features and hashes; only float parsing of labels differs, in the last bits."""
    args = "--cb_explore_adf --epsilon 0.1 --interactions CO --quiet"
    text_vw, json_vw = pyvw.Workspace(args), pyvw.Workspace(args + " --dsjson")
    rng = random.Random(3)
    for i in range(300):
        context = {"reason": f"r {rng.randrange(3)}|x", "arpu": rng.random() * 100, "tags": ["a:b", "ü"]}
        offers = [encode_offer(f"o{j}", {"price": j + 0.5, "kind": "x y"}) for j in range(3)]
        chosen, cost = rng.randrange(3), -float(rng.random() < 0.5)
        shared = {"Context": encode_features(context)}
        text_vw.learn(adf_example(shared_line(shared), [action_line(o) for o in offers], (chosen, cost, 1 / 3)))
        line = {"_label_cost": cost, "_label_probability": 1 / 3, "_label_Action": chosen + 1,
                "_labelIndex": chosen, "EventId": str(i), "a": [1, 2, 3], "p": [1 / 3] * 3,
                "c": {**shared, "_multi": [{"Offer": o} for o in offers]}}
        examples = json_vw.parse(json.dumps(line))
        json_vw.learn(examples)
        json_vw.finish_example(examples)
    weights = range(text_vw.num_weights())
    nonzero = [i for i in weights if text_vw.get_weight(i) != 0.0]
    assert len(nonzero) > 20
    assert max(abs(text_vw.get_weight(i) - json_vw.get_weight(i)) for i in weights) < 1e-5
    assert {i for i in weights if json_vw.get_weight(i) != 0.0} == set(nonzero)
