"""Sales-plan caps and contact rules, enforced in Redis across every process.

Before the bandit sees the candidates, one MGET reads the counters of every eligible
offer and drops those at a limit. The served offer's counters are then checked and
incremented atomically with the decision itself (``lua.CREATE``), so concurrent
decisions in several processes never pass a limit: a decision that loses that race is
re-decided without the offer. Acceptance caps reserve a unit per decision in flight and
turn it into an acceptance (or release it) at the join, so acceptances never exceed
the cap either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime


from bandit.store.keys import Keys
from policies.offers import Offer

DAY_TTL = 2 * 86400
WEEK_TTL = 8 * 86400


@dataclass(frozen=True)
class Limit:
    key: str            # the counter the served offer increments
    limit: int
    ttl: int            # seconds; 0 = none
    also: str           # a second counter added before comparing (acceptances to reservations)
    reason: str         # cap | contact
    detail: str
    subscriber_wide: bool = False   # counts every offer shown to the subscriber (not one offer's)


@dataclass(frozen=True)
class ServedLimits:
    """What the decision's create script must check, increment and remember."""

    limits: list[Limit]
    acceptance_pairs: str       # "reserved|counted|ttl ..." released or counted at the join
    declined_key: str
    declined_ttl: int


class Limits:
    def __init__(self, mget: Callable[[list[str]], Awaitable[list[bytes | None]]], keys: Keys,
                 max_per_subscriber_per_day: int | None) -> None:
        self._mget = mget   # Store.mget: batched with the decisions in flight
        self.keys = keys
        self.max_per_day = max_per_subscriber_per_day

    def for_offer(self, offer: Offer, subscriber: str | None, now: datetime) -> ServedLimits:
        day, week = now.strftime("%Y%m%d"), now.strftime("%G%V")
        caps, contact, k = offer.spec.caps, offer.spec.contact, self.keys
        limits: list[Limit] = []
        pairs: list[str] = []
        if caps.impressions_per_day is not None:
            limits.append(Limit(k.cap(offer.id, "imp", day), caps.impressions_per_day, DAY_TTL, "", "cap",
                                f"{caps.impressions_per_day} impressions a day reached"))
        if caps.impressions_total is not None:
            limits.append(Limit(k.cap(offer.id, "imp", "total"), caps.impressions_total, 0, "", "cap",
                                f"{caps.impressions_total} impressions in total reached"))
        for period, cap, ttl in ((day, caps.accepts_per_day, DAY_TTL), ("total", caps.accepts_total, 0)):
            if cap is not None:
                reserved, counted = k.cap(offer.id, "res", period), k.cap(offer.id, "acc", period)
                limits.append(Limit(reserved, cap, ttl, counted, "cap",
                                    f"{cap} acceptances {'a day' if ttl else 'in total'} reached (with those pending)"))
                pairs.append(f"{reserved}|{counted}|{ttl}")
        declined_key, declined_ttl = "", 0
        if subscriber is not None:
            if self.max_per_day is not None:
                limits.append(Limit(k.shown_today(subscriber, day), self.max_per_day, DAY_TTL, "", "contact",
                                    f"{self.max_per_day} offers a day already shown to this subscriber",
                                    subscriber_wide=True))
            if contact.max_per_week is not None:
                limits.append(Limit(k.shown_week(subscriber, offer.id, week), contact.max_per_week, WEEK_TTL, "",
                                    "contact", f"shown {contact.max_per_week} times this week already"))
            if contact.declined_cooldown_days is not None and contact.declined_cooldown_days > 0:
                declined_key = k.declined(subscriber, offer.id)
                declined_ttl = max(1, int(contact.declined_cooldown_days * 86400))
        return ServedLimits(limits, " ".join(pairs), declined_key, declined_ttl)

    async def check(self, offers: list[Offer], subscriber: str | None,
                    now: datetime) -> tuple[dict[str, tuple[str, str]], dict[str, ServedLimits]]:
        """The blocked offers, and each offer's limits for the script that stores the
        decision (worked out once per decision, here)."""
        plans = [(offer, self.for_offer(offer, subscriber, now)) for offer in offers]
        limits = {offer.id: served for offer, served in plans}
        keys: list[str] = []
        for _, served in plans:
            for limit in served.limits:
                keys.append(limit.key)
                if limit.also:
                    keys.append(limit.also)
            if served.declined_key:
                keys.append(served.declined_key)
        if not keys:
            return {}, limits
        values = dict(zip(keys, await self._mget(keys)))
        blocked: dict[str, tuple[str, str]] = {}
        for offer, served in plans:
            if served.declined_key and values[served.declined_key] is not None:
                blocked[offer.id] = ("contact", "declined recently (cooldown "
                                     f"{offer.spec.contact.declined_cooldown_days:g} days)")
                continue
            for limit in served.limits:
                used = int(values[limit.key] or 0) + (int(values[limit.also] or 0) if limit.also else 0)
                if used >= limit.limit:
                    blocked[offer.id] = (limit.reason, limit.detail)
                    break
        return blocked, limits
