"""Profile fields marked ``log: hash`` or ``log: drop`` never reach the decision log or
the joined stream in clear (the real log file is grepped, the real stream read with
XRANGE); a hashed field is still a consistent, learnable token; a dropped one still
drives the eligibility rules; unmarked personal-looking fields are warned about at
load (docs/features.md, "Personal data")."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest
import redis

from bandit.config import load_settings
from tests.harness import read_lines
from bandit.loader import load_profiles
from bandit.store.identity import SubscriberHasher
from bandit.store.keys import Keys
from policies.schema import SchemaError, parse_schema
from tests.harness import wait_until

SECRET = "privacy-test-secret"
MSISDN = "79001234567"
EMAIL = "ivan.petrov@example.ru"
SCHEMA = {"subscriber": {"tariff": "categorical",
                         "msisdn": {"type": "categorical", "log": "hash"},
                         "email": {"type": "categorical", "log": "drop"},
                         "phones": {"type": "set", "log": "hash"}}}


def _raw_log(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())


@pytest.mark.parametrize("msisdn_log", ["hash", "drop"])
async def test_hashed_and_dropped_fields_leave_no_clear_value_in_the_log_or_the_stream(
        make_client, data_dir, redis_url, key_prefix, msisdn_log):
    schema = {"subscriber": {**SCHEMA["subscriber"], "msisdn": {"type": "categorical", "log": msisdn_log}}}
    client = await make_client(features=schema, subscriber_secret=SECRET)
    profile = {"tariff": "smart", "msisdn": MSISDN, "email": EMAIL, "phones": [MSISDN, "+7 901 000-00-01"]}
    assert (await client.put("/v1/subscribers/sub-1", json=profile)).status == 201
    refused = await client.patch("/v1/subscribers/sub-1", json={"email": ["not", "a", "category"]})
    assert refused.status == 400 and (await refused.json())["error"]["field"] == "email"   # dropped, still checked
    # hashed or dropped, the values still decide who gets an offer: rules run on the stored profile
    await client.put("/v1/offers/mail_bonus", json={"name": "M", "eligibility":
                                                     'starts_with(msisdn, "7900") and contains(email, "@example.ru")'})
    await client.put("/v1/offers/other_domain", json={"name": "O", "eligibility": 'contains(email, "@other.ru")'})
    await client.put("/v1/offers/other_range", json={"name": "R", "eligibility": 'starts_with(msisdn, "7911")'})
    event_ids = []
    for _ in range(2):
        decision = await (await client.post("/v1/decide", json={"channel": "web", "subscriber_id": "sub-1",
                                                                "explain": True})).json()
        assert [s["offer_id"] for s in decision["slots"]] == ["mail_bonus"]
        assert (await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 1})).status == 200
        event_ids.append(decision["event_id"])

    r = redis.Redis.from_url(redis_url)
    try:
        stream = r.xrange(Keys(key_prefix).joined)
    finally:
        r.close()
    assert len(stream) == 2
    stream_bytes = b"".join(b"".join(k + v for k, v in fields.items()) for _, fields in stream)
    lines = await wait_until(lambda: _lines(data_dir, 2), what="two log lines")
    log_bytes = _raw_log(data_dir / "decisions")
    for clear in (MSISDN.encode(), EMAIL.encode(), b"example.ru", b"901 000", b"901%20000"):
        assert clear not in stream_bytes, clear
        assert clear not in log_bytes, clear
    hashed = SubscriberHasher(SECRET.encode())
    for line in lines:
        subscriber = line["c"]["Subscriber"]
        # the same hash as the subscriber id would get: a consistent token the model learns
        msisdn = {f"msisdn={hashed(MSISDN)}": 1} if msisdn_log == "hash" else {}
        assert subscriber == {"tariff=smart": 1, **msisdn, f"phones={hashed(MSISDN)}": 1,
                              f"phones={hashed('+7 901 000-00-01')}": 1}
    assert sorted(line["EventId"] for line in lines) == sorted(event_ids)


async def _lines(data_dir: Path, count: int) -> list[dict] | None:
    lines = read_lines(data_dir / "decisions")
    return lines if len(lines) >= count else None


def test_a_bad_marking_is_refused_with_its_path() -> None:
    with pytest.raises(SchemaError, match=r"features\.subscriber\.msisdn\.log: expected one of clear, hash, drop, "
                                          r"got 'hide'"):
        parse_schema({"subscriber": {"msisdn": {"type": "categorical", "log": "hide"}}}, "features")
    with pytest.raises(SchemaError, match=r"features\.subscriber\.balance\.log: a numeric feature cannot be hashed"):
        parse_schema({"subscriber": {"balance": {"type": "numeric", "log": "hash"}}}, "features")
    with pytest.raises(ValueError, match="needs the keyed hash"):
        parse_schema(SCHEMA).encode({"msisdn": MSISDN}, {}, "web")


def test_unmarked_personal_fields_are_warned_about_at_config_load(tmp_path: Path, caplog) -> None:
    config = tmp_path / "nextbest.yaml"
    config.write_text("port: 9000\nfeatures:\n  subscriber:\n    msisdn: categorical\n    customer_email: "
                      "categorical\n    phone_model: {type: categorical, log: clear}\n    tel: {type: categorical, "
                      "log: drop}\n    tariff: categorical\n")
    with caplog.at_level(logging.WARNING, logger="nextbest"):
        load_settings(config, env={})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"{config}:2: features.subscriber.msisdn: 'msisdn' is named like a phone number")
    assert "mark it 'log: hash' or 'log: drop'" in warnings[0]
    assert "features.subscriber.customer_email" in warnings[1]


async def test_the_loader_warns_about_columns_that_hold_phone_numbers_or_e_mails(redis_url, key_prefix,
                                                                                 tmp_path: Path, caplog) -> None:
    import redis.asyncio as aioredis

    csv = tmp_path / "subscribers.csv"
    csv.write_text("subscriber_id,tariff,contact,backup,msisdn,last_offer_at\n"
                   "a,smart,79001234567,ivan@example.ru,79001234567,1717171717\n"
                   "b,basic,79001234568,,79001234568,1717171718000\n")
    schema = parse_schema({"subscriber": {"msisdn": {"type": "categorical", "log": "hash"}}})
    client = aioredis.Redis.from_url(redis_url)
    try:
        with caplog.at_level(logging.WARNING, logger="nextbest.loader"):
            report = await load_profiles(csv, client, Keys(key_prefix), SubscriberHasher(b"k"), schema)
        stored = orjson.loads(await client.get(Keys(key_prefix).profile(SubscriberHasher(b"k")("a"))))
    finally:
        await client.aclose()
    assert report.loaded == 2 and stored["contact"] == 79001234567   # a warning, not a refusal
    warnings = [r.getMessage() for r in caplog.records if r.name == "nextbest.loader"]
    assert len(warnings) == 2, warnings   # msisdn is marked; a timestamp is no phone number
    assert warnings[0].startswith(f"{csv}: field 'contact' holds what looks like a phone number")
    assert warnings[1].startswith(f"{csv}: field 'backup' holds what looks like an e-mail address")
