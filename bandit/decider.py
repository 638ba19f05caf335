"""The decide path: features → VW PMF → a seeded draw → the pending decision in Redis.

Kept free of HTTP so it can be driven by the service, the simulator and tests alike."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson

from bandit.catalog import CatalogStore
from bandit.config import Settings
from bandit.errors import ApiError
from bandit.schemas import DecideRequest, OfferIn
from bandit.store import Store
from policies.baselines import baseline_pmf, in_control_group
from policies.eligibility import Exclusion, screen
from policies.exploration import event_uniform, rank, sample_index
from policies.learner import Learner
from policies.vwtext import (CONTEXT_NAMESPACE, Encoded, FeatureError, action_line, encode_features, encode_offer,
                             shared_line)

RECORD_VERSION = 1


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


@dataclass(frozen=True)
class Candidate:
    id: str
    encoded: Encoded
    line: str          # the VW action line
    value: float       # business value of an acceptance


@dataclass
class Decision:
    event_id: str | None       # None when no offer was eligible: nothing to serve, nothing logged
    ranking: list[dict[str, Any]]
    model_version: str
    catalog_version: int | None = None
    excluded: list[dict[str, str]] | None = None   # with "explain": why each offer was left out

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"event_id": self.event_id, "ranking": self.ranking,
                                "model_version": self.model_version}
        if self.catalog_version is not None:
            body["catalog_version"] = self.catalog_version
        if self.excluded is not None:
            body["excluded"] = self.excluded
        return body


class Decider:
    def __init__(self, settings: Settings, store: Store, catalog: CatalogStore, model: ModelHolder,
                 secret: bytes) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.model = model
        self._secret = secret
        self._wait_ms = int(settings.reward_wait_seconds * 1000)

    def subscriber_hash(self, subscriber_id: str) -> str:
        """Subscriber ids are personal data: logs keep only a keyed hash."""
        return hmac.new(self._secret, subscriber_id.encode(), hashlib.sha256).hexdigest()[:32]

    async def decide(self, request: DecideRequest) -> Decision:
        if "channel" in request.context:
            raise ApiError(400, "invalid_field", "reserved: the top-level 'channel' field gives the channel",
                           "context.channel")
        shared = {CONTEXT_NAMESPACE: _encode("context", {**request.context, "channel": request.channel})}
        catalog_version: int | None = None
        excluded: list[Exclusion] = []
        if request.offers is not None:
            candidates = self._request_candidates(request)
        else:
            catalog = await self.catalog.current()
            catalog_version = catalog.version
            env = {**request.context, "channel": request.channel}
            eligible, excluded = screen(catalog.offers.values(), env, request.channel, datetime.now(timezone.utc))
            candidates = [Candidate(o.id, o.encoded, o.line, o.spec.value) for o in eligible]
        model_version = self.model.label
        explained = [e.to_json() for e in excluded] if request.explain else None
        if not candidates:
            return Decision(None, [], model_version, catalog_version, explained)

        k = request.k or self.settings.default_k
        event_id = request.event_id or uuid.uuid4().hex
        sid = self.subscriber_hash(request.subscriber_id) if request.subscriber_id else None
        if in_control_group(sid or event_id, self.settings.control_share):
            policy = "control"
            pmf = baseline_pmf(self.settings.control_policy, [c.value for c in candidates])
        else:
            policy = "model"
            pmf = self.model.learner.predict_one(shared_line(shared), [c.line for c in candidates])
        chosen = sample_index(pmf, event_uniform(event_id))
        record = {
            "v": RECORD_VERSION, "id": event_id, "ts": int(time.time() * 1000), "channel": request.channel,
            "sid": sid, "shared": shared, "offers": [c.id for c in candidates],
            "actions": [c.encoded for c in candidates], "values": [c.value for c in candidates],
            "chosen": chosen, "pmf": pmf.tolist(), "policy": policy, "model": model_version, "k": k,
            "defer": request.defer_activation, "catalog": catalog_version,
        }
        existing = await self.store.create_decision(event_id, orjson.dumps(record), self._wait_ms,
                                                    request.defer_activation, candidates[chosen].value)
        if existing is not None:
            return _replayed(event_id, existing)
        return Decision(event_id, _ranking(record["offers"], pmf, chosen, k), model_version, catalog_version,
                        explained)

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
            candidates.append(Candidate(offer.id, *_encode_offer(index, offer), offer.value))
        return candidates


def _encode(field: str, features: dict) -> Encoded:
    try:
        return encode_features(features)
    except FeatureError as exc:
        raise ApiError(400, "invalid_field", exc.reason, f"{field}.{exc.name}") from None


def _encode_offer(index: int, offer: OfferIn) -> tuple[Encoded, str]:
    try:
        try:
            return _offer_encoding(offer.id, orjson.dumps(offer.features))
        except orjson.JSONEncodeError:   # e.g. an integer beyond 64 bits: encode without the cache
            encoded = encode_offer(offer.id, offer.features)
            return encoded, action_line(encoded)
    except FeatureError as exc:
        raise ApiError(400, "invalid_field", exc.reason, f"offers[{index}].features.{exc.name}") from None


@functools.lru_cache(maxsize=4096)
def _offer_encoding(offer_id: str, features_json: bytes) -> tuple[Encoded, str]:
    """Channels send the same offers again and again: encode each once.
    Callers must not mutate the returned dict."""
    encoded = encode_offer(offer_id, orjson.loads(features_json))
    return encoded, action_line(encoded)


def _ranking(offer_ids: list[str], pmf: np.ndarray, chosen: int, k: int) -> list[dict[str, Any]]:
    return [{"offer_id": offer_ids[i], "probability": float(pmf[i])} for i in rank(pmf, chosen, k)]


def _replayed(event_id: str, stored: bytes) -> Decision:
    """A retried decide with the same client event id gets the original answer."""
    if stored == b"{}":
        raise ApiError(409, "event_settled", f"event {event_id!r} was already decided and settled", "event_id")
    record = orjson.loads(stored)
    ranking = _ranking(record["offers"], np.asarray(record["pmf"]), record["chosen"], record["k"])
    return Decision(event_id, ranking, record["model"], record.get("catalog"))
