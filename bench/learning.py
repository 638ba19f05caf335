"""Proof of learning at full size: the telecom simulation once per exploration algorithm.

    python bench/learning.py [--contacts 50000] [--seed 7] [--algorithms epsilon,softmax,...]

Each run starts the simulator's own service (example catalog and settings, a fresh
embedded Redis) with one algorithm and reports the share of the random → oracle gap in
value per decision the learned policy closed over the last 20% of the run. Results go
to bench/results/learning-<time>.json; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policies.exploration import ALGORITHMS  # noqa: E402
from simulator.run import SimulationConfig, run_simulation  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


async def main(contacts: int, seed: int, algorithms: list[str], subscribers: int) -> dict:
    console = Console(stderr=True)
    runs = {}
    for algorithm in algorithms:
        console.print(f"[bold]{algorithm}[/]: {contacts:,} contacts")
        config = SimulationConfig(contacts=contacts, seed=seed, subscribers=subscribers,
                                  data_dir=Path(f"nextbest-data/bench-learning-{algorithm}"),
                                  service_settings={"exploration": algorithm})
        started = time.perf_counter()
        result = await run_simulation(config, console)
        summary = result["summary"]
        runs[algorithm] = {
            "gap_closed": summary["gap_closed"],
            "value_per_decision": {p: v["value_per_decision"] for p, v in summary["policies"].items()},
            "value_per_decision_last": {p: v["value_per_decision_last"] for p, v in summary["policies"].items()},
            "lift_over_control": summary["lift_over_control"], "contacts_per_second": result["run"]["contacts_per_second"],
            "seconds": round(time.perf_counter() - started, 1),
        }
    table = Table(title=f"share of the random → oracle gap closed, last 20% of {contacts:,} contacts (seed {seed})")
    for column in ("algorithm", "gap closed", "learned", "random", "oracle", "contacts/s"):
        table.add_column(column, justify="right")
    for algorithm, run in runs.items():
        last = run["value_per_decision_last"]
        table.add_row(algorithm, f"{run['gap_closed']:.1%}", f"{last['learned']:.2f}", f"{last['random']:.2f}",
                      f"{last['oracle']:.2f}", f"{run['contacts_per_second']:.0f}")
    Console().print(table)
    return {"contacts": contacts, "seed": seed, "subscribers": subscribers, "runs": runs,
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version()}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    args = parser.parse_args()
    chosen = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = [a for a in chosen if a not in ALGORITHMS]
    if unknown:
        parser.error(f"unknown algorithm(s) {', '.join(unknown)}; expected some of {', '.join(ALGORITHMS)}")
    out = asyncio.run(main(args.contacts, args.seed, chosen, args.subscribers))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"learning-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    print(f"results: {path}")
