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
from pathlib import Path

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bandit.app import create_app
from bandit.config import Settings
from bandit.embedded import EmbeddedRedis

EXAMPLE_CATALOG = Path(__file__).resolve().parents[1] / "examples" / "telecom" / "catalog.yaml"

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
BASE_RATE = 0.02
TARIFFS = ["smart", "super", "basic"]
SERVICES = ["home_cities", "favourite_country", "balance_control", "sms_pack"]


def accept_probability(reason: str, offer_id: str) -> float:
    return TRUTH[reason].get(offer_id, BASE_RATE)


def caller(rng: random.Random) -> dict:
    """A caller's features; until the feature store lands they travel in the context."""
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
            accepted = await _drive(http, rounds, random.Random(seed), console)
            learned = await _wait_learned(http)
            await _report(http, accepted, learned, console)
    finally:
        await runner.cleanup()
    return True


async def _drive(http: aiohttp.ClientSession, rounds: int, rng: random.Random, console: Console) -> list[int]:
    accepted: list[int] = []
    reasons = list(TRUTH)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("contacts", total=rounds)
        for n in range(rounds):
            reason = rng.choice(reasons)
            body = {"channel": "contact_center", "subscriber_id": f"7900{rng.randrange(10**7):07d}",
                    "context": {"reason": reason, **caller(rng)}, "event_id": f"demo-{n}"}
            async with http.post("/v1/decide", json=body) as response:
                response.raise_for_status()
                decision = await response.json()
            served = decision["ranking"][0]["offer_id"]
            took = rng.random() < accept_probability(reason, served)
            accepted.append(int(took))
            reward = {"event_id": decision["event_id"], "outcome": "accept" if took else "decline"}
            async with http.post("/v1/reward", json=reward) as response:
                response.raise_for_status()
            progress.advance(task)
    return accepted


async def _wait_learned(http: aiohttp.ClientSession, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get("/v1/stats") as response:
            stats = await response.json()
        joined = stats["counters"].get("events_joined", 0)
        if stats["model"]["examples_learned"] >= joined or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.1)


async def _report(http: aiohttp.ClientSession, accepted: list[int], stats: dict, console: Console) -> None:
    table = Table(title="What the service learned: its top offer per call reason (smart tariff, 2 years)")
    for column in ("call reason", "top offer now", "P(serve)", "truly best", "P(accept) top/best"):
        table.add_column(column, no_wrap=True)
    typical = {"tariff": "smart", "balance": 120.0, "tenure_months": 24, "services": []}
    for reason in TRUTH:
        body = {"channel": "contact_center", "context": {"reason": reason, **typical}, "k": 20}
        async with http.post("/v1/decide", json=body) as response:
            ranking = (await response.json())["ranking"]
        top = max(ranking, key=lambda r: r["probability"])
        best = max((r["offer_id"] for r in ranking), key=lambda o: accept_probability(reason, o))
        mark = "[green]" if top["offer_id"] == best else "[red]"
        table.add_row(reason, f"{mark}{top['offer_id']}", f"{top['probability']:.2f}", best,
                      f"{accept_probability(reason, top['offer_id']):.2f} / {accept_probability(reason, best):.2f}")
    console.print(table)
    quarter = max(1, len(accepted) // 4)
    first, last = accepted[:quarter], accepted[-quarter:]
    console.print(f"acceptance rate: first {quarter} contacts {sum(first) / len(first):.1%}, "
                  f"last {quarter} contacts {sum(last) / len(last):.1%}")
    console.print(f"model {stats['model']['version']}: {stats['model']['examples_learned']} examples learned, "
                  f"{stats['counters'].get('events_joined', 0)} rewards joined")
