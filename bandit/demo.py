"""``nextbest demo``: the decision loop end to end, through the real HTTP API.

A small version of our reference story: callers to a mobile operator's contact
center with a call reason; the example telecom catalog (eligibility rules decide who
may get what); a hidden acceptance probability per (reason, offer). The service
starts on the embedded Redis, serves decisions, gets accept/decline back, learns
online, and the demo shows what it learned.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bandit.app import create_app
from bandit.config import Settings
from bandit.embedded import EmbeddedRedis

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "telecom"
EXAMPLE_CATALOG = EXAMPLES / "catalog.yaml"
EXAMPLE_CONFIG = EXAMPLES / "nextbest.yaml"

# The hidden truth: P(accept | call reason, offer). The service never sees this table;
# it learns it from accept/decline, within the offers each caller is eligible for.
TRUTH = {
    "long_distance": {"home_cities": 0.55, "favourite_country": 0.15, "balance_control": 0.10},
    "balance_vanished": {"balance_control": 0.45, "home_cities": 0.20},
    "roaming": {"roaming_discount": 0.50, "favourite_country": 0.10},
    "slow_internet": {"unlimited_internet": 0.40, "sms_pack": 0.05},
    "sms_cost": {"sms_pack": 0.35, "mobile_mail": 0.10},
    "child_safety": {"child_locator": 0.50},
}
# What agents type for each reason, in Russian and English.
PHRASES = {
    "long_distance": ["дорогие междугородние звонки", "звонила подруге в другой город", "long distance calls cost a lot",
                      "междугородняя связь тарифы", "calls to another city"],
    "balance_vanished": ["куда делись деньги со счета", "пропали деньги с баланса", "money disappeared from balance",
                         "balance went to zero after topup"],
    "roaming": ["еду за границу", "роуминг в турции", "going abroad next week", "roaming prices"],
    "slow_internet": ["медленный интернет", "закончился трафик", "mobile internet is slow", "data ran out"],
    "sms_cost": ["дорогие смс", "много пишу смс", "sms are expensive", "text messages cost"],
    "child_safety": ["где находится ребенок", "хочу видеть где сын", "where is my child", "track my kid phone"],
}
BASE_RATE = 0.02
TARIFFS = ["smart", "super", "basic"]
SERVICES = ["home_cities", "favourite_country", "balance_control", "sms_pack"]


def accept_probability(reason: str, offer_id: str) -> float:
    return TRUTH[reason].get(offer_id, BASE_RATE)


def caller(rng: random.Random) -> dict:
    """A subscriber's profile, as the feature store holds it."""
    return {"tariff": rng.choice(TARIFFS), "balance": round(rng.uniform(-20, 300), 2),
            "tenure_months": rng.randrange(0, 60), "services": rng.sample(SERVICES, rng.randrange(0, 2))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run_demo(settings: Settings, rounds: int, seed: int, console: Console | None = None) -> bool:
    console = console or Console(width=None if sys.stdout.isatty() else 110)
    if settings.redis_url is None:  # the demo's own embedded Redis: start clean every time
        if settings.data_dir.exists():  # stop a server a crashed demo left behind
            EmbeddedRedis(settings.data_dir).start().stop(force=True)
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    port = free_port()
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    console.print(f"[bold]nextbest demo[/]: service on {base}, data in {settings.data_dir}, "
                  f"Redis {'embedded' if settings.redis_url is None else settings.redis_url}")
    try:
        async with aiohttp.ClientSession(base) as http:
            contacts = await _drive(http, rounds, random.Random(seed), console)
            learned = await _wait_learned(http)
            await _report(http, contacts, learned, console)
    finally:
        await runner.cleanup()
    return True


async def _subscriber_base(http: aiohttp.ClientSession, rng: random.Random, size: int = 2000) -> list[str]:
    """Profiles the service looks up by subscriber id (the bulk loader does this at scale)."""
    ids = [f"+7900{rng.randrange(10**7):07d}" for _ in range(size)]
    for subscriber_id in ids:
        async with http.put(f"/v1/subscribers/{subscriber_id}", json=caller(rng)) as response:
            response.raise_for_status()
    return ids


@dataclass(frozen=True)
class Contact:
    reason: str
    served: str
    best: str          # the eligible offer with the highest true acceptance probability
    accepted: bool


async def _drive(http: aiohttp.ClientSession, rounds: int, rng: random.Random, console: Console) -> list[Contact]:
    contacts: list[Contact] = []
    reasons = list(TRUTH)
    subscribers = await _subscriber_base(http, rng)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("contacts", total=rounds)
        for n in range(rounds):
            reason = rng.choice(reasons)
            body = {"channel": "contact_center", "subscriber_id": rng.choice(subscribers), "event_id": f"demo-{n}",
                    "context": {"reason": reason, "reason_text": rng.choice(PHRASES[reason])}, "k": 20}
            async with http.post("/v1/decide", json=body) as response:
                response.raise_for_status()
                decision = await response.json()
            progress.advance(task)
            if not decision["ranking"]:
                continue
            served = decision["ranking"][0]["offer_id"]
            best = max((r["offer_id"] for r in decision["ranking"]), key=lambda o: accept_probability(reason, o))
            took = rng.random() < accept_probability(reason, served)
            contacts.append(Contact(reason, served, best, took))
            reward = {"event_id": decision["event_id"], "outcome": "accept" if took else "decline"}
            async with http.post("/v1/reward", json=reward) as response:
                response.raise_for_status()
    return contacts


async def _wait_learned(http: aiohttp.ClientSession, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get("/v1/stats") as response:
            stats = await response.json()
        joined = stats["counters"].get("events_joined", 0)
        if stats["model"]["examples_learned"] >= joined or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.1)


async def _report(http: aiohttp.ClientSession, contacts: list[Contact], stats: dict, console: Console) -> None:
    quarter = max(1, len(contacts) // 4)
    first, last = contacts[:quarter], contacts[-quarter:]
    table = Table(title=f"What the service learned: the last {quarter} contacts by call reason")
    for column in ("call reason", "served most", "served the best offer", "P(accept) served / best", "first quarter"):
        table.add_column(column, no_wrap=True)
    for reason in TRUTH:
        late = [c for c in last if c.reason == reason]
        early = [c for c in first if c.reason == reason]
        if not late:
            continue
        most = max(set(c.served for c in late), key=[c.served for c in late].count)
        hit = sum(c.served == c.best for c in late) / len(late)
        served_p = sum(accept_probability(reason, c.served) for c in late) / len(late)
        best_p = sum(accept_probability(reason, c.best) for c in late) / len(late)
        early_hit = sum(c.served == c.best for c in early) / max(1, len(early))
        table.add_row(reason, most, f"{'[green]' if hit >= 0.7 else '[red]'}{hit:.0%}",
                      f"{served_p:.2f} / {best_p:.2f}", f"{early_hit:.0%}")
    console.print(table)
    rate = lambda cs: sum(c.accepted for c in cs) / len(cs)  # noqa: E731
    oracle = sum(accept_probability(c.reason, c.best) for c in last) / len(last)
    console.print(f"acceptance rate: first {quarter} contacts {rate(first):.1%}, last {quarter} contacts "
                  f"{rate(last):.1%} (always serving the best eligible offer: {oracle:.1%}; "
                  f"epsilon-greedy exploration keeps 10% of contacts for learning)")
    console.print(f"model {stats['model']['version']}: {stats['model']['examples_learned']} examples learned, "
                  f"{stats['counters'].get('events_joined', 0)} rewards joined")
