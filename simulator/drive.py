"""Drive a live nextbest service over HTTP with the simulated contacts.

Each contact is a real ``POST /v1/decide`` (asking for every eligible offer, so the
baselines and the oracle choose among exactly what the service could serve); the
subscriber's answer is drawn from the hidden truth and posted back as a real
``POST /v1/reward`` after the channel's delay (scaled to real time) — or never, for
the declines nobody reports, which the service joins with the default reward."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from simulator.truth import expected_values
from simulator.world import Contact, SubscriberBase

ALL_OFFERS = 1000   # the decide request's k: every eligible offer, ranked


class SimulationError(Exception):
    """The service refused a request the simulator needs (the message says which and why)."""


@dataclass
class Outcome:
    """What happened on one contact, with the truth the service never saw."""

    index: int
    channel: str
    intent: str
    offers: list[str] = field(default_factory=list)        # eligible offers, served first
    probabilities: list[float] = field(default_factory=list)   # the service's PMF, same order
    accept: list[float] = field(default_factory=list)      # true P(accept) of each offer
    value: list[float] = field(default_factory=list)       # true expected value of each offer
    policy: str | None = None                              # "model" or "control"; None: nothing eligible
    accepted: bool = False
    reward: str = "none"                                   # accept / decline / silent / late / none

    @property
    def served(self) -> str | None:
        return self.offers[0] if self.offers else None


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
                "context": contact.context, "event_id": f"sim-{self.seed}-{contact.index}", "k": ALL_OFFERS}
        clock = time.perf_counter()
        decision = await self._post("/v1/decide", body)
        self.stats.decide_seconds.append(time.perf_counter() - clock)
        self.stats.decisions += 1
        outcome = Outcome(contact.index, contact.channel, contact.intent)
        if not decision["ranking"]:
            return outcome
        outcome.offers = [r["offer_id"] for r in decision["ranking"]]
        outcome.probabilities = [r["probability"] for r in decision["ranking"]]
        outcome.accept, outcome.value = expected_values(self.base, contact, outcome.offers, self.values)
        outcome.policy = decision.get("policy", "model")
        outcome.accepted = contact.uniform < outcome.accept[0]
        if outcome.accepted or not contact.silent:
            outcome.reward = "accept" if outcome.accepted else "decline"
            task = asyncio.create_task(self._reply(outcome, decision["event_id"], contact.reply_seconds))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)
        else:
            outcome.reward = "silent"
        return outcome

    async def _reply(self, outcome: Outcome, event_id: str, seconds: float) -> None:
        await asyncio.sleep(seconds * self.time_scale)
        async with self.http.post("/v1/reward", json={"event_id": event_id, "outcome": outcome.reward}) as response:
            if response.status in (404, 409):   # the wait ran out first: joined with the default reward
                outcome.reward = "late"
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
