"""The hidden ground truth: P(accept | subscriber, contact, offer).

An additive model with the structure a real contact center has: the reason for the
contact matters most (and it is clearest when a person explains it to an agent, less
so in a search, a web page or a USSD code); usage matters (heavy long-distance callers
take "Home Cities", travellers "Roaming Easy"); some offers are good only for some
segments (the child locator for parents, ring-back tones for the young) and bad for
others (unlimited internet for thrifty callers); what an offer is worth comes from the
live catalog. The service never sees this module: it learns from accept/decline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from simulator.world import SEGMENTS, Contact, SubscriberBase

BASE = {"home_cities": 0.01, "balance_control": 0.06, "roaming_discount": 0.003, "sms_pack": 0.02,
        "unlimited_internet": 0.01, "favourite_country": 0.005, "ringback_tones": 0.03, "child_locator": 0.01,
        "mobile_mail": 0.02}
UNKNOWN_OFFER = 0.01   # an offer the truth knows nothing about: rarely taken
INTENT_EFFECT = {
    "long_distance": {"home_cities": 0.40, "favourite_country": 0.05, "balance_control": 0.05},
    "balance_vanished": {"balance_control": 0.35, "home_cities": 0.12, "sms_pack": 0.05},
    "roaming": {"roaming_discount": 0.30, "favourite_country": 0.05},
    "slow_internet": {"unlimited_internet": 0.35, "mobile_mail": -0.01},
    "sms_cost": {"sms_pack": 0.40, "mobile_mail": 0.08},
    "child_safety": {"child_locator": 0.45},
    "international": {"favourite_country": 0.35, "home_cities": 0.04},
    "tariff_question": {"unlimited_internet": 0.06, "home_cities": 0.05, "sms_pack": 0.05, "ringback_tones": 0.03},
}
# How clearly the channel carries the reason: a person telling an agent, a typed search,
# the page someone opened, a USSD balance check that says nothing about why.
INTENT_CLARITY = {"contact_center": 1.0, "search": 0.8, "web": 0.6, "ussd": 0.0}
CHANNEL_EFFECT = {"ussd": {"ringback_tones": 0.03, "mobile_mail": 0.03, "balance_control": 0.05}}
# (offer, usage aggregate, slope): slope · log1p(usage), heavy users take the offer more.
USAGE_EFFECT = (("home_cities", "long_distance_minutes", 0.025),
                ("favourite_country", "international_minutes", 0.02),
                ("roaming_discount", "roaming_days", 0.02),
                ("unlimited_internet", "data_gb", 0.02),
                ("sms_pack", "sms_count", 0.01))
# Hidden from the service: only the visible traces of the segment can be learned.
SEGMENT_EFFECT = {"parent": {"child_locator": 0.10}, "young": {"ringback_tones": 0.08},
                  "kid": {"ringback_tones": 0.08}, "thrifty": {"unlimited_internet": -0.05}}
FLOOR, CEILING = 0.002, 0.9


def accept_probability(base: SubscriberBase, contact: Contact, offer_id: str) -> float:
    """Additive effects on the probability, clipped: each effect's size reads directly
    as percentage points of acceptance."""
    i = contact.subscriber
    p = BASE.get(offer_id, UNKNOWN_OFFER)
    p += INTENT_CLARITY[contact.channel] * INTENT_EFFECT[contact.intent].get(offer_id, 0.0)
    p += CHANNEL_EFFECT.get(contact.channel, {}).get(offer_id, 0.0)
    for offer, usage, slope in USAGE_EFFECT:
        if offer == offer_id:
            p += slope * math.log1p(float(base.usage[usage][i]))
    p += SEGMENT_EFFECT.get(SEGMENTS[base.segment[i]], {}).get(offer_id, 0.0)
    if offer_id == "balance_control":
        p += 0.02 * (float(base.usage["topups_30d"][i]) - 2.0) + (0.05 if base.balance[i] < 0 else 0.0)
    elif offer_id == "roaming_discount" and base.balance[i] < 50:
        p -= 0.004   # cannot afford it now
    elif offer_id == "mobile_mail":
        p += 0.03 if base.tariff[i] == "basic" else -0.01
    return min(CEILING, max(FLOOR, p))


def expected_values(base: SubscriberBase, contact: Contact, offer_ids: Sequence[str],
                    values: Mapping[str, float]) -> tuple[list[float], list[float]]:
    """P(accept) and P(accept) × value for each candidate offer, in their order."""
    probabilities = [accept_probability(base, contact, o) for o in offer_ids]
    return probabilities, [p * values.get(o, 0.0) for p, o in zip(probabilities, offer_ids)]
