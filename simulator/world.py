"""The synthetic telecom world: a subscriber base and the stream of contacts it makes.

Every subscriber has a hidden *segment* (a family with relatives in other cities, a
traveller, an expat, a young heavy data user, a parent, a thrifty caller, a child on
the kids' tariff). The segment shapes what the service can see — tariff, usage
aggregates, balance, active services — and why the subscriber gets in touch, but the
service never sees it: like real life, it has to learn from the visible traces.

Everything is drawn from one seed with numpy, so a seed gives the same base and the
same contact stream on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SEGMENTS = ("family", "traveller", "expat", "young", "parent", "thrifty", "kid")
SEGMENT_SHARE = (0.24, 0.09, 0.08, 0.20, 0.14, 0.20, 0.05)
TARIFFS = ("basic", "smart", "super", "kids")
# P(tariff | segment), rows in SEGMENTS order, columns in TARIFFS order.
TARIFF_BY_SEGMENT = {
    "family": (0.45, 0.40, 0.15, 0.0), "traveller": (0.10, 0.35, 0.55, 0.0), "expat": (0.30, 0.45, 0.25, 0.0),
    "young": (0.15, 0.50, 0.35, 0.0), "parent": (0.30, 0.45, 0.25, 0.0), "thrifty": (0.85, 0.15, 0.0, 0.0),
    "kid": (0.0, 0.0, 0.0, 1.0)}
REGIONS = ("moscow", "spb", "novosibirsk", "yekaterinburg", "kazan", "krasnodar", "vladivostok")
REGION_SHARE = (0.30, 0.18, 0.12, 0.12, 0.10, 0.10, 0.08)
# Median monthly usage by segment: long-distance minutes, international minutes,
# roaming days a year, mobile data GB, SMS, top-ups in 30 days.
USAGE = ("long_distance_minutes", "international_minutes", "roaming_days", "data_gb", "sms_count", "topups_30d")
USAGE_MEDIAN = {
    "family": (140, 2, 1, 3, 30, 2), "traveller": (20, 15, 25, 8, 20, 1), "expat": (15, 160, 4, 5, 40, 2),
    "young": (10, 2, 2, 25, 120, 2), "parent": (35, 3, 2, 4, 40, 2), "thrifty": (8, 0.5, 0, 0.8, 20, 5),
    "kid": (3, 0, 0, 6, 150, 3)}
ARPU_MEDIAN = {"basic": 250.0, "smart": 450.0, "super": 850.0, "kids": 150.0}
SERVICES = ("home_cities", "favourite_country", "balance_control", "sms_pack", "unlimited_internet",
            "ringback_tones", "child_locator", "mobile_mail", "roaming_discount")
SERVICE_SHARE = (0.06, 0.04, 0.08, 0.07, 0.05, 0.05, 0.03, 0.02, 0.02)

CHANNELS = ("contact_center", "web", "search", "ussd")
CHANNEL_SHARE = (0.45, 0.30, 0.15, 0.10)
INTENTS = ("long_distance", "balance_vanished", "roaming", "slow_internet", "sms_cost", "child_safety",
           "international", "tariff_question")
# P(intent | segment), columns in INTENTS order.
INTENT_BY_SEGMENT = {
    "family": (0.40, 0.25, 0.02, 0.05, 0.03, 0.03, 0.02, 0.20),
    "traveller": (0.05, 0.10, 0.50, 0.10, 0.02, 0.01, 0.12, 0.10),
    "expat": (0.05, 0.15, 0.08, 0.05, 0.05, 0.02, 0.45, 0.15),
    "young": (0.03, 0.10, 0.05, 0.45, 0.20, 0.01, 0.02, 0.14),
    "parent": (0.10, 0.15, 0.03, 0.07, 0.05, 0.40, 0.02, 0.18),
    "thrifty": (0.10, 0.45, 0.01, 0.04, 0.15, 0.03, 0.02, 0.20),
    "kid": (0.02, 0.20, 0.01, 0.25, 0.40, 0.01, 0.01, 0.10)}
# What contact-center agents type for each call reason (Russian and English).
AGENT_TEXT = {
    "long_distance": ("дорогие междугородние звонки", "звонила подруге в другой город", "междугородняя связь",
                      "long distance calls cost a lot", "calls to another city are expensive"),
    "balance_vanished": ("куда делись деньги со счета", "пропали деньги с баланса", "положила деньги вчера и их нет",
                         "money disappeared from balance", "balance went to zero after top up"),
    "roaming": ("еду за границу", "роуминг в турции", "сколько стоит связь за границей", "going abroad next week",
                "roaming prices"),
    "slow_internet": ("медленный интернет", "закончился трафик", "интернет не грузит", "mobile internet is slow",
                      "data ran out"),
    "sms_cost": ("дорогие смс", "много пишу смс", "сколько стоит сообщение", "sms are expensive",
                 "text messages cost"),
    "child_safety": ("где находится ребенок", "хочу видеть где сын", "ребенок не берет трубку", "where is my child",
                     "track my kid phone"),
    "international": ("звонки родным в казахстан", "дорого звонить за рубеж", "международные звонки",
                      "calls to my family abroad", "international call rates"),
    "tariff_question": ("какой у меня тариф", "хочу сменить тариф", "вопрос по тарифу", "which plan am I on",
                        "change my tariff"),
}
SEARCH_QUERY = {
    "long_distance": ("междугородние тарифы", "звонки в другой город дешево", "long-distance rates"),
    "balance_vanished": ("куда уходят деньги", "детализация расходов", "where does my money go"),
    "roaming": ("роуминг цены", "связь за границей", "roaming abroad price"),
    "slow_internet": ("безлимитный интернет", "интернет пакет", "unlimited data plan"),
    "sms_cost": ("смс пакет", "дешевые смс", "sms bundle"),
    "child_safety": ("где ребенок", "локатор ребенка", "child locator"),
    "international": ("международные звонки дешево", "звонки в узбекистан", "international calls"),
    "tariff_question": ("тарифы", "сменить тариф", "mobile plans"),
}
WEB_PAGE = {"long_distance": "long_distance", "balance_vanished": "balance", "roaming": "roaming",
            "slow_internet": "internet", "sms_cost": "messages", "child_safety": "family",
            "international": "international", "tariff_question": "tariffs"}


@dataclass
class SubscriberBase:
    """Column arrays, one row per subscriber (the hidden segment included)."""

    ids: np.ndarray           # str
    segment: np.ndarray       # int index into SEGMENTS
    tariff: np.ndarray        # str
    region: np.ndarray        # str
    arpu: np.ndarray
    balance: np.ndarray
    tenure_months: np.ndarray
    usage: dict[str, np.ndarray]
    services: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)

    def profile(self, i: int) -> dict[str, Any]:
        """Subscriber i as the feature store holds it (what the service sees)."""
        return {"tariff": str(self.tariff[i]), "region": str(self.region[i]), "arpu": float(self.arpu[i]),
                "balance": float(self.balance[i]), "tenure_months": int(self.tenure_months[i]),
                "services": list(self.services[i]), **{k: float(v[i]) for k, v in self.usage.items()}}

    def write_parquet(self, path: Path) -> Path:
        """The base as a Parquet file for the bulk loader (`nextbest features load`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"subscriber_id": self.ids, "tariff": self.tariff, "region": self.region,
                          "arpu": self.arpu, "balance": self.balance, "tenure_months": self.tenure_months,
                          "services": pa.array(self.services, type=pa.list_(pa.string())), **self.usage})
        pq.write_table(table, path)
        return path


def generate_base(size: int, seed: int) -> SubscriberBase:
    if size < 1:
        raise ValueError(f"a subscriber base needs at least one subscriber, got {size}")
    rng = np.random.default_rng([seed, 1])
    segment = rng.choice(len(SEGMENTS), size=size, p=SEGMENT_SHARE)
    tariff_p = np.array([TARIFF_BY_SEGMENT[s] for s in SEGMENTS])[segment]
    tariff = np.array(TARIFFS)[(tariff_p.cumsum(axis=1) > rng.random((size, 1))).argmax(axis=1)]
    medians = np.array([USAGE_MEDIAN[s] for s in SEGMENTS], dtype=float)[segment]
    spread = rng.lognormal(0.0, 0.6, size=(size, len(USAGE)))
    usage_values = np.round(medians * spread, 1)
    usage_values[:, USAGE.index("topups_30d")] = rng.poisson(medians[:, USAGE.index("topups_30d")])
    arpu = np.round(np.array([ARPU_MEDIAN[t] for t in tariff]) * rng.lognormal(0.0, 0.35, size), 2)
    thrifty = segment == SEGMENTS.index("thrifty")
    balance = np.round(rng.uniform(-0.2, 1.2, size) * arpu * np.where(thrifty, 0.4, 1.0), 2)
    tenure = np.minimum(rng.geometric(1 / 30, size) - 1, 240)
    has = rng.random((size, len(SERVICES))) < np.array(SERVICE_SHARE)
    services = [[SERVICES[j] for j in np.flatnonzero(row)] for row in has]
    ids = _subscriber_ids(rng, size)
    return SubscriberBase(ids=ids, segment=segment, tariff=tariff, region=np.array(REGIONS)[
        rng.choice(len(REGIONS), size=size, p=REGION_SHARE)], arpu=arpu, balance=balance, tenure_months=tenure,
        usage={name: usage_values[:, j] for j, name in enumerate(USAGE)}, services=services)


def _subscriber_ids(rng: np.random.Generator, size: int) -> np.ndarray:
    """Distinct Russian mobile numbers, in random order."""
    numbers = np.unique(rng.integers(9_000_000_000, 9_999_999_999, size=size + size // 10 + 10))
    numbers = rng.permutation(numbers)[:size]
    while len(numbers) < size:   # astronomically unlikely with 10^9 numbers to draw from
        numbers = np.unique(np.concatenate([numbers, rng.integers(9_000_000_000, 9_999_999_999, size=size)]))[:size]
    return np.array([f"+7{n}" for n in numbers])


# Simulated seconds until the channel posts the answer, and the share of declines never reported.
REPLY_SECONDS = {"contact_center": (5.0, 60.0), "web": (30.0, 600.0), "search": (30.0, 600.0),
                 "ussd": (5.0, 120.0)}
SILENT_DECLINES = {"contact_center": 0.02, "web": 0.35, "search": 0.35, "ussd": 0.10}
REASON_CODE_SHARE = 0.8   # contact center: the agent picks a reason code this often, else only types text
# The position effect: P(the subscriber hears, or looks at, slot s), slot 1 first. The agent
# pitches slot 1 to every caller, slot 2 only while the caller still listens, slot 3 to fewer
# still; web and search show a list the eye runs down (search falls off faster: the first
# result takes the clicks); USSD shows one line. A slot past a channel's list is never heard.
# Slot 1 is always heard, so a one-slot decision is exactly the single offer of before.
ATTENTION = {"contact_center": (1.0, 0.6, 0.35), "web": (1.0, 0.7, 0.5, 0.35, 0.25),
             "search": (1.0, 0.55, 0.35, 0.2), "ussd": (1.0,)}
MAX_SLOTS = max(len(a) for a in ATTENTION.values())   # slots with answers drawn for every contact


def attention(channel: str, slots: int) -> list[float]:
    """P(heard) of slots 1..slots on this channel (0 past the channel's list)."""
    weights = ATTENTION[channel]
    return [weights[s] if s < len(weights) else 0.0 for s in range(slots)]


@dataclass(frozen=True)
class SlotDraw:
    """The subscriber's answer to one slot, drawn in advance: accepts when uniform <
    attention × P(accept) (hearing it and liking it, independent of the other slots)."""

    uniform: float
    reply_seconds: float      # when the channel posts this slot's answer, in simulated seconds
    silent: bool              # a decline of this slot that is never reported


@dataclass(frozen=True)
class Contact:
    """One contact: who, through which channel, why, and what the channel sends."""

    index: int
    subscriber: int           # row in the base
    channel: str
    intent: str               # the true reason for the contact (hidden from the service)
    context: dict[str, str]   # what the channel sends as the decide request's context
    uniform: float            # the subscriber's answer: accepts when uniform < P(accept)
    reply_seconds: float      # how long the answer takes, in simulated seconds
    silent: bool              # a decline that is never reported (the reward defaults)
    more_slots: tuple[SlotDraw, ...] = ()   # the answers to slots 2..MAX_SLOTS

    def draw(self, slot: int) -> SlotDraw:
        """The answer to slot ``slot`` (1-based). Slot 1 is the contact's own draw, the one a
        single offer always had, so one-slot runs answer exactly as before; a slot past
        MAX_SLOTS (never heard: attention 0) reuses it, never accepts, and is reported alike."""
        if slot < 1:
            raise ValueError(f"slots count from 1, got {slot}")
        if 2 <= slot <= len(self.more_slots) + 1:
            return self.more_slots[slot - 2]
        return SlotDraw(self.uniform, self.reply_seconds, self.silent)


def generate_contacts(base: SubscriberBase, count: int, seed: int) -> list[Contact]:
    rng = np.random.default_rng([seed, 2])
    who = rng.integers(0, len(base), size=count)
    channel = rng.choice(len(CHANNELS), size=count, p=CHANNEL_SHARE)
    intent_p = np.array([INTENT_BY_SEGMENT[s] for s in SEGMENTS])[base.segment[who]]
    intent = (intent_p.cumsum(axis=1) > rng.random((count, 1)) * intent_p.sum(axis=1, keepdims=True)).argmax(axis=1)
    uniform, pick, code = rng.random(count), rng.random(count), rng.random(count)
    reply_u, silent_u = rng.random(count), rng.random(count)
    # drawn after everything above, so slot 1 (and the base, the contacts) stay what they were
    more = rng.random((3, count, MAX_SLOTS - 1))
    contacts = []
    for n in range(count):
        name, why = CHANNELS[channel[n]], INTENTS[intent[n]]
        low, high = REPLY_SECONDS[name]
        share = SILENT_DECLINES[name]
        slots = tuple(SlotDraw(float(more[0, n, s]), float(low + (high - low) * more[1, n, s]),
                               bool(more[2, n, s] < share)) for s in range(MAX_SLOTS - 1))
        contacts.append(Contact(n, int(who[n]), name, why, _context(name, why, pick[n], code[n]), float(uniform[n]),
                                float(low + (high - low) * reply_u[n]), bool(silent_u[n] < share), slots))
    return contacts


def _context(channel: str, intent: str, pick: float, code: float) -> dict[str, str]:
    if channel == "contact_center":
        texts = AGENT_TEXT[intent]
        context = {"reason_text": texts[int(pick * len(texts))]}
        if code < REASON_CODE_SHARE:
            context["reason"] = intent
        return context
    if channel == "search":
        queries = SEARCH_QUERY[intent]
        return {"query": queries[int(pick * len(queries))]}
    if channel == "web":
        return {"page": WEB_PAGE[intent]}
    return {"short_code": "*100#"}
