"""Replay's memory: peak RSS of ``evaluate`` (what ``nextbest replay evaluate`` runs) by
the log's size and the number of candidates, so the growth with each is measured.

    .venv/bin/python bench/replay_memory.py                         # 100k, 300k, 1M events × 1, 3 candidates
    .venv/bin/python bench/replay_memory.py --events 100000 --candidates 1   # quick look

The log: ``--events`` synthetic service lines (``tests.test_replay_logs.service_line``,
the service's own record writer: one slot, three offers, a context of two features, a
logging PMF [0.2, 0.3, 0.5], Bernoulli rewards by offer), written once to
``--cache`` (default ``bench/results/.replay-memory``) and reused; a smaller size reads
the first lines of the largest file (a prefix is another log of its own).

Each run is one spawned child process running ``replay.evaluate.evaluate(log,
candidates, workers=...)`` (default: every core, as the CLI). Reported per run:
the child's peak RSS (VmHWM), the largest peak of its worker processes
(``RUSAGE_CHILDREN`` ru_maxrss: the pool's workers, reaped before ``evaluate``
returns), their sum (an upper bound of what the run held at once) and wall time.
With ``--workers 1`` every pass runs in the child itself, so its peak is the whole.
Writes bench/results/replay-memory-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path[:0] = [str(REPO), str(BENCH)]
from machine import code_info, machine_info, save_results  # noqa: E402

CANDIDATES = ["--epsilon 0.05 --interactions CO", "--squarecb --interactions CO", "--epsilon 0.2"]
LOGGED_PMF = [0.2, 0.3, 0.5]
ACCEPT = [0.1, 0.3, 0.2]   # P(reward 1) by offer


def write_log(path: Path, events: int, seed: int = 7) -> Path:
    """``events`` service lines into ``path`` (once: an existing file of as many lines is kept)."""
    import numpy as np

    from tests.test_replay_logs import service_line

    if path.exists() and path.with_suffix(".count").exists() and int(path.with_suffix(".count").read_text()) == events:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        for start in range(0, events, 10_000):
            size = min(10_000, events - start)
            chosen = rng.choice(3, size=size, p=LOGGED_PMF)
            rewards = rng.random(size) < np.take(ACCEPT, chosen)
            out.write(b"".join(service_line(start + i, chosen=int(c), pmf=LOGGED_PMF, reward=float(r))
                               for i, (c, r) in enumerate(zip(chosen, rewards))))
    tmp.replace(path)
    path.with_suffix(".count").write_text(str(events))
    return path


def prefix(source: Path, events: int) -> Path:
    """The first ``events`` lines of ``source``, as a log of its own (cached beside it)."""
    out = source.parent / f"{events}" / "decisions-20261208T000000.000000.dsjson"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(out.with_suffix(".tmp"), "wb") as dst:
        for _ in range(events):
            dst.write(src.readline())
    out.with_suffix(".tmp").replace(out)
    return out


def measure(log: str, candidates: list[str], workers: int | None) -> dict[str, Any]:
    """In a spawned child: one evaluation, its time and peak memory."""
    from replay.evaluate import evaluate

    started = time.perf_counter()
    result = evaluate(log, candidates, workers=workers)
    seconds = time.perf_counter() - started
    hwm = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"events": result.events, "candidates": len(candidates), "workers": result.workers,
            "seconds": round(seconds, 1), "peak_mb": round(hwm, 1), "worker_peak_mb": round(workers_peak, 1),
            "sum_mb": round(hwm + workers_peak, 1),
            "dr": {c.name: round(c.estimates["dr"].value, 6) for c in result.candidates}}


def report(result: dict[str, Any]) -> None:
    print(f"{'events':>9} {'cands':>5} {'workers':>7} {'seconds':>8} {'peak MB':>8} {'worker MB':>9} {'sum MB':>7}")
    for run in result["runs"]:
        print(f"{run['events']:>9,} {run['candidates']:>5} {run['workers']:>7} {run['seconds']:>8.1f} "
              f"{run['peak_mb']:>8.1f} {run['worker_peak_mb']:>9.1f} {run['sum_mb']:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 3], choices=[1, 2, 3])
    parser.add_argument("--workers", type=int, default=None, help="default: every core, as the CLI")
    parser.add_argument("--cache", type=Path, default=RESULTS / ".replay-memory")
    args = parser.parse_args()
    largest = write_log(args.cache / "all.dsjson", max(args.events))
    runs = []
    context = get_context("spawn")
    for events in args.events:
        log = prefix(largest, events)
        for count in args.candidates:
            with ProcessPoolExecutor(1, mp_context=context) as pool:   # a fresh process: its own peak
                runs.append(pool.submit(measure, str(log.parent), CANDIDATES[:count], args.workers).result())
            print(runs[-1], flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    save_results({"machine": machine_info(), "code": code_info(), "pid": os.getpid(), "runs": runs},
                 RESULTS / f"replay-memory-{stamp}.json", report)


if __name__ == "__main__":
    main()
