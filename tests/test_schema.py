"""The feature schema: strict parsing with paths, each feature type, strict mode, the
default schema equals the encoding before schemas, escaping that VW parses feature for
feature, determinism, the Russian/English text analyzer, and a learner that picks the
right offer from free text alone, on phrasings it never trained on."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from vowpalwabbit import pyvw

from policies.exploration import Exploration, event_uniform, sample_index
from policies.learner import Learner, LearnerSettings
from policies.schema import FeatureSchema, FeatureSpec, SchemaError, parse_schema, tokenize
from policies.vwtext import FeatureError, action_line, encode_features, encode_offer, escape, shared_line

TELECOM = yaml.safe_load("""
features:
  strict: false
  subscriber:
    tariff: {type: categorical}
    arpu: {type: numeric, transform: log}
    balance: {type: numeric, transform: bucket, buckets: [0, 50, 200, 1000]}
    services: {type: set}
    tenure_months: {type: numeric}
  context:
    reason: {type: categorical}
    reason_text: {type: text, namespace: Text}
    query: {type: text, namespace: Text}
    page: {type: categorical}
""")["features"]

SEPARATORS = set(" \t\n\r|:")


def schema_of(**sections: Any) -> FeatureSchema:
    return parse_schema(sections)


def items(encoded: dict[str, dict[str, float]]) -> list[tuple[str, list[tuple[str, float]]]]:
    """The encoding with its order: dict equality alone ignores order."""
    return [(ns, list(tokens.items())) for ns, tokens in encoded.items()]


# --------------------------------------------------------------------------- parsing

def test_the_telecom_schema_parses_into_specs() -> None:
    schema = parse_schema(TELECOM)
    assert schema.strict is False
    assert list(schema.subscriber) == ["tariff", "arpu", "balance", "services", "tenure_months"]
    assert schema.subscriber["balance"] == FeatureSpec("balance", "subscriber", "numeric", "Subscriber", "bucket",
                                                       (0, 50, 200, 1000), 1.0)
    assert schema.context["reason_text"] == FeatureSpec("reason_text", "context", "text", "Text")
    assert schema.context["page"].namespace == "Context"
    assert schema.namespaces() == ["Context", "Subscriber", "Text"]
    assert parse_schema(TELECOM) == schema
    assert parse_schema({"context": {"page": "categorical"}}).context["page"].type == "categorical"   # shorthand
    assert parse_schema(None) == parse_schema({}) == FeatureSchema.default()


@pytest.mark.parametrize("raw, message", [
    ({"context": {"reason_text": {"type": "txt"}}},
     "schema.context.reason_text.type: unknown type 'txt' (expected categorical, numeric, set, text)"),
    ({"context": {"reason_text": {"namespace": "Text"}}}, "schema.context.reason_text.type: required"),
    ({"context": {"reason_text": "txt"}}, "schema.context.reason_text.type: unknown type 'txt'"),
    ({"subscribers": {}}, "schema.subscribers: unknown key 'subscribers' (expected strict, subscriber, context)"),
    ({"strict": "yes"}, "schema.strict: expected true or false, got str"),
    ({"context": []}, "schema.context: expected a mapping of feature name to feature, got list"),
    ({"context": {"page": 3}}, "schema.context.page: expected a mapping"),
    ({"context": {True: "text"}}, "schema.context.True: feature names must be non-empty strings"),
    ({"context": {"": "text"}}, "schema.context.: feature names must be non-empty strings"),
    ({"subscriber": {"arpu": {"type": "numeric", "scale": 2}}},
     "schema.subscriber.arpu.scale: unknown key 'scale' (expected type, namespace, transform, buckets, weight, log)"),
    ({"subscriber": {"arpu": {"type": "numeric", "transform": "sqrt"}}},
     "schema.subscriber.arpu.transform: unknown transform 'sqrt' (expected log, bucket)"),
    ({"subscriber": {"tariff": {"type": "categorical", "transform": "log"}}},
     "schema.subscriber.tariff.transform: only numeric features take a transform ('tariff' is categorical)"),
    ({"subscriber": {"balance": {"type": "numeric", "transform": "bucket"}}},
     "schema.subscriber.balance.buckets: required with 'transform: bucket'"),
    ({"subscriber": {"balance": {"type": "numeric", "buckets": [0, 1]}}},
     "schema.subscriber.balance.buckets: buckets need 'transform: bucket'"),
    ({"subscriber": {"balance": {"type": "numeric", "transform": "bucket", "buckets": [0, 50, 50]}}},
     "schema.subscriber.balance.buckets[2]: edges must be strictly increasing (50 after 50)"),
    ({"subscriber": {"balance": {"type": "numeric", "transform": "bucket", "buckets": [10, 5]}}},
     "schema.subscriber.balance.buckets[1]: edges must be strictly increasing (5 after 10)"),
    ({"subscriber": {"balance": {"type": "numeric", "transform": "bucket", "buckets": []}}},
     "schema.subscriber.balance.buckets: expected a non-empty list"),
    ({"subscriber": {"balance": {"type": "numeric", "transform": "bucket", "buckets": [0, "50"]}}},
     "schema.subscriber.balance.buckets[1]: expected a finite number, got '50'"),
    ({"subscriber": {"balance": {"type": "numeric", "transform": "bucket", "buckets": [0, float("inf")]}}},
     "schema.subscriber.balance.buckets[1]: expected a finite number"),
    ({"subscriber": {"arpu": {"type": "numeric", "weight": 0}}},
     "schema.subscriber.arpu.weight: expected a finite number > 0, got 0"),
    ({"subscriber": {"arpu": {"type": "numeric", "weight": True}}}, "schema.subscriber.arpu.weight: expected"),
    ({"context": {"q": {"type": "text", "namespace": ""}}}, "schema.context.q.namespace: a namespace is a name"),
    ({"context": {"q": {"type": "text", "namespace": "Free text"}}}, "schema.context.q.namespace: a namespace"),
    ({"context": {"q": {"type": "text", "namespace": "Text|x"}}}, "schema.context.q.namespace: a namespace"),
    ({"context": {"q": {"type": "text", "namespace": "Text:2"}}}, "schema.context.q.namespace: a namespace"),
    ({"context": {"q": {"type": "text", "namespace": 7}}}, "schema.context.q.namespace: a namespace"),
    ({"context": {"q": {"type": "text", "namespace": "_Text"}}}, "schema.context.q.namespace: a namespace"),
    ({"context": {"q": {"type": "text", "namespace": "Opinions"}}},
     "schema.context.q.namespace: 'Opinions' starts with 'O', the letter of the offer namespace 'Offer'"),
    ({"context": {"channel": "categorical"}}, "schema.context.channel: 'channel' is reserved in namespace Context"),
    ({"context": {"channel": {"type": "categorical", "namespace": "Web"}}},
     "schema.context.channel: 'channel' is not a context field"),
    ({"subscriber": {"region": {"type": "categorical", "namespace": "Geo"}},
      "context": {"region": {"type": "categorical", "namespace": "Geo"}}},
     "schema.context.region: schema.subscriber.region already puts a feature named 'region' in namespace Geo"),
])
def test_bad_schemas_are_refused_with_the_path(raw: dict, message: str) -> None:
    with pytest.raises(SchemaError) as err:
        parse_schema(raw)
    assert str(err.value).startswith(message)


def test_the_root_of_the_path_is_the_callers() -> None:
    with pytest.raises(SchemaError, match=r"^config.yaml:12: features.context.q.type: unknown type"):
        parse_schema({"context": {"q": {"type": "txt"}}}, where="config.yaml:12: features")
    with pytest.raises(SchemaError, match=r"^features: expected a mapping"):
        parse_schema(["tariff"], where="features")  # type: ignore[arg-type]


def test_a_directly_built_schema_is_checked_too() -> None:
    with pytest.raises(SchemaError, match="schema.context.q.namespace"):
        FeatureSchema(context={"q": FeatureSpec("q", "context", "text", "Te xt")})
    with pytest.raises(SchemaError, match="schema.subscriber.b.buckets"):
        FeatureSchema(subscriber={"b": FeatureSpec("b", "subscriber", "numeric", "Subscriber", "bucket")})
    with pytest.raises(SchemaError, match="the spec says context.q"):
        FeatureSchema(subscriber={"q": FeatureSpec("q", "context", "text", "Text")})


# --------------------------------------------------------------------------- types

def test_categorical_takes_strings_numbers_and_booleans() -> None:
    schema = schema_of(context={"reason": "categorical", "code": "categorical"})
    assert schema.encode(None, {"reason": "roaming", "code": 100}, "ussd")["Context"] == {
        "reason=roaming": 1, "code=100": 1, "channel=ussd": 1}
    assert schema.encode(None, {"code": 100.0}, "ussd")["Context"]["code=100"] == 1   # 100 and 100.0: one category
    assert schema.encode(None, {"code": 2.5}, "ussd")["Context"]["code=2.5"] == 1
    assert schema.encode(None, {"code": True}, "ussd")["Context"]["code=true"] == 1
    for bad in (["a"], {"a": 1}, float("nan")):
        with pytest.raises(FeatureError) as err:
            schema.encode(None, {"code": bad}, "ussd")
        assert err.value.name == "code"


def test_numeric_plain_log_and_weight() -> None:
    schema = schema_of(subscriber={"tenure_months": "numeric", "arpu": {"type": "numeric", "transform": "log"},
                                   "data_gb": {"type": "numeric", "weight": 0.5},
                                   "debt": {"type": "numeric", "transform": "log", "weight": 2}})
    sub = schema.encode({"tenure_months": 14, "arpu": 350.0, "data_gb": 3, "debt": -99}, {}, "web")["Subscriber"]
    assert sub["tenure_months"] == 14 and isinstance(sub["tenure_months"], int)
    assert sub["arpu"] == pytest.approx(5.860786223465865)   # log1p(350)
    assert sub["data_gb"] == 1.5
    assert sub["debt"] == pytest.approx(-2 * 4.605170185988092)   # sign · log1p(|x|) · weight
    sub = schema.encode({"tenure_months": "12", "arpu": " 0 ", "data_gb": "1e1"}, {}, "web")["Subscriber"]
    assert sub == {"tenure_months": 12, "arpu": 0.0, "data_gb": 5.0}   # numbers as text (bulk-loaded profiles)
    assert schema.encode({"tenure_months": None}, {}, "web") == {"Context": {"channel=web": 1}}


@pytest.mark.parametrize("value, reason", [
    ("abc", "expected a number, got the string 'abc'"), (True, "expected a number, got bool"),
    ([1], "expected a number, got list"), (float("inf"), "numeric values must be finite"),
    ("nan", "expected a number, got the string 'nan'"), (10**400, "number too large"),
    ("9" * 5000, "number too large"),
])
def test_numeric_refuses_what_is_not_a_finite_number(value: Any, reason: str) -> None:
    schema = schema_of(subscriber={"arpu": {"type": "numeric", "transform": "log"}})
    with pytest.raises(FeatureError) as err:
        schema.encode({"arpu": value}, {}, "web")
    assert (err.value.name, err.value.reason) == ("arpu", reason)


@pytest.mark.parametrize("balance, token", [
    (-0.01, "balance=..0"), (-1e9, "balance=..0"), (0, "balance=0..50"), (49.999, "balance=0..50"),
    (50, "balance=50..200"), (199, "balance=50..200"), (200, "balance=200..1000"), (999.5, "balance=200..1000"),
    (1000, "balance=1000.."), (1e12, "balance=1000.."), ("75", "balance=50..200"),
])
def test_buckets_are_half_open_ranges_named_by_their_edges(balance: Any, token: str) -> None:
    schema = parse_schema(TELECOM)
    assert schema.encode({"balance": balance}, {}, "web")["Subscriber"] == {token: 1}


def test_bucket_edges_that_are_fractions_and_negative() -> None:
    schema = schema_of(subscriber={"ratio": {"type": "numeric", "transform": "bucket", "buckets": [-1, 0.25, 2.5e6]}})
    labels = [next(iter(schema.encode({"ratio": x}, {}, "web")["Subscriber"])) for x in (-3, -1, 0.3, 3e6)]
    assert labels == ["ratio=..-1", "ratio=-1..0.25", "ratio=0.25..2500000", "ratio=2500000.."]


def test_set_takes_a_list_or_a_semicolon_string() -> None:
    schema = schema_of(subscriber={"services": "set"})
    expected = {"services=sms_pack": 1, "services=mail": 1}
    assert schema.encode({"services": ["sms_pack", "mail", "sms_pack"]}, {}, "web")["Subscriber"] == expected
    assert schema.encode({"services": "sms_pack; mail;;sms_pack"}, {}, "web")["Subscriber"] == expected
    assert schema.encode({"services": ""}, {}, "web") == {"Context": {"channel=web": 1}}
    assert schema.encode({"services": [7, "x"]}, {}, "web")["Subscriber"] == {"services=7": 1, "services=x": 1}
    for bad in (5, [["a"]], [None], {"a": 1}):
        with pytest.raises(FeatureError) as err:
            schema.encode({"services": bad}, {}, "web")
        assert err.value.name == "services"


def test_text_is_a_bag_of_stems_in_its_own_namespace() -> None:
    schema = parse_schema(TELECOM)
    context = {"reason_text": "Междугородняя связь: тарифы, тарифы!", "query": "long-distance rates"}
    encoded = schema.encode(None, context, "contact_center")
    assert encoded["Text"] == {"reason_text=междугородн": 1, "reason_text=связ": 1, "reason_text=тариф": 1,
                               "query=long": 1, "query=distanc": 1, "query=rate": 1}
    assert encoded["Context"] == {"channel=contact_center": 1}
    assert "Subscriber" not in encoded
    assert schema.encode(None, {"query": "и в на the"}, "search") == {"Context": {"channel=search": 1}}
    for bad in (42, ["roaming"], True):
        with pytest.raises(FeatureError) as err:
            schema.encode(None, {"query": bad}, "search")
        assert err.value.name == "query" and "expected text" in err.value.reason


def test_weight_scales_every_token_of_a_feature() -> None:
    schema = schema_of(context={"q": {"type": "text", "namespace": "Text", "weight": 0.5},
                                "page": {"type": "categorical", "weight": 2}})
    encoded = schema.encode(None, {"q": "roaming abroad", "page": "tariffs"}, "web")
    assert encoded == {"Context": {"page=tariffs": 2.0, "channel=web": 1}, "Text": {"q=roam": 0.5, "q=abroad": 0.5}}
    assert shared_line(encoded) == "shared |Context page=tariffs:2.0 channel=web |Text q=roam:0.5 q=abroad:0.5"


def test_features_may_move_between_namespaces() -> None:
    schema = schema_of(subscriber={"region": {"type": "categorical", "namespace": "Context"}},
                       context={"page": {"type": "categorical", "namespace": "Web"}})
    encoded = schema.encode({"region": "msk", "tariff": "smart"}, {"page": "roaming", "x": 1}, "web")
    assert items(encoded) == [("Context", [("region=msk", 1), ("x", 1), ("channel=web", 1)]),
                              ("Subscriber", [("tariff=smart", 1)]), ("Web", [("page=roaming", 1)])]
    assert schema.namespaces() == ["Context", "Subscriber", "Web"]
    # An undeclared context field would collide with the subscriber feature declared in Context.
    with pytest.raises(FeatureError) as err:
        schema.encode({"region": "msk"}, {"region": "spb"}, "web")
    assert err.value.name == "region" and "subscriber feature in namespace Context" in err.value.reason


# --------------------------------------------------------------------------- strict, default

def test_strict_schema_refuses_unknown_context_fields_by_name() -> None:
    schema = parse_schema({**TELECOM, "strict": True})
    with pytest.raises(FeatureError) as err:
        schema.encode(None, {"reason": "roaming", "refferer": "mail"}, "web")
    assert err.value.name == "refferer"
    assert err.value.reason == "unknown context feature 'refferer' (strict schema)"
    with pytest.raises(FeatureError, match="unknown context feature 'page'"):
        parse_schema({"strict": True}).encode(None, {"page": "home"}, "web")
    assert parse_schema({"strict": True}).encode({"tariff": "x"}, {}, "web") == {
        "Context": {"channel=web": 1}, "Subscriber": {"tariff=x": 1}}
    # Profiles are loaded in bulk, not typed by callers: unknown profile fields pass, strict or not.
    encoded = schema.encode({"tariff": "smart", "roaming_days": 3}, {"reason": "roaming"}, "web")
    assert encoded["Subscriber"] == {"tariff=smart": 1, "roaming_days": 3}


def test_non_strict_schema_passes_unknown_fields_as_vwtext_infers_them() -> None:
    schema = parse_schema(TELECOM)
    extra = {"ab_group": "b", "score": 0.5, "vip": True, "tags": ["a", "b"], "gone": None}
    encoded = schema.encode({"tariff": "smart", **extra}, {"page": "home", **extra}, "web")
    assert encoded["Context"] == {"page=home": 1, **encode_features(extra), "channel=web": 1}
    assert encoded["Subscriber"] == {"tariff=smart": 1, **encode_features(extra)}
    with pytest.raises(FeatureError) as err:
        schema.encode(None, {"nested": {"a": 1}}, "web")
    assert err.value.name == "nested"


def test_channel_is_always_a_context_token_and_never_a_context_field() -> None:
    for schema in (FeatureSchema.default(), parse_schema({**TELECOM, "strict": True})):
        assert schema.encode(None, {}, "USSD *100#")["Context"] == {"channel=USSD%20*100#": 1}
        with pytest.raises(FeatureError) as err:
            schema.encode(None, {"channel": "web"}, "web")
        assert err.value.name == "channel"
        with pytest.raises(FeatureError):
            schema.encode(None, {}, 5)  # type: ignore[arg-type]


profiles = st.none() | st.dictionaries(st.text(max_size=8), st.one_of(
    st.text(max_size=8), st.integers(-10**6, 10**6), st.floats(-1e6, 1e6), st.booleans(), st.none(),
    st.lists(st.text(max_size=5), max_size=3)), max_size=5)


@settings(max_examples=200, deadline=None)
@given(profiles, profiles, st.text(min_size=1, max_size=8))
def test_the_default_schema_is_exactly_the_encoding_before_schemas(profile, context, channel) -> None:
    context = {k: v for k, v in (context or {}).items() if k != "channel"}
    expected = {"Context": encode_features({**context, "channel": channel})}
    if profile and encode_features(profile):
        expected["Subscriber"] = encode_features(profile)
    got = FeatureSchema.default().encode(profile, context, channel)
    assert items(got) == items(expected)
    assert FeatureSchema.default().namespaces() == ["Context", "Subscriber"]


# --------------------------------------------------------------------------- escaping, VW

_workspace: pyvw.Workspace | None = None


def vw_counts(encoded: dict[str, dict[str, float]]) -> int:
    """How many features VW parses from the shared line (VW drops zero values)."""
    global _workspace
    if _workspace is None:
        _workspace = pyvw.Workspace("--cb_explore_adf --quiet --noconstant")
    examples = _workspace.parse([shared_line(encoded), "|Offer id=x"])
    try:
        shared = examples[0]
        return sum(shared.num_features_in(i) for i in range(shared.num_namespaces()))
    finally:
        _workspace.finish_example(examples)


NASTY = ["a|b", "a:b", "a b", "a\nb", "a=b", "_lead", "тариф", "ключ\t2", "%41", "日本", "😀", ""]


def test_special_characters_are_escaped_and_vw_sees_each_feature_once() -> None:
    schema = schema_of(subscriber={name or "empty": "categorical" for name in NASTY},
                       context={"q|x": {"type": "text", "namespace": "Text"}, "n:1": "numeric", "s =": "set"})
    profile = {name or "empty": value for name, value in zip(NASTY, reversed(NASTY))}
    context = {"q|x": "Связь|роуминг: _интернет\nlong=distance", "n:1": 2.5, "s =": ["a|b", "c:d", "_e"],
               **{name: value for name, value in zip(NASTY, NASTY)}}
    encoded = schema.encode(profile, context, "web|x:y z")
    for tokens in encoded.values():
        for token in tokens:
            assert not SEPARATORS & set(token) and not token.startswith("_")
            assert "=" not in token.partition("=")[2]
    subscriber = encoded["Subscriber"]
    assert subscriber["a%7Cb="] == 1   # "" is a category like any other
    assert subscriber["a%3Ab=😀"] == subscriber["a%0Ab=%2541"] == subscriber["a%3Db=ключ%092"] == 1
    assert subscriber["%5Flead=тариф"] == subscriber["тариф=%5Flead"] == subscriber["日本=a%20b"] == 1
    assert encoded["Context"]["%5Flead=%5Flead"] == 1 and encoded["Context"]["n%3A1"] == 2.5
    assert encoded["Text"] == {"q%7Cx=связ": 1, "q%7Cx=роуминг": 1, "q%7Cx=интернет": 1, "q%7Cx=long": 1,
                               "q%7Cx=distanc": 1}
    assert encoded["Context"]["channel=web%7Cx%3Ay%20z"] == 1
    assert encoded["Context"]["s%20%3D=%5Fe"] == 1
    expected = sum(1 for tokens in encoded.values() for value in tokens.values() if value != 0)
    assert vw_counts(encoded) == expected == len(NASTY) + 5 + 1 + 3 + len(NASTY) + 1


unicode_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@settings(max_examples=200, deadline=None)
@given(unicode_text, unicode_text, st.lists(unicode_text, max_size=4),
       st.floats(-1e9, 1e9).filter(lambda x: x == 0 or abs(x) > 1e-9),   # VW reads float32: tinier is 0
       st.one_of(unicode_text, st.integers(-10**9, 10**9)), unicode_text)
def test_random_input_encodes_deterministically_and_vw_parses_every_token(text, query, services, number, tariff,
                                                                         channel) -> None:
    schema = parse_schema(TELECOM)
    profile = {"tariff": tariff, "arpu": number, "balance": number, "services": services, "tenure_months": number,
               text: query}
    context = {"reason_text": text, "query": query, "page": text}
    first = schema.encode(profile, context, channel)
    again = parse_schema(TELECOM).encode(dict(profile), dict(context), channel)
    assert items(first) == items(again)
    for tokens in first.values():
        for token in tokens:
            assert not SEPARATORS & set(token) and not token.startswith("_")
    assert vw_counts(first) == sum(1 for tokens in first.values() for value in tokens.values() if value != 0)


# --------------------------------------------------------------------------- the text analyzer

def test_russian_and_english_share_stems_within_each_language() -> None:
    assert tokenize("междугородняя связь тарифы") == ["междугородн", "связ", "тариф"]
    assert tokenize("long-distance rates") == ["long", "distanc", "rate"]
    forms = ["междугородняя", "междугородние", "междугородний", "междугородних", "Междугородним"]
    assert {stem for form in forms for stem in tokenize(form)} == {"междугородн"}
    assert tokenize("тарифы") == tokenize("тариф") == tokenize("ТАРИФОВ") == ["тариф"]
    assert tokenize("roaming roams") == ["roam", "roam"]
    assert tokenize("rate rates rated") == ["rate"] * 3
    assert tokenize("distance distances") == ["distanc"] * 2


def test_yo_is_e_and_stopwords_short_words_and_numbers_go() -> None:
    assert tokenize("Ёжик ещё её") == tokenize("ежик еще ее") == ["ежик"]
    assert tokenize("я и в на не что с по а") == []
    assert tokenize("the a an to of for and in is my") == []
    assert tokenize("100 500 2024 x y ж") == []
    assert tokenize("4G 5гб 100gb") == ["4g", "5гб", "100gb"]


def test_punctuation_hyphens_underscores_and_emoji_separate_words() -> None:
    assert tokenize("роуминг,интернет;связь!!!(тариф)") == ["роуминг", "интернет", "связ", "тариф"]
    assert tokenize("интернет-пакет snake_case") == ["интернет", "пакет", "snake", "case"]
    assert tokenize("😀роуминг🇹🇷abroad🙂") == ["роуминг", "abroad"]
    assert tokenize("") == tokenize("   \n\t ") == tokenize("!!! ... 😀") == []


def test_unicode_forms_and_mixed_scripts() -> None:
    nfd = "и\u0306"   # й decomposed
    assert tokenize(f"мо{nfd} тариф") == tokenize("мой тариф") == ["тариф"]   # мой is a stopword
    assert tokenize("ＲＯＡＭＩＮＧ") == ["roam"]   # full-width
    assert tokenize("тapиф") == ["тариф"]   # Latin a and p typed in a Russian word
    assert tokenize("smsпакет") == ["sms", "пакет"]   # genuinely mixed: split at the script change
    assert tokenize("東京 café") == ["東京", "café"]   # other scripts: kept, not stemmed


@settings(max_examples=300, deadline=None)
@given(unicode_text)
def test_any_text_tokenizes_into_clean_terms(text: str) -> None:
    terms = tokenize(text)
    assert terms == tokenize(text)
    for term in terms:
        assert len(term) >= 2 and not term.isdigit()
        assert re.fullmatch(r"[^\W_]+", term), term
        assert escape(term) == term or not term.isascii()


# --------------------------------------------------------------------------- learning from text

OFFERS = ["home_cities", "roaming_easy", "unlimited_internet"]
TRAIN = {
    "home_cities": [
        "дорогие междугородние звонки", "сколько стоит звонок в другой город", "тариф на междугородний звонок",
        "часто звоню маме в другой город", "слишком много междугородних звонков",
        "long distance calls are expensive", "calling another city costs too much",
        "cheaper rate for long-distance calling", "I call my parents in another city every day",
    ],
    "roaming_easy": [
        "еду за границу нужен роуминг", "роуминг в турции дорогой", "как подключить роуминг",
        "отпуск за границей и связь", "звонки из-за границы",
        "travelling abroad next week", "roaming charges are too high", "how to enable roaming",
        "will my phone work abroad on vacation",
    ],
    "unlimited_internet": [
        "мобильный интернет медленный", "закончился трафик интернета", "нужно больше гигабайт",
        "интернет кончается быстро", "безлимитный интернет на телефон",
        "mobile internet is slow", "ran out of data traffic", "need more gigabytes of data",
        "unlimited internet on my phone",
    ],
}
HELD_OUT = {   # never trained on: other word forms and orders of the training stems
    "home_cities": ["междугородняя связь тарифы", "звонки в другие города", "Междугородние тарифы дорогие",
                    "long-distance rates", "cheap calls to other cities", "calling long distance"],
    "roaming_easy": ["роуминг за границей", "подключение роуминга в отпуске", "Роуминге дорого",
                     "roaming abroad", "vacation roaming charges", "enabling roaming abroad"],
    "unlimited_internet": ["медленного интернета", "трафика интернета не хватает", "больше гигабайтов",
                           "slow mobile data", "more internet traffic", "data runs out"],
}
FILLERS = ["здравствуйте", "пожалуйста", "подскажите", "hello", "please", "help", "добрый день", "hi there"]


def phrase(rng: random.Random, text: str) -> str:
    """A paraphrase: word order, case, punctuation and a greeting vary."""
    words = text.split()
    if rng.random() < 0.5:
        rng.shuffle(words)
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS))
    sentence = " ".join(words)
    sentence = rng.choice([str.lower, str.capitalize, str.upper, lambda s: s])(sentence)
    return sentence + rng.choice(["", ".", "?", "!", " ..."])


def stems(texts: list[str]) -> set[str]:
    return {term for text in texts for term in tokenize(text)}


def test_held_out_phrasings_share_stems_but_not_word_forms_with_training() -> None:
    trained_words = {word for texts in TRAIN.values() for text in texts for word in re.findall(r"\w+", text.lower())}
    unseen_forms = 0
    for intent, texts in HELD_OUT.items():
        for text in texts:
            assert text not in TRAIN[intent]
            own = len(stems([text]) & stems(TRAIN[intent]))
            assert own > max(len(stems([text]) & stems(TRAIN[other])) for other in OFFERS if other != intent), text
            unseen_forms += any(word not in trained_words and set(tokenize(word)) <= stems(TRAIN[intent])
                                for word in re.findall(r"\w+", text.lower()) if tokenize(word))
    assert unseen_forms >= 10   # most of the 18 need stemming to be recognized


def simulate(rounds: int = 3000, evaluate: int = 500, seed: int = 7) -> Iterator[tuple[bool, bool, bool]]:
    """Yields (held out, served the right offer, greedy choice right) for the last rounds."""
    schema = parse_schema(TELECOM)
    actions = [action_line(encode_offer(offer, {})) for offer in OFFERS]
    learner = Learner(LearnerSettings(exploration=Exploration("epsilon", epsilon=0.1), interactions=("TO",)))
    rng = random.Random(seed)
    try:
        for step in range(rounds):
            intent = rng.choice(OFFERS)
            held_out = step >= rounds - evaluate and rng.random() < 0.5
            text = phrase(rng, rng.choice((HELD_OUT if held_out else TRAIN)[intent]))
            shared = shared_line(schema.encode(None, {"reason_text": text}, "contact_center"))
            pmf = learner.predict_one(shared, actions)
            chosen = sample_index(pmf, event_uniform(f"round-{seed}-{step}"))
            reward = 1.0 if OFFERS[chosen] == intent else 0.0
            if not held_out:
                learner.learn_one(shared, actions, chosen, float(pmf[chosen]), reward)
            if step >= rounds - evaluate:
                yield held_out, reward == 1.0, OFFERS[max(range(len(OFFERS)), key=lambda i: pmf[i])] == intent
    finally:
        learner.close()


def test_the_learner_picks_the_offer_from_free_text_alone_even_for_unseen_phrasings() -> None:
    results = list(simulate())
    served = sum(ok for _, ok, _ in results) / len(results)
    held = [ok for held_out, ok, _ in results if held_out]
    greedy_held = [ok for held_out, _, ok in results if held_out]
    served_held = sum(held) / len(held)
    print(f"served accuracy, last {len(results)}: {served:.3f}; held-out phrasings ({len(held)}): "
          f"{served_held:.3f}; greedy on held-out: {sum(greedy_held) / len(greedy_held):.3f}")
    assert len(held) >= 200
    assert served >= 0.85
    assert served_held >= 0.85
    assert sum(greedy_held) / len(greedy_held) >= 0.95


# --------------------------------------------------------------------------- the docs

def test_the_schemas_and_the_example_line_in_the_docs_are_what_the_code_does() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "features.md").read_text(encoding="utf-8")
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)]
    schemas = [parse_schema(block["features"], where="features") for block in blocks if "features" in block]
    assert schemas[0] == parse_schema(TELECOM)
    telecom = schemas[-1]
    initials = {ns[0] for ns in telecom.namespaces()}
    assert {pair[0] for pair in blocks[-1]["interactions"]} == initials
    profile = {"tariff": "smart", "arpu": 350, "balance": 120, "services": "sms_pack;mail",
               "long_distance_minutes": 410}
    context = {"reason": "tariff_question", "reason_text": "Междугородние звонки дорогие"}
    line = shared_line(telecom.encode(profile, context, "contact_center"))
    assert f"\n{line}\n" in doc
    for text, terms in re.findall(r"^\| `([^`|]+)` \| (`[^|]+`) \|$", doc, re.MULTILINE):
        assert tokenize(text) == re.findall(r"`([^`]+)`", terms), text
