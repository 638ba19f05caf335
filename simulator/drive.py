"""Drive a live nextbest service over HTTP with the simulated contacts.

Each contact is a real ``POST /v1/decide`` (asking for every eligible offer, so the
baselines and the oracle choose among exactly what the service could serve). The
service answers with a slate — ``slots``, slot 1 pitched first — or, a service from
before slots, with ``ranking`` alone, whose first offer is a slate of one. For every
slot the subscriber's answer is drawn from the hidden truth and the position effect
(``world.ATTENTION``) and posted back as a real ``POST /v1/reward`` naming the slot's
offer after the channel's delay (scaled to real time) — or never, for the declines
nobody reports, which the service joins with the default reward."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from simulator.truth import expected_values
from simulator.world import Contact, SlotDraw, SubscriberBase, attention

ALL_OFFERS = 1000   # the decide request's k: every eligible offer, ranked


class SimulationError(Exception):
    """The service refused a request the simulator needs (the message says which and why)."""


@dataclass
class Outcome:
    """What happened on one contact, with the truth the service never saw."""

    index: int
    channel: str
    intent: str
    offers: list[str] = field(default_factory=list)        # eligible offers, the served slate first, in slot order
    probabilities: list[float] = field(default_factory=list)   # the service's probability, same order (NaN: none)
    accept: list[float] = field(default_factory=list)      # true P(accept) of each offer, if heard
    value: list[float] = field(default_factory=list)       # true P(accept) × value of each offer, if heard
    attention: list[float] = field(default_factory=list)   # P(heard) of each slot served: the slate's size
    policy: str | None = None                              # "model" or "control"; None: nothing eligible
    accepted: list[bool] = field(default_factory=list)     # per slot: did the subscriber take it
    answers: list[str] = field(default_factory=list)       # per slot: accept / decline / silent / late

    @property
    def slots(self) -> int:
        return len(self.attention)

    @property
    def served(self) -> str | None:
        return self.offers[0] if self.offers else None


@dataclass(frozen=True)
class Served:
    """A decide answer as the simulator reads it."""

    slate: list[str]          # the offers served, slot 1 first
    eligible: list[str]       # every eligible offer, the slate first
    probabilities: list[float]
    per_slot: bool            # the service answered with slots: each slot's reward names its offer


def read_decision(decision: Mapping[str, Any], catalog: Sequence[str]) -> Served:
    """The slate and the eligible offers of a decide answer.

    The slate is ``slots`` in slot order, or ``ranking[:1]`` from a service without
    slots. The eligible offers are the slate, then the rest of ``ranking``, then any
    catalog offer the service neither ranked nor ``excluded`` (asked with ``explain``):
    all of them even if ``ranking`` is cut to the slate, so that random and the oracle
    always choose among everything the service could have served."""
    ranking = decision.get("ranking") or []
    slots = sorted(decision.get("slots") or [], key=lambda s: s["slot"])
    slate = [s["offer_id"] for s in slots] if slots else [r["offer_id"] for r in ranking[:1]]
    if not slate:
        return Served([], [], [], bool(slots))
    known = {r["offer_id"]: float(r["probability"]) for r in ranking}
    known.update({s["offer_id"]: float(s["probability"]) for s in slots if "probability" in s})
    eligible = list(dict.fromkeys([*slate, *(r["offer_id"] for r in ranking)]))
    if "excluded" in decision:
        left_out = {e["offer_id"] for e in decision["excluded"] or []} | set(eligible)
        eligible += [o for o in catalog if o not in left_out]
    return Served(slate, eligible, [known.get(o, float("nan")) for o in eligible], bool(slots))


def slot_answer(draw: SlotDraw, heard: float, accept: float) -> str:
    """One slot's answer: ``accept`` when the subscriber hears it (P ``heard``) and takes
    it (P ``accept``), one uniform for both; else ``decline``, or ``silent`` for a decline
    the channel never reports."""
    if draw.uniform < heard * accept:
        return "accept"
    return "silent" if draw.silent else "decline"


def reward_body(event_id: str, offer_id: str, answer: str, per_slot: bool) -> dict[str, str]:
    """A slot's ``POST /v1/reward``: ``offer_id`` only for a decision that had slots (a
    service without slots refuses the field and has one offer per decision anyway)."""
    body = {"event_id": event_id, "outcome": answer}
    if per_slot:
        body["offer_id"] = offer_id
    return body


@dataclass
class DriveStats:
    decisions: int = 0
    rewards_posted: int = 0
    rewards_late: int = 0
    decide_seconds: list[float] = field(default_factory=list)


class Driver:
    def __init__(self, http: aiohttp.ClientSession, base: SubscriberBase, values: Mapping[str, float], *,
                 seed: int, concurrency: int = 8, time_scale: float = 0.002, rate: float = 0.0) -> None:
        self.http, self.base, self.values = http, base, dict(values)
        self.seed, self.concurrency, self.time_scale, self.rate = seed, concurrency, time_scale, rate
        self.stats = DriveStats()
        self._replies: set[asyncio.Task[None]] = set()

    async def run(self, contacts: list[Contact], advance: Callable[[int], None] = lambda n: None) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(contacts)
        queue = iter(contacts)
        started = time.monotonic()

        async def worker() -> None:
            for contact in queue:   # one shared iterator: workers take contacts in order
                if self.rate > 0:
                    await asyncio.sleep(max(0.0, started + contact.index / self.rate - time.monotonic()))
                outcomes[contact.index] = await self.contact(contact)
                advance(1)

        workers = [asyncio.create_task(worker()) for _ in range(max(1, self.concurrency))]
        try:
            await asyncio.gather(*workers)
            if self._replies:
                await asyncio.gather(*self._replies)
        finally:
            for task in [*workers, *self._replies]:
                task.cancel()
        return [o for o in outcomes if o is not None]

    async def contact(self, contact: Contact) -> Outcome:
        body = {"channel": contact.channel, "subscriber_id": str(self.base.ids[contact.subscriber]),
                "context": contact.context, "event_id": f"sim-{self.seed}-{contact.index}", "k": ALL_OFFERS,
                "explain": True}
        clock = time.perf_counter()
        decision = await self._post("/v1/decide", body)
        self.stats.decide_seconds.append(time.perf_counter() - clock)
        self.stats.decisions += 1
        outcome = Outcome(contact.index, contact.channel, contact.intent)
        served = read_decision(decision, list(self.values))
        if not served.slate:
            return outcome
        outcome.offers, outcome.probabilities = served.eligible, served.probabilities
        outcome.accept, outcome.value = expected_values(self.base, contact, outcome.offers, self.values)
        outcome.attention = attention(contact.channel, len(served.slate))
        outcome.policy = decision.get("policy", "model")
        for slot, (offer, heard) in enumerate(zip(served.slate, outcome.attention), start=1):
            draw = contact.draw(slot)
            answer = slot_answer(draw, heard, outcome.accept[slot - 1])
            outcome.accepted.append(answer == "accept")
            outcome.answers.append(answer)
            if answer != "silent":
                reward = reward_body(decision["event_id"], offer, answer, served.per_slot)
                task = asyncio.create_task(self._reply(outcome, slot - 1, reward, draw.reply_seconds))
                self._replies.add(task)
                task.add_done_callback(self._replies.discard)
        return outcome

    async def _reply(self, outcome: Outcome, position: int, body: dict[str, str], seconds: float) -> None:
        await asyncio.sleep(seconds * self.time_scale)
        async with self.http.post("/v1/reward", json=body) as response:
            if response.status in (404, 409):   # the wait ran out first: joined with the default reward
                outcome.answers[position] = "late"
                self.stats.rewards_late += 1
                return
            await _check(response, "/v1/reward")
        self.stats.rewards_posted += 1

    async def _post(self, path: str, body: dict) -> dict:
        async with self.http.post(path, json=body) as response:
            await _check(response, path)
            return await response.json()


async def _check(response: aiohttp.ClientResponse, path: str) -> None:
    if response.status >= 300:
        text = (await response.text())[:500]
        raise SimulationError(f"{path}: HTTP {response.status}: {text}")


async def load_over_http(http: aiohttp.ClientSession, base: SubscriberBase, concurrency: int = 16,
                         advance: Callable[[int], None] = lambda n: None) -> None:
    """Profiles through ``PUT /v1/subscribers/{id}``, for a service whose Redis we cannot reach."""
    rows = iter(range(len(base)))

    async def worker() -> None:
        for i in rows:
            async with http.put(f"/v1/subscribers/{base.ids[i]}", json=base.profile(i)) as response:
                await _check(response, "/v1/subscribers")
            advance(1)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
