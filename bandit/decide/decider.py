"""The decide path: features → VW PMF → a seeded draw → the pending decision in Redis.

Kept free of HTTP so it can be driven by the service, the simulator and tests alike."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec
import orjson

from bandit.store.catalog import CatalogStore
from bandit.config import Settings
from bandit.errors import ApiError
from bandit.store.identity import SubscriberHasher, SubscriberIdError, canonical_subscriber_id
from bandit.decide.schemas import DecideRequest, OfferIn, canonical, decode_feature_map, field_error
from bandit.store.limits import Limits, ServedLimits
from bandit.store.profiles import ProfileStore, with_accepted
from bandit.decide.record import DecisionRecord, SlotChoice, encode_record, read_record
from bandit.store.store import EventIdReused, LimitReached, ShownOffer, Store
from policies.baselines import Proportional, baseline, in_control_group
from policies.eligibility import Exclusion, screen
from policies.exploration import rank
from policies.slates import NextSlotPmf, baseline_slot_pmf, blend, draw_slots, floored
from policies.learner import Learner
from policies.vwtext import (Encoded, EncodedShared, FeatureError, action_line, encode_offer,
                             shared_line)

MAX_ATTEMPTS = 4   # re-decisions when served offers hit a limit concurrently


class ModelHolder:
    """The learner the decide path predicts with. In the process that learns it is the
    live model; elsewhere it is replaced whenever a newer checkpoint appears."""

    def __init__(self, learner: Learner, version: int) -> None:
        self.learner = learner
        self.version = version

    @property
    def label(self) -> str:
        """Checkpoint version and examples learned: names the exact model state."""
        return f"{self.version}.{self.learner.learned}"

    def replace(self, learner: Learner, version: int) -> None:
        old, self.learner, self.version = self.learner, learner, version
        old.close()


@dataclass(frozen=True, eq=False)
class Candidate:
    id: str
    encoded: Encoded
    line: str                    # the VW action line
    value: float                 # business value of an acceptance
    prior: float                 # acceptance probability before any data
    raw: msgspec.Raw             # ``encoded`` as JSON, as the decision record keeps it
    limits: ServedLimits | None = None   # a catalog offer's caps and contact rules


@dataclass
class Decision:
    """What the decide handler answers, as bandit.http.bodies.DecideResponse."""

    event_id: str | None       # None when no offer was eligible: nothing to serve, nothing logged
    slots: list[dict[str, Any]]
    ranking: list[dict[str, Any]]   # deprecated alias: one slot → today's ranking; several → the slots
    model_version: str
    catalog_version: int | None = None
    excluded: list[dict[str, str]] | None = None   # with "explain": why each offer was left out
    subscriber_known: bool | None = None            # None: no subscriber id was given
    policy: str | None = None                       # "model", or "control" for the control group


class Decider:
    def __init__(self, settings: Settings, store: Store, catalog: CatalogStore, limits: Limits,
                 profiles: ProfileStore, model: ModelHolder, secret: bytes) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.profiles = profiles
        self.limits = limits
        self.model = model
        self.subscriber_hash = SubscriberHasher(secret)
        self._wait_ms = int(settings.reward_wait_seconds * 1000)

    async def decide(self, request: DecideRequest) -> Decision:
        if request.channel not in self.settings.channels:
            raise ApiError(400, "invalid_field", f"unknown channel {request.channel!r}; configured channels: "
                           f"{', '.join(self.settings.channels)}", "channel")
        event_id = request.event_id or uuid.uuid4().hex
        sid = self.subscriber_hash(self.subscriber_id(request.subscriber_id)) if request.subscriber_id else None
        profile, catalog_now, known = await self._lookups(sid, catalog=request.offers is None)
        shared = self._shared_features(profile, request)
        now = datetime.now(timezone.utc)
        catalog_version: int | None = None
        excluded: list[Exclusion] = []
        if request.offers is not None:
            candidates = self._request_candidates(request)
        else:
            candidates, excluded, catalog_version = await self._catalog_candidates(request, profile, sid, now,
                                                                                   catalog_now)
        model_version = self.model.label
        channel_slots = self.settings.slots_for(request.channel)
        wanted = min(request.k, channel_slots) if request.k else channel_slots
        k = request.k or self.settings.default_k   # the deprecated ranking's length (one slot)
        in_control = in_control_group(sid or event_id, self.settings.control_share)
        accepted_key = self.profiles.keys.accepted(sid) if sid is not None and catalog_version is not None else None
        # only a client's event id can be retried: then the request's digest tells a retry from a reuse
        digest = self.subscriber_hash.digest(canonical(request)) if request.event_id else ""

        for attempt in range(MAX_ATTEMPTS):
            if not candidates:
                break
            # A retry draws afresh: reusing the first draw would bias the second choice.
            draws = draw_slots(self._next_slot_pmf(shared, candidates, in_control), min(wanted, len(candidates)),
                               event_id, salt=f"retry{attempt}" if attempt else "")
            record = DecisionRecord(
                id=event_id, ts=int(time.time() * 1000), channel=request.channel, sid=sid, shared=shared,
                offers=[c.id for c in candidates], actions=[c.raw for c in candidates],
                values=[c.value for c in candidates], slots=[SlotChoice(d.chosen, d.pmf) for d in draws],
                policy="control" if in_control else "model", model=model_version, k=k,
                defer=request.defer_activation, catalog=catalog_version, known=known)
            shown = [candidates[d.chosen] for d in draws]
            try:
                existing = await self.store.create_decision(
                    event_id, encode_record(record), self._wait_ms, request.defer_activation,
                    [ShownOffer(c.id, c.value, c.limits) for c in shown], accepted_key, digest)
            except EventIdReused:
                raise ApiError(409, "event_id_reused", f"event {event_id!r} is pending with a decision for another "
                               "request; a retry must send the same body, a new decision a new event_id",
                               "event_id") from None
            except LimitReached as exc:   # another process used the last unit since we screened
                if exc.limit.subscriber_wide:   # the subscriber's daily offers: show fewer slots
                    wanted = exc.slot - 1
                    if wanted == 0:
                        excluded += [Exclusion(c.id, exc.limit.reason, exc.limit.detail) for c in candidates]
                        candidates = []
                    continue
                served = shown[exc.slot - 1]
                excluded.append(Exclusion(served.id, exc.limit.reason, exc.limit.detail))
                candidates = [c for c in candidates if c is not served]
                continue
            if existing is not None:
                return _replayed(event_id, existing)
            return _answer(record, [e.to_json() for e in excluded] if request.explain else None)
        return Decision(None, [], [], model_version, catalog_version,
                        [e.to_json() for e in excluded] if request.explain else None, known)

    def subscriber_id(self, raw: str) -> str:
        """The id profiles are keyed by (``subscriber_ids``: as sent, or the phone number in
        E.164); a 400 naming ``subscriber_id`` when refused. Decide, the profile API and the
        bulk loader all read ids through ``canonical_subscriber_id``."""
        try:
            return canonical_subscriber_id(raw, self.settings.subscriber_ids == "phone", self.settings.phone_region)
        except SubscriberIdError as exc:
            raise ApiError(400, "invalid_field", str(exc), "subscriber_id") from None

    def _next_slot_pmf(self, shared: EncodedShared, candidates: list[Candidate], in_control: bool) -> NextSlotPmf:
        """Each slot's PMF, floored (``propensity_floor``) over the eligible offers still
        free, the control group's too: the log then supports every policy replay may evaluate."""
        return floored(self._unfloored_pmf(shared, candidates, in_control), self.settings.propensity_floor)

    def _unfloored_pmf(self, shared: EncodedShared, candidates: list[Candidate], in_control: bool) -> NextSlotPmf:
        """Where each slot's PMF comes from: the control group's baseline, or the model."""
        if in_control:
            return baseline_slot_pmf(baseline(self.settings.control_policy), [c.value for c in candidates])
        learner = self.model.learner
        shared_text, lines = shared_line(shared), [c.line for c in candidates]
        if learner.settings.slots:
            model: NextSlotPmf = lambda shown: learner.predict_slot(shared_text, lines, shown)   # noqa: E731
        else:
            model = lambda shown: learner.predict_one(shared_text, lines)   # noqa: E731
        # A cold model knows nothing: rank by the business's expected value until it has learned.
        weight = prior_weight(self.settings.value_prior_examples, learner.learned)
        if weight == 0:
            return model
        return blend(baseline_slot_pmf(Proportional(), [c.prior * c.value for c in candidates]), model, weight)

    def _shared_features(self, profile: dict[str, Any] | None, request: DecideRequest) -> EncodedShared:
        try:
            # the keyed hash: a `log: hash` field's tokens are the hash of its value (docs/features.md)
            return self.settings.features.encode(profile, request.context, request.channel, self.subscriber_hash)
        except FeatureError as exc:
            if exc.name in request.context:
                raise ApiError(400, "invalid_field", exc.reason, f"context.{exc.name}") from None
            raise ApiError(409, "bad_profile", f"the stored profile does not fit the feature schema: {exc}",
                           "subscriber_id") from None

    async def _lookups(self, sid: str | None, catalog: bool) -> tuple[dict[str, Any] | None, int | None, bool | None]:
        """The subscriber's profile (with the offers accepted since it was written among
        its services), the catalog version and whether a profile was stored: one round trip."""
        keys = ([self.profiles.keys.profile(sid), self.profiles.keys.accepted(sid)] if sid is not None else []) + \
            ([self.catalog.keys.catalog_version] if catalog else [])
        if not keys:
            return None, None, None
        values = await self.store.mget(keys)
        profile, known = None, None
        if sid is not None:
            profile = orjson.loads(values[0]) if values[0] is not None else None
            known = profile is not None
            if values[1]:
                profile = with_accepted(profile, values[1])
        return profile, (int(values[-1] or 0) if catalog else None), known

    async def _catalog_candidates(self, request: DecideRequest, profile: dict[str, Any] | None, sid: str | None,
                                  now: datetime, version: int | None) -> tuple[list[Candidate], list[Exclusion], int]:
        """The catalog's offers this contact may get: static rules first (over the
        profile, the context and the channel), then the caps and contact rules whose
        counters live in Redis."""
        catalog = await self.catalog.current(version)
        env = {**(profile or {}), **request.context, "channel": request.channel}
        eligible, excluded = screen(catalog.offers.values(), env, request.channel, now)
        blocked, limits = await self.limits.check(eligible, sid, now)
        if blocked:
            excluded += [Exclusion(o.id, *blocked[o.id]) for o in eligible if o.id in blocked]
            eligible = [o for o in eligible if o.id not in blocked]
        candidates = [Candidate(o.id, o.encoded, o.line, o.spec.value, o.spec.prior, msgspec.Raw(o.encoded_json),
                                limits[o.id])
                      for o in eligible]
        return candidates, excluded, catalog.version

    def _request_candidates(self, request: DecideRequest) -> list[Candidate]:
        """Offers sent with the request (no catalog involved): checked and encoded."""
        offers = request.offers or []
        if not offers:
            raise ApiError(400, "invalid_field", "at least one candidate offer is required", "offers")
        if len(offers) > self.settings.max_offers:
            raise ApiError(400, "invalid_field", f"at most {self.settings.max_offers} offers per decision", "offers")
        seen: set[str] = set()
        candidates = []
        for index, offer in enumerate(offers):
            if offer.id in seen:
                raise ApiError(400, "duplicate_offer", f"offer id {offer.id!r} appears twice", f"offers[{index}].id")
            seen.add(offer.id)
            encoded, line, raw = _encode_offer(index, offer)
            candidates.append(Candidate(offer.id, encoded, line, offer.value, offer.prior, raw))
        return candidates


def _encode_offer(index: int, offer: OfferIn) -> tuple[Encoded, str, msgspec.Raw]:
    try:
        return _offer_encoding(offer.id, bytes(offer.features))
    except FeatureError as exc:
        raise ApiError(400, "invalid_field", exc.reason, f"offers[{index}].features.{exc.name}") from None
    except msgspec.ValidationError as exc:
        raise field_error(exc, f"offers[{index}].features", bytes(offer.features)) from None


@functools.lru_cache(maxsize=4096)
def _offer_encoding(offer_id: str, features_json: bytes) -> tuple[Encoded, str, msgspec.Raw]:
    """Channels send the same offers again and again: decode and encode each once, keyed
    by its JSON as sent. Callers must not mutate the returned dict."""
    encoded = encode_offer(offer_id, decode_feature_map(features_json))
    return encoded, action_line(encoded), msgspec.Raw(orjson.dumps(encoded))


def prior_weight(examples: float, learned: int) -> float:
    """How much the prior × value ranking still counts: n / (n + examples learned)."""
    return examples / (examples + learned) if examples > 0 else 0.0


def _answer(record: DecisionRecord, excluded: list[dict[str, str]] | None = None) -> Decision:
    slots = [{"slot": n, "offer_id": record.offers[s.chosen], "probability": s.probability}
             for n, s in enumerate(record.slots, 1)]
    if len(record.slots) == 1:   # as before slots: the served offer first, then the rest by probability
        only = record.slots[0]
        ranking = [{"offer_id": record.offers[i], "probability": only.pmf[i]}
                   for i in rank(only.pmf, only.chosen, record.k,
                                 record.values if len(record.values) == len(only.pmf) else None)]
    else:
        ranking = [{"offer_id": s["offer_id"], "probability": s["probability"]} for s in slots]
    return Decision(record.id, slots, ranking, record.model, record.catalog, excluded, record.known, record.policy)


def _replayed(event_id: str, stored: bytes) -> Decision:
    """A retried decide with the same client event id gets the original answer."""
    if stored == b"{}":
        raise ApiError(409, "event_settled", f"event {event_id!r} was already decided and settled", "event_id")
    return _answer(read_record(stored))
