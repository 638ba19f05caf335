"""``nextbest simulate``: the whole run — world, service, traffic, summary, report."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from simulator.drive import Driver, SimulationError, load_over_http
from simulator.service import LocalService, fresh_data_dir
from simulator.summary import curves, summarize
from simulator.world import generate_base, generate_contacts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "telecom"
EXAMPLE_CATALOG = EXAMPLES / "catalog.yaml"
EXAMPLE_CONFIG = EXAMPLES / "nextbest.yaml"
WAIT_SIMULATED_SECONDS = 900.0   # the service's reward wait, in simulated time
# Slots per channel for the simulator's own service (its `slots` setting): the contact
# center's agent pitches three offers, web self-care and search show three; USSD one.


@dataclass(frozen=True)
class SimulationConfig:
    contacts: int = 20_000
    seed: int = 7
    subscribers: int = 100_000
    concurrency: int = 8
    rate: float = 0.0             # contacts per second; 0: as fast as the service answers
    time_scale: float = 0.002     # real seconds per simulated second (reply delays, the reward wait)
    url: str | None = None        # a running service; None: start one on a fresh embedded Redis
    api_key: str | None = None    # for a service with API keys (admin scope: loads profiles, reads offers)
    data_dir: Path = Path("nextbest-data/simulate")
    config_file: Path = EXAMPLE_CONFIG
    catalog: Path = EXAMPLE_CATALOG
    service_settings: Mapping[str, Any] = field(default_factory=dict)   # for the own service, e.g. exploration
    json_path: Path | None = None
    report_dir: Path | None = None
    progress: bool = True
    service_port: int | None = None   # the own service's port; None: a free one


Hold = Callable[[str, list[str], dict[str, Any]], Awaitable[None]]   # (url, subscriber ids to try, result)


async def run_simulation(config: SimulationConfig, console: Console | None = None,
                         hold: Hold | None = None) -> dict[str, Any]:
    """Run it and return the result (also written to ``json_path`` and ``report_dir``).
    ``hold(url, subscriber_ids, result)``, if given, runs after the traffic while the service is still up."""
    if config.contacts < 1 or config.subscribers < 1:
        raise ValueError("contacts and subscribers must be positive")
    console = console or Console(stderr=True)
    base = generate_base(config.subscribers, config.seed)
    contacts = generate_contacts(base, config.contacts, config.seed)
    examples = [str(base.ids[i]) for i in range(min(3, len(base)))]
    if config.url is not None:
        result = await _drive(config, config.url, base, contacts, console, load=True)
        _write(config, result, console)
        if hold is not None:
            await hold(config.url, examples, result)
    else:
        data_dir = fresh_data_dir(config.data_dir)
        # busy_poll_us 0: the simulated channels share this machine's cores with the service,
        # and a service polling while it waits would take CPU from them (docs/operations.md)
        settings = {"reward_wait_seconds": WAIT_SIMULATED_SECONDS * config.time_scale, "busy_poll_us": 0,
                    **config.service_settings}
        service = LocalService(data_dir, config.config_file, config.catalog, settings, port=config.service_port)
        async with service as url:
            await _load_with_loader(config, data_dir, base, console)
            result = await _drive(config, url, base, contacts, console, load=False)
            if hold is not None:   # before the report, which tells a watcher the demo is serving
                await _serve_people(service, settings, config, console)
            _write(config, result, console)
            if hold is not None:
                await hold(url, examples, result)
    return result


async def _serve_people(service: LocalService, settings: dict[str, Any], config: SimulationConfig,
                        console: Console) -> None:
    """People answer in seconds of real time, not the simulation's scaled ones: the held
    service gets the configured reward wait back (unless ``--set`` chose one)."""
    if "reward_wait_seconds" in config.service_settings:
        return
    from bandit.config import load_settings

    simulated = settings["reward_wait_seconds"]
    configured = load_settings(config.config_file).reward_wait_seconds
    await service.restart({k: v for k, v in settings.items() if k != "reward_wait_seconds"})
    console.print(f"reward wait: {simulated:g} s during the simulation, now {configured:g} s (the configured "
                  "wait) for people answering at the desktop")


async def _load_with_loader(config: SimulationConfig, data_dir: Path, base: Any, console: Console) -> None:
    """The synthetic base through the real bulk loader, into the service's embedded Redis."""
    from bandit.config import load_settings
    from bandit.loader import load_into_redis

    settings = load_settings(config.config_file, overrides={"data_dir": data_dir})
    with tempfile.TemporaryDirectory() as scratch:
        path = base.write_parquet(Path(scratch) / "subscribers.parquet")
        report = await load_into_redis(settings, path, settings.features, progress=config.progress)
    if report.skipped:
        raise SimulationError(f"the loader skipped {report.skipped} synthetic profiles: {report.errors[:3]}")
    console.print(f"loaded {report.loaded:,} subscriber profiles in {report.seconds:.1f} s")


async def _drive(config: SimulationConfig, url: str, base: Any, contacts: list, console: Console,
                 load: bool) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    connector = aiohttp.TCPConnector(limit=config.concurrency * 4)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as http:
        values = await _offer_values(http)
        with _progress(console, config.progress) as progress:
            if load:
                task = progress.add_task("subscribers", total=len(base))
                await load_over_http(http, base, advance=lambda n: progress.advance(task, n))
            task = progress.add_task("contacts", total=len(contacts))
            driver = Driver(http, base, values, seed=config.seed, concurrency=config.concurrency,
                            time_scale=config.time_scale, rate=config.rate)
            started = time.perf_counter()
            outcomes = await driver.run(contacts, advance=lambda n: progress.advance(task, n))
            seconds = time.perf_counter() - started
        service = await _service_state(http)
    latencies = sorted(driver.stats.decide_seconds)
    return {
        "seed": config.seed, "url": config.url, "settings": _settings_json(config),
        "summary": summarize(outcomes, values), "curves": curves(outcomes, values),
        "run": {"seconds": round(seconds, 2), "contacts_per_second": round(len(outcomes) / seconds, 1),
                "decide_p50_ms": round(1000 * latencies[len(latencies) // 2], 2) if latencies else None,
                "decide_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2) if latencies else None,
                "rewards_posted": driver.stats.rewards_posted, "rewards_late": driver.stats.rewards_late},
        "service": service, "offer_values": values,
    }


async def _offer_values(http: aiohttp.ClientSession) -> dict[str, float]:
    async with http.get("/v1/offers") as response:
        if response.status in (401, 403):
            raise SimulationError("the service wants an API key with the admin scope to list its offers: "
                                  "pass --api-key")
        if response.status != 200:
            raise SimulationError(f"GET /v1/offers: HTTP {response.status}: {(await response.text())[:300]}")
        body = await response.json()
    if not body["offers"]:
        raise SimulationError("the service's catalog has no offers: load one (serve --catalog FILE)")
    return {offer["id"]: float(offer.get("value", 1.0)) for offer in body["offers"]}


async def _service_state(http: aiohttp.ClientSession, timeout: float = 30.0) -> dict[str, Any]:
    """The model after the run, once the learner has caught up with what was joined."""
    deadline = time.monotonic() + timeout
    while True:
        async with http.get("/v1/stats") as response:
            stats = await response.json() if response.status == 200 else {}
        counters, model = stats.get("counters", {}), stats.get("model", {})
        if model.get("examples_learned", 0) >= counters.get("events_joined", 0) or time.monotonic() > deadline:
            return {"model": model, "counters": counters}
        await asyncio.sleep(0.2)


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not enabled)


def _settings_json(config: SimulationConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else dict(v) if isinstance(v, Mapping) else v)
            for k, v in asdict(config).items() if k not in ("api_key", "progress", "service_port")}


def _write(config: SimulationConfig, result: dict[str, Any], console: Console) -> None:
    if config.json_path is not None:
        config.json_path.parent.mkdir(parents=True, exist_ok=True)
        config.json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    if config.report_dir is not None:
        from simulator.report import write_report

        result["report"] = str(write_report(result, config.report_dir))
