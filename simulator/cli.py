"""``nextbest simulate`` and ``nextbest demo`` (registered on the main CLI)."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from simulator.drive import SimulationError
from simulator.run import EXAMPLE_CATALOG, EXAMPLE_CONFIG, SimulationConfig, run_simulation
from simulator.service import ServiceError
from simulator.summary import LABELS, num, num3



def _settings(pairs: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        settings[key.strip()] = value.strip()
    return settings


_OPTIONS = [
    click.option("--contacts", type=click.IntRange(min=1), default=20_000, show_default=True,
                 help="Contacts to simulate."),
    click.option("--seed", type=int, default=7, show_default=True, help="Seed of the base, the contacts, the truth."),
    click.option("--subscribers", type=click.IntRange(min=1), default=100_000, show_default=True,
                 help="Size of the synthetic subscriber base."),
    click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
                 help="Contacts in flight at once."),
    click.option("--rate", type=click.FloatRange(min=0), default=0.0, show_default=True,
                 help="Contacts per second (0: as fast as the service answers)."),
    click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=0.002, show_default=True,
                 help="Real seconds per simulated second, for reply delays and the service's reward wait."),
    click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                 help="A setting of the simulator's own service, e.g. --set exploration=softmax (repeatable)."),
    click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                 help="Data directory of the simulator's own service (wiped if a simulation made it)."),
    click.option("--quiet", is_flag=True, help="No progress bars."),
]


def simulation_options(func: Any) -> Any:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


@click.command()
@simulation_options
@click.option("--url", help="Drive this running service instead of starting one (profiles go in over HTTP).")
@click.option("--api-key", envvar="NEXTBEST_API_KEY", help="API key for --url (admin scope: profiles, offers).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the result here.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write report.html (plots) into this directory.")
def simulate(contacts: int, seed: int, subscribers: int, concurrency: int, rate: float, time_scale: float,
             settings: tuple[str, ...], data_dir: Path | None, quiet: bool, url: str | None, api_key: str | None,
             json_path: Path | None, report_dir: Path | None) -> None:
    """Simulate the telecom scenario against the service: a synthetic subscriber base, a
    hidden truth of who accepts what, contacts over HTTP, rewards with realistic delays;
    compares the learned policy with the control group, random, business priority and
    the oracle."""
    config = SimulationConfig(contacts=contacts, seed=seed, subscribers=subscribers, concurrency=concurrency,
                              rate=rate, time_scale=time_scale, url=url, api_key=api_key, json_path=json_path,
                              report_dir=report_dir, service_settings=_settings(settings), progress=not quiet,
                              **({"data_dir": data_dir} if data_dir else {}))
    run(config)


@click.command()
@simulation_options
@click.option("--serve", is_flag=True, help="Keep the service up afterwards (Ctrl-C stops it).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port of the service with --serve. [a free one]")
def demo(contacts: int, seed: int, subscribers: int, concurrency: int, rate: float, time_scale: float,
         settings: tuple[str, ...], data_dir: Path | None, quiet: bool, serve: bool, port: int | None) -> None:
    """The telecom story end to end: the service on a fresh embedded Redis with the example
    catalog and schema, the synthetic base through the loader, a simulated contact center,
    web self-care, search and USSD, and what the service learned."""
    if not EXAMPLE_CATALOG.exists() or not EXAMPLE_CONFIG.exists():
        raise click.ClickException(f"the example files in {EXAMPLE_CATALOG.parent} are missing: run the demo "
                                   "from a checkout")
    data_dir = data_dir or Path("nextbest-data/demo")
    config = SimulationConfig(contacts=contacts, seed=seed, subscribers=subscribers, concurrency=concurrency,
                              rate=rate, time_scale=time_scale, data_dir=data_dir,
                              service_settings=_settings(settings), progress=not quiet)
    report = data_dir.parent / f"{data_dir.name}-report"
    config = replace(config, json_path=report / "summary.json", report_dir=report, service_port=port)
    run(config, hold=_hold if serve else None)


async def _hold(url: str, subscribers: list[str], result: dict[str, Any]) -> None:
    print_summary(result, _stdout_console())
    Console(stderr=True).print(f"[bold]the service keeps running on {url}[/] (Ctrl-C stops it):\n"
                               f"  agent desktop  {url}/ui/agent\n  dashboard      {url}/ui/\n"
                               f"  API            {url}/v1/openapi.json   metrics {url}/metrics\n"
                               f"  subscribers of the synthetic base, to try: {', '.join(subscribers)}")
    await asyncio.Event().wait()


def run(config: SimulationConfig, hold: Any = None) -> None:
    console = Console(stderr=True)
    # SIGTERM like Ctrl-C: the run unwinds and stops its own service and embedded Redis
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = asyncio.run(run_simulation(config, console, hold=hold))
    except KeyboardInterrupt:
        sys.exit(130)
    except (SimulationError, ServiceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if hold is None:   # a held run printed its summary before holding
        print_summary(result, _stdout_console())


def _stdout_console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 120)


def print_summary(result: dict[str, Any], console: Console) -> None:
    s = result["summary"]
    table = Table(title=f"{s['contacts']:,} contacts, {s['decisions']:,} decisions, "
                        f"{s['slots_per_decision']:.2f} slots per decision (seed {result['seed']})")
    for column in ("policy", "decisions", "taken / decision", "slate value / decision", "last 20%"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, p in s["policies"].items():
        table.add_row(LABELS[name], f"{p['decisions']:,}", num3(p["acceptances_per_decision"]),
                      num(p["value_per_decision"]), num(p["value_per_decision_last"]))
    console.print(table)
    if s["gap_closed"] is not None:
        console.print(f"gap closed (last 20%): [bold]{s['gap_closed']:.0%}[/] of the way from a uniformly random "
                      "slate to the oracle's, in slate value per decision")
    if lift := s.get("lift_over_control"):
        v, conf = lift["value_per_decision"], 1 - lift["alpha"]
        console.print(f"lift over control (observed): value per decision {v['difference']:+.2f} "
                      f"({conf:.0%} CI {v['lower']:+.2f} … {v['upper']:+.2f}), offers taken per decision "
                      f"{lift['acceptances_per_decision']['difference']:+.3f}")
    model = result.get("service", {}).get("model", {})
    run_info = result["run"]
    console.print(f"{run_info['contacts_per_second']:,.0f} contacts/s; model {model.get('version')} learned "
                  f"{model.get('examples_learned', 0):,} examples")
    if "report" in result:
        console.print(f"report: {result['report']}")

