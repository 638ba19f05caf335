"""The light-load tax: the same unit of work timed back to back and with idle gaps
between calls, as requests arrive at a moderate rate.

A request served alone after an idle moment finds the core's caches and predictors
holding something else (on a VM, an idle vCPU halts and the host runs other work on
that core). This measures that effect on the decide path's own steps, with no HTTP,
Redis or event loop involved: if a fixed piece of work (a VW prediction over the
benchmark's offers) takes twice as long when calls are 300 µs apart, the CPU per
request at half load cannot be the CPU per request at full load, whatever the
service does (bench/NOTES.md, "the light-load tax").

    .venv/bin/python bench/coldpath.py [--cpu 1] [--calls 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from machine import RESULTS, code_info, machine_info, save_results
from payload import decide_body, offers_json

# Gap kinds: how the time between two calls is spent.
MODES: tuple[tuple[str, float, str], ...] = (
    ("back to back", 0.0, "none"),
    ("100 µs sleep", 100e-6, "sleep"),
    ("300 µs sleep", 300e-6, "sleep"),
    ("1 ms sleep", 1e-3, "sleep"),
    ("300 µs spin", 300e-6, "spin"),
)


def timed_with_gaps(work: Callable[[], Any], calls: int, gap: float, kind: str) -> float:
    """Median µs of one call of ``work``, with ``gap`` seconds of sleep or spin between calls."""
    samples = []
    clock = time.perf_counter
    for _ in range(calls):
        start = clock()
        work()
        samples.append(clock() - start)
        if kind == "sleep":
            time.sleep(gap)
        elif kind == "spin":
            end = clock() + gap
            while clock() < end:
                pass
    return statistics.median(samples) * 1e6


def workloads(offers: int) -> dict[str, Callable[[], Any]]:
    from bandit.config import Settings
    from bandit.decide.schemas import DecideRequest, decode, decode_feature_map
    from policies import vwtext
    from policies.learner import Learner

    body = decide_body(offers_json(offers), "cold", 0, 1)
    request = decode(body, DecideRequest)
    learner = Learner(Settings().learner)
    shared = vwtext.shared_line({vwtext.CONTEXT_NAMESPACE: vwtext.encode_features(
        {**request.context, "channel": request.channel})})
    lines = [vwtext.action_line(vwtext.encode_offer(o.id, decode_feature_map(bytes(o.features))))
             for o in request.offers or []]
    return {
        "VW predict (Learner.predict_one)": lambda: learner.predict_one(shared, lines),
        "request decode (schemas.decode)": lambda: decode(body, DecideRequest),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=1 if (os.cpu_count() or 1) > 1 else 0,
                        help="pin to this CPU (the one the service runs on in bench/service.py) [1]")
    parser.add_argument("--calls", type=int, default=2000, help="calls per mode and round [2000]")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all modes [3]")
    parser.add_argument("--offers", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.calls < 10 or args.rounds < 1:
        parser.error("--calls must be >= 10 and --rounds >= 1")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    work = workloads(args.offers)
    for fn in work.values():   # warm up: first-call costs are not the subject
        timed_with_gaps(fn, 500, 0.0, "none")
    rows: dict[str, dict[str, list[float]]] = {name: {mode: [] for mode, _, _ in MODES} for name in work}
    for round_number in range(args.rounds):
        print(f"[coldpath] round {round_number + 1}/{args.rounds}", file=sys.stderr)
        for name, fn in work.items():
            for mode, gap, kind in MODES:
                rows[name][mode].append(timed_with_gaps(fn, args.calls, gap, kind))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "bench": "coldpath", "stamp": stamp, "machine": machine_info(), "code": code_info(), "cpu": args.cpu,
        "calls": args.calls, "rounds": args.rounds, "offers": args.offers,
        "median_us": {name: {mode: round(statistics.median(v), 2) for mode, v in modes.items()}
                      for name, modes in rows.items()},
        "rounds_us": {name: {mode: [round(x, 2) for x in v] for mode, v in modes.items()}
                      for name, modes in rows.items()},
    }
    save_results(result, args.out or RESULTS / f"coldpath-{stamp}.json", report)


def report(result: dict) -> None:
    print(f"\nmedian µs per call (median of {result['rounds']} rounds x {result['calls']} calls), "
          f"CPU {result['cpu']}, {result['machine']['cpu_model']}")
    for name, modes in result["median_us"].items():
        base = modes["back to back"]
        print(f"  {name}")
        for mode, us in modes.items():
            print(f"    {mode:<14} {us:8.2f}   x{us / base:4.2f}")


if __name__ == "__main__":
    main()
