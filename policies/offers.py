"""Offers as marketers write them, validated and compiled once.

An offer spec is plain data (JSON/YAML keys); ``compile_offer`` checks it strictly
(unknown fields, types, the eligibility rule) and pre-encodes its features for VW, so
the decide path only filters and predicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson

from policies.rules import Rule, RuleError, parse_rule
from policies.rules.check import rule_problem
from policies.validation import split_validation_error
from policies.vwtext import Encoded, FeatureError, action_line, encode_offer

OfferId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
Count = Annotated[int, msgspec.Meta(ge=0)]
# a language tag as pages send it: "ru", "en", "pt-BR"
Locale = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
TEXT_FIELDS = ("name", "description", "terms")


class ContactRules(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """Per subscriber: how often this offer may be shown."""

    declined_cooldown_days: Annotated[float, msgspec.Meta(ge=0)] | None = None
    max_per_week: Count | None = None


class Caps(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """A sales plan: volume limits across all subscribers and processes."""

    accepts_per_day: Count | None = None
    accepts_total: Count | None = None
    impressions_per_day: Count | None = None
    impressions_total: Count | None = None


class OfferTexts(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """What a person reads about an offer in one language; a text left out is the
    offer's own (its top-level ``name``, ``description``, ``terms``)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    description: str | None = None
    terms: str | None = None


class OfferSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    id: OfferId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    description: str = ""
    terms: str = ""               # the conditions an agent reads out: price, period, how to cancel
    locales: dict[Locale, OfferTexts] = {}   # name / description / terms per language, e.g. {ru: {name: ...}}
    category: str = ""
    features: dict[str, Any] = {}
    value: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    prior: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1   # acceptance probability before any data
    channels: list[Annotated[str, msgspec.Meta(min_length=1)]] | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    eligibility: str | None = None
    contact: ContactRules = ContactRules()
    caps: Caps = Caps()
    enabled: bool = True

    def text(self, field: str, lang: str | None) -> str:
        """``name``, ``description`` or ``terms`` in ``lang`` ("ru", or "ru-RU" falling back
        to "ru"), else the offer's own: the API's fields stay as written, pages ask per language."""
        if lang:
            for tag in (lang, lang.split("-")[0]):
                said = getattr(self.locales[tag], field) if tag in self.locales else None
                if said is not None:
                    return said
        return getattr(self, field)


class OfferError(ValueError):
    """A bad offer: ``field`` is the path inside the offer, ``offer_id`` which offer."""

    def __init__(self, offer_id: str | None, field: str | None, message: str) -> None:
        where = f"offer {offer_id!r}" if offer_id else "offer"
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")
        self.offer_id = offer_id
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Offer:
    spec: OfferSpec
    rule: Rule | None
    encoded: Encoded          # VW features, id included
    line: str                 # the pre-built VW action line
    encoded_json: bytes = b"{}"   # ``encoded`` as JSON, as decision records keep it

    @property
    def id(self) -> str:
        return self.spec.id

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self.spec)


def compile_offer(raw: Any, channels: Sequence[str] | None = None, types: Mapping[str, str] | None = None) -> Offer:
    """``channels``: the deployment's channels; an offer naming another one is refused (it
    could never be shown there). ``types``: the feature schema's (``FeatureSchema.types``):
    a rule reading a feature it does not declare, or comparing one with a value of the
    wrong kind, is refused (``policies.rules.check``); None checks nothing."""
    offer_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    if isinstance(raw, dict) and isinstance(raw.get("locales"), dict):
        _check_locales(offer_id, raw["locales"])
    try:
        spec = msgspec.convert(raw, OfferSpec)
    except msgspec.ValidationError as exc:
        raise OfferError(offer_id, *reversed(split_validation_error(str(exc)))) from None
    unknown = [name for name in spec.channels or () if channels is not None and name not in channels]
    if unknown:
        raise OfferError(spec.id, "channels", f"unknown channel {unknown[0]!r}; configured channels: "
                         f"{', '.join(channels or ())}")
    if spec.valid_from and spec.valid_to and spec.valid_to <= spec.valid_from:
        raise OfferError(spec.id, "valid_to", "must be after valid_from")
    for stamp in (spec.valid_from, spec.valid_to):
        if stamp is not None and stamp.tzinfo is None:
            raise OfferError(spec.id, "valid_from" if stamp is spec.valid_from else "valid_to",
                             "give a timezone, e.g. 2026-12-01T00:00:00Z")
    rule = None
    if spec.eligibility is not None:
        try:
            rule = parse_rule(spec.eligibility)
        except RuleError as exc:
            raise OfferError(spec.id, "eligibility", str(exc)) from None
        problem = rule_problem(rule, types or {})
        if problem is not None:
            raise OfferError(spec.id, "eligibility", problem)
    try:
        encoded = encode_offer(spec.id, spec.features)
    except FeatureError as exc:
        raise OfferError(spec.id, f"features.{exc.name}", exc.reason) from None
    return Offer(spec, rule, encoded, action_line(encoded), orjson.dumps(encoded))


def _check_locales(offer_id: str | None, locales: dict[Any, Any]) -> None:
    """Per language, so an error names it (msgspec's own path says ``locales[...]``)."""
    for tag, texts in locales.items():
        try:
            msgspec.convert(tag, Locale)
        except msgspec.ValidationError:
            raise OfferError(offer_id, "locales", f"{tag!r} is not a language tag: use e.g. ru, en or pt-BR") from None
        try:
            msgspec.convert(texts, OfferTexts)
        except msgspec.ValidationError as exc:
            message, path = split_validation_error(str(exc))
            raise OfferError(offer_id, f"locales.{tag}" + (f".{path}" if path else ""),
                             f"{message}; a language gives {', '.join(TEXT_FIELDS)}") from None
