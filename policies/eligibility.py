"""Which offers may be shown: removed before the bandit sees the candidates, so the
logged probabilities are over the eligible set only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policies.offers import Offer


@dataclass(frozen=True)
class Exclusion:
    offer_id: str
    reason: str     # disabled | channel | validity | owned | rule | cap | contact
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"offer_id": self.offer_id, "reason": self.reason, "detail": self.detail}


def screen(
    offers: Iterable[Offer],
    env: Mapping[str, Any],
    channel: str,
    now: datetime,
    blocked: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[list[Offer], list[Exclusion]]:
    """Split offers into eligible and excluded (with the first reason that applies).
    ``blocked`` carries exclusions decided elsewhere (caps, contact rules): id → (reason, detail)."""
    eligible: list[Offer] = []
    excluded: list[Exclusion] = []
    services = env.get("services")
    owned = services if isinstance(services, (set, frozenset, list, tuple)) else ()
    for offer in offers:
        reason = _exclusion(offer, env, channel, now, owned, blocked)
        if reason is None:
            eligible.append(offer)
        else:
            excluded.append(Exclusion(offer.id, *reason))
    return eligible, excluded


def _exclusion(offer: Offer, env: Mapping[str, Any], channel: str, now: datetime, owned: Any,
               blocked: Mapping[str, tuple[str, str]] | None) -> tuple[str, str] | None:
    spec = offer.spec
    if not spec.enabled:
        return "disabled", "the offer is switched off"
    if spec.channels is not None and channel not in spec.channels:
        return "channel", f"not offered on {channel!r} (only {', '.join(spec.channels)})"
    if spec.valid_from is not None and now < spec.valid_from:
        return "validity", f"valid from {spec.valid_from.isoformat()}"
    if spec.valid_to is not None and now >= spec.valid_to:
        return "validity", f"expired at {spec.valid_to.isoformat()}"
    if offer.id in owned:
        return "owned", "the subscriber already has it"
    if offer.rule is not None and not offer.rule.evaluate(env):
        return "rule", offer.rule.explain(env)
    if blocked and offer.id in blocked:
        return blocked[offer.id]
    return None
