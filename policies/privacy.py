"""What of a profile or context field may leave the process: the feature schema's
per-field ``log:`` marking, and the warnings for personal data that is not marked
(docs/features.md, "Personal data").

Whatever the model sees is what the decision log and the joined stream carry: the shared
features the decider predicts with are the ones it stores, and every learner learns
from the stream. So the marking changes the features themselves, not a copy of them:

- ``log: hash``: each of the field's tokens carries the keyed hash of its value (the
  subscriber id's HMAC, ``bandit.store.identity.SubscriberHasher``) instead of the value.
  The hash is the same token for the same value, so the model learns it like any
  category; nobody without the deployment's secret can read the value back.
- ``log: drop``: the field is never a feature. It is checked against its type and read
  by the eligibility rules (which run in the process, on the profile as stored), and
  reaches neither the model, the log nor the stream. A learner in another process could
  not learn from it, and a feature the model predicts with but never learns from would
  only ever have weight 0, so "drop" is for rules, not for learning.
- unmarked (or ``log: clear``): the value is written as it is.

A field named like a phone number or an e-mail address (``looks_personal_name``), or
whose loaded values look like one (``looks_personal_value``), is warned about at load
when it has no marking; ``log: clear`` says "in clear on purpose" and silences it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

LogMode = Literal["clear", "hash", "drop"]
LOG_MODES: tuple[str, ...] = ("clear", "hash", "drop")

# Whole words of a field name (split on anything but letters and digits, and on camelCase).
_PERSONAL_WORDS = frozenset({"msisdn", "phone", "telephone", "tel", "phonenumber", "cellphone", "email",
                             "emailaddress", "imsi", "imei", "ctn", "mdn"})
_PERSONAL_PAIRS = frozenset({("e", "mail"), ("mail", "address"), ("phone", "number"), ("contact", "number"),
                             ("mobile", "number"), ("cell", "number")})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_PHONE = re.compile(r"\+?\d[\d\s\-().]{8,20}\d")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE_DIGITS = range(10, 16)   # E.164: at most 15 digits; national numbers have 10 or more
# An integer needs 11 digits (a country code): 10 digits is also Unix seconds (`days_since`), and
# a 13-digit one within 2000..2100 in milliseconds is taken for a timestamp.
_INT_PHONE_DIGITS = range(11, 16)
_MS_TIMESTAMPS = range(946_684_800_000, 4_102_444_800_000)
VALUES_CHECKED = 200            # values per column a load looks at


def looks_personal_name(name: str) -> bool:
    """A field name that says phone number or e-mail address: ``msisdn``, ``phone``,
    ``customer_email``, ``E-Mail``, ``contactNumber``, ``tel``."""
    words = [w.lower() for w in _WORD.findall(name)]
    return any(w in _PERSONAL_WORDS for w in words) or any(p in _PERSONAL_PAIRS for p in zip(words, words[1:]))


def looks_personal_value(value: Any) -> str | None:
    """"a phone number" or "an e-mail address" when ``value`` looks like one, else None.
    Integers count too: a CSV cell 79001234567 is loaded as a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        digits = len(str(abs(value)))
        return "a phone number" if digits in _INT_PHONE_DIGITS and value not in _MS_TIMESTAMPS else None
    if not isinstance(value, str) or len(value) > 254:
        return None
    text = value.strip()
    if _EMAIL.fullmatch(text):
        return "an e-mail address"
    if _PHONE.fullmatch(text) and sum(c.isdigit() for c in text) in _PHONE_DIGITS:
        return "a phone number"
    return None


def unmarked_by_name(specs: Iterable[tuple[str, str, LogMode | None]]) -> list[str]:
    """Warnings for declared fields ``(path, name, log)`` named like personal data with no marking."""
    return [f"{path}: {name!r} is named like a phone number or e-mail address and is written to the decision "
            f"log and the joined stream in clear; mark it 'log: hash' or 'log: drop' (or 'log: clear' if that "
            f"is meant)" for path, name, log in specs if log is None and looks_personal_name(name)]


def unmarked_columns(profiles: Iterable[Mapping[str, Any]], marked: Mapping[str, LogMode | None]) -> list[str]:
    """Warnings for the fields of loaded ``profiles`` that are personal data by name or by
    value (the first ``VALUES_CHECKED`` values of each) and carry no ``log:`` marking
    (``marked``: the declared subscriber fields' markings)."""
    seen: dict[str, int] = {}
    found: dict[str, str] = {}
    for profile in profiles:
        for name, value in profile.items():
            if marked.get(name) is not None or name in found:
                continue
            if looks_personal_name(name):
                found[name] = "is named like a phone number or e-mail address"
                continue
            if seen.get(name, 0) >= VALUES_CHECKED:
                continue
            seen[name] = seen.get(name, 0) + 1
            if what := looks_personal_value(value):
                found[name] = f"holds what looks like {what}"
    return [f"field {name!r} {why} and would be written to the decision log and the joined stream in clear; "
            f"declare it in the feature schema with 'log: hash' or 'log: drop' (or 'log: clear' if that is meant)"
            for name, why in found.items()]
