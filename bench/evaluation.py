"""Replay at scale: off-policy estimators over 10 million events in bounded memory, and
how fast VW candidates train over a service decision log, against reading it alone.

    .venv/bin/python bench/evaluation.py                                  # full size (≈ 3 minutes)
    .venv/bin/python bench/evaluation.py --events 2000000 --log-events 20000   # quick look

1. ``stream``: ``--events`` synthetic logged events (numpy, seeded per chunk: K actions,
   a logging PMF with a 5 % uniform floor, a target PMF, Bernoulli rewards, a noisy reward
   model) generated one ``--chunk`` at a time and fed to ``replay.streaming.StreamingAll``
   (ips, snips, dm, dr, switch_dr) in ``update`` calls of ``--feed`` events. Wall time,
   events/s, peak RSS after the first chunk and at the end: their difference is what the
   other n − chunk events cost (≈ 0). Then the first chunk again, fed in slices of 1M,
   100k, 10k and 1k events, and the share of that time in the input checks.
2. ``batch``: ``replay.estimators.estimate_all`` on ``--batch-events`` of the same events
   (the batch API holds them all), its time and memory, and how far the streamed estimate
   of the same events is from it.
3. ``log``: a service-format DSJSON log of ``--log-events`` events (the generator of
   tests/test_replay_evaluate.py: 4 offers, 3 in a quarter of the events), then
   ``read_logs`` alone (events/s, measured before and after: the reference), and
   ``replay.evaluate.evaluate(path, [candidate], baselines=False, workers=1)`` per
   ``--candidate``: the candidate pass's events/s and its ratio to the reader's (read
   before the first candidate and after each: a ratio uses the readings around it), and
   the same pass run alone (``replay.candidates.run_pass``) in CPU time, which the
   other jobs on a shared machine disturb far less than wall time.

Each part runs in its own spawned process, so ``ru_maxrss`` is that part's own peak.
Writes bench/results/replay-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path[:0] = [str(REPO), str(BENCH)]   # the packages, and bench/machine.py for the machine and code records
from machine import QUIET, code_info, cpu_busy, machine_info, save_results  # noqa: E402

CANDIDATES = ["--epsilon 0.05 --interactions CO --interactions SO",
              "--squarecb --interactions CO --interactions SO",
              "--cover 3 --interactions CO"]
FLOOR = 0.05   # logging PMF: (1 − FLOOR)·softmax + FLOOR/K, so p ≥ FLOOR/K and weights ≤ K/FLOOR


def rss_mb() -> dict[str, float]:
    """Peak (ru_maxrss) and current (VmRSS) resident memory of this process, MB."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "current_mb": current}


def reset_peak() -> bool:
    """Linux: set the peak RSS back to the current RSS, so the next peak is one step's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def softmax(scores: np.ndarray) -> np.ndarray:
    out = np.exp(scores - scores.max(axis=1, keepdims=True))
    out /= out.sum(axis=1, keepdims=True)
    return out


def synthetic_chunk(seed: int, index: int, size: int, k: int) -> tuple[np.ndarray, ...]:
    """Events of chunk ``index``: (rewards, logged_p, actions, target_pmf, reward_hat).
    Seeded by (seed, index), so any chunk is reproducible without the ones before."""
    rng = np.random.default_rng([seed, index])
    scores = rng.normal(size=(size, k))
    logging = softmax(scores)
    logging *= 1.0 - FLOOR
    logging += FLOOR / k
    u = rng.random(size)
    actions = np.minimum((u[:, None] > logging.cumsum(axis=1)).sum(axis=1), k - 1)
    rows = np.arange(size)
    logged_p = logging[rows, actions]
    del logging
    target = softmax(2.0 * scores + rng.normal(size=(size, k)))
    means = 1.0 / (1.0 + np.exp(-scores))          # true reward rate of each action
    del scores
    rewards = (rng.random(size) < means[rows, actions]).astype(float)
    means += rng.normal(0.0, 0.05, size=(size, k))   # the reward model: truth plus noise
    return rewards, logged_p, actions, target, means


def feed(estimators: Any, data: tuple[np.ndarray, ...], size: int) -> None:
    """One generated chunk to ``update`` in slices of ``size`` events."""
    for start in range(0, data[0].size, size):
        estimators.update(*(array[start : start + size] for array in data))


def best_cpu_seconds(action: Any, repeats: int = 3) -> float:
    """The least CPU time of a few runs: on a shared machine wall time mostly measures the others."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def stream_stage(events: int, chunk: int, feed_size: int, k: int, seed: int) -> dict[str, Any]:
    from replay.inputs import check_with_model as _with_model
    from replay.streaming import StreamingAll

    out: dict[str, Any] = {"events": events, "chunk": chunk, "feed": feed_size, "k": k, "at_start": rss_mb()}
    estimators = StreamingAll()
    generate = update = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    for index, start in enumerate(range(0, events, chunk)):
        t0 = time.perf_counter()
        data = synthetic_chunk(seed, index, min(chunk, events - start), k)
        t1 = time.perf_counter()
        if index == 0:   # the generator's temporaries peak here; then the peak is reset for the update's
            out["after_first_chunk_generated"] = rss_mb()
            out["peak_reset"] = reset_peak()
        feed(estimators, data, feed_size)
        generate, update = generate + t1 - t0, update + time.perf_counter() - t1
        if index == 0:
            out["after_first_update"] = rss_mb()
            out["first_chunk_peak_mb"] = max(out["after_first_update"]["peak_mb"],
                                             out["after_first_chunk_generated"]["peak_mb"])
        del data
    out["wall_seconds"] = time.perf_counter() - started
    out["cpu_seconds"] = time.process_time() - cpu_started
    out.update(generate_seconds=generate, update_seconds=update, events_per_second=events / out["wall_seconds"],
               update_events_per_second=events / update, at_end=rss_mb(),
               estimates={name: e.to_json() for name, e in estimators.result().items()})
    # After the run (its peak is recorded): the first chunk again, fed in slices of several sizes,
    # and the batch API's input checks alone (one call per slice); CPU time, best of 3.
    data = synthetic_chunk(seed, 0, min(chunk, events), k)
    n = data[0].size
    out["feed_sweep"] = {}
    for size in sorted({n, 100_000, 10_000, 1_000} & set(range(1, n + 1)), reverse=True):
        update_s = best_cpu_seconds(lambda size=size: feed(StreamingAll(), data, size))
        checks_s = best_cpu_seconds(lambda size=size: [_with_model(*(a[i : i + size] for a in data))
                                                   for i in range(0, n, size)])
        out["feed_sweep"][size] = {"events_per_cpu_second": n / update_s, "checks_share": checks_s / update_s}
    return out


def batch_stage(events: int, feed_size: int, k: int, seed: int) -> dict[str, Any]:
    from replay.estimators import estimate_all
    from replay.streaming import StreamingAll

    out: dict[str, Any] = {"events": events, "k": k, "at_start": rss_mb()}
    data = synthetic_chunk(seed, 0, events, k)   # the stream's first chunk when events == --chunk
    out["data_mb"] = sum(array.nbytes for array in data) / 2**20
    out["after_generated"] = rss_mb()
    out["peak_reset"] = reset_peak()
    started, cpu_started = time.perf_counter(), time.process_time()
    batch = estimate_all(*data)
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - started, time.process_time() - cpu_started
    out["events_per_second"] = events / out["seconds"]
    out["after_estimate_all"] = rss_mb()
    out["working_mb"] = out["after_estimate_all"]["peak_mb"] - out["after_generated"]["current_mb"]
    streamed = StreamingAll()
    started, cpu_started = time.perf_counter(), time.process_time()
    feed(streamed, data, feed_size)
    got = streamed.result()
    out["streamed_seconds"] = time.perf_counter() - started
    out["streamed_cpu_seconds"] = time.process_time() - cpu_started
    out["streamed_feed"] = feed_size
    out["max_relative_difference"] = max(
        abs(getattr(got[m], f) - getattr(batch[m], f)) / max(1e-300, abs(getattr(batch[m], f)))
        for m in batch for f in ("value", "lower", "upper", "se"))
    out["estimates"] = {name: e.to_json() for name, e in batch.items()}
    return out


def log_stage(events: int, candidates: list[str], directory: str, quiet: float) -> dict[str, Any]:
    from replay.candidates import Pass, policy_args, run_pass
    from replay.evaluate import evaluate
    from replay.logs import read_logs
    from tests.test_replay_evaluate import write_log

    path = Path(directory) / "decisions.dsjson"
    started = time.perf_counter()
    write_log(path, n=events, seed=7)
    out: dict[str, Any] = {"events": events, "bytes": path.stat().st_size,
                           "write_seconds": time.perf_counter() - started}

    def read() -> dict[str, Any]:
        waited = wait_quiet(quiet)
        t0, c0, n = time.perf_counter(), time.process_time(), 0
        for chunk in read_logs(path):
            n += len(chunk)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"events": n, "seconds": seconds, "cpu_seconds": cpu, "events_per_second": n / seconds,
                "events_per_cpu_second": n / cpu, "quiet": waited}

    # The reader is measured before the first candidate and after each one: a candidate's
    # ratio uses the two readings around it, so drift on a shared machine cancels out.
    out["reads"] = [read()]
    out["candidates"] = []
    for args in candidates:
        waited = wait_quiet(quiet)
        t0, c0 = time.perf_counter(), time.process_time()
        result = evaluate(path, [args], baselines=False, workers=1)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        [policy] = result.candidates
        c0 = time.process_time()   # the candidate's pass alone again, in CPU time: robust to the others
        alone = run_pass(Pass(1, "policy", policy_args(args), str(path)))
        pass_cpu = time.process_time() - c0
        out["reads"].append(read())
        around = out["reads"][-2:]
        reference = sum(r["events_per_second"] for r in around) / 2
        reference_cpu = sum(r["events_per_cpu_second"] for r in around) / 2
        out["candidates"].append({
            "args": args, "events": policy.value.n, "pass_seconds": policy.seconds,
            "events_per_second": policy.events_per_second, "evaluate_seconds": total, "evaluate_cpu_seconds": cpu,
            "cpu_share": cpu / total, "reading_events_per_second": reference,
            "ratio_to_reading": policy.events_per_second / reference, "pass_cpu_seconds": pass_cpu,
            "events_per_cpu_second": alone.events / pass_cpu, "reading_events_per_cpu_second": reference_cpu,
            "cpu_ratio_to_reading": alone.events / pass_cpu / reference_cpu,
            "quiet": waited, "dr": policy.value.to_json()})
        print(f"  {args}: {policy.events_per_second:,.0f} events/s, reading {reference:,.0f}", flush=True)
    return out


def wait_quiet(limit: float) -> dict[str, float] | None:
    """Wait (up to ``limit`` s) until other processes use less than QUIET cores over one
    second (this process sleeps meanwhile, so the busy time is theirs)."""
    if limit <= 0:
        return None
    waited = 0.0
    while True:
        before = sum(busy for busy, _ in cpu_busy().values())
        time.sleep(1.0)
        others = sum(busy for busy, _ in cpu_busy().values()) - before
        waited += 1.0
        if others < QUIET or waited >= limit:
            return {"waited_seconds": waited, "others_cores": round(others, 2)}


def run_alone(function: Any, *args: Any) -> dict[str, Any]:
    """In a fresh spawned process, so its peak RSS is its own."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\nreplay bench {result['timestamp']}: {m['nproc']} x {m['cpu_model']}, Python {m['python']}")
    if (s := result.get("stream")) is not None:
        growth = s["at_end"]["peak_mb"] - s["first_chunk_peak_mb"] if s["events"] > s["chunk"] else math.nan
        print(f"\nstreaming estimators (all five), {s['events']:,} events generated in chunks of {s['chunk']:,}, "
              f"fed in slices of {s['feed']:,}, K = {s['k']}")
        print(f"  wall {s['wall_seconds']:.1f} s (CPU {s['cpu_seconds']:.1f} s) = {s['events_per_second']:,.0f} "
              f"events/s "
              f"(generating {s['generate_seconds']:.1f} s, estimators {s['update_seconds']:.1f} s = "
              f"{s['update_events_per_second']:,.0f} events/s)")
        sweep = ", ".join(f"{int(size):,}: {row['events_per_cpu_second'] / 1e6:.2f}M ({row['checks_share']:.0%} checks)"
                          for size, row in s["feed_sweep"].items())
        print(f"  events per update call → events per CPU-second (share in the input checks): {sweep}")
        print(f"  RSS: at start {s['at_start']['current_mb']:.0f} MB; first chunk generated: "
              f"{s['after_first_chunk_generated']['current_mb']:.0f} MB held, generator peak "
              f"{s['after_first_chunk_generated']['peak_mb']:.0f} MB; peak during its update "
              f"{s['after_first_update']['peak_mb']:.0f} MB")
        print(f"  peak RSS after the first chunk {s['first_chunk_peak_mb']:.0f} MB, at the end "
              f"{s['at_end']['peak_mb']:.0f} MB: growth over the last {s['events'] - s['chunk']:,} events "
              f"{growth:+.1f} MB; held at the end {s['at_end']['current_mb']:.0f} MB")
    if (b := result.get("batch")) is not None:
        print(f"\nbatch estimate_all, {b['events']:,} events: {b['seconds']:.2f} s (CPU {b['cpu_seconds']:.2f} s) = "
              f"{b['events_per_second']:,.0f} "
              f"events/s; data {b['data_mb']:.0f} MB (RSS {b['after_generated']['current_mb']:.0f} MB), peak "
              f"during estimate_all {b['after_estimate_all']['peak_mb']:.0f} MB (+{b['working_mb']:.0f} MB)")
        print(f"  the same events streamed in slices of {b['streamed_feed']:,}: {b['streamed_seconds']:.2f} s "
              f"(CPU {b['streamed_cpu_seconds']:.2f} s); "
              f"max relative difference from batch {b['max_relative_difference']:.1e}")
    if (g := result.get("log")) is not None:
        print(f"\nVW candidates over a {g['events']:,}-event service log ({g['bytes'] / 2**20:.0f} MiB)")
        reads = ", ".join(f"{r['events_per_second']:,.0f}" for r in g["reads"])
        print(f"  read_logs alone, before the first candidate and after each: {reads} events/s")
        print(f"  {'candidate':52} {'events/s':>9} {'reading':>9} {'ratio':>6} {'evaluate s':>10} {'CPU/wall':>8}"
              f" | per CPU-s: {'pass':>7} {'reading':>8} {'ratio':>6}")
        for row in g["candidates"]:
            print(f"  {row['args']:52} {row['events_per_second']:>9,.0f} {row['reading_events_per_second']:>9,.0f} "
                  f"{row['ratio_to_reading']:>6.2f} {row['evaluate_seconds']:>10.1f} {row['cpu_share']:>8.2f}"
                  f" | {'':10} {row['events_per_cpu_second']:>7,.0f} {row['reading_events_per_cpu_second']:>8,.0f} "
                  f"{row['cpu_ratio_to_reading']:>6.2f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="streamed events [10M]")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="events per chunk [1M]")
    parser.add_argument("--feed", type=int, default=10_000,
                        help="events per update call: each chunk is fed in slices of this size [10k]")
    parser.add_argument("--k", type=int, default=9, help="actions per event [9]")
    parser.add_argument("--batch-events", type=int, default=1_000_000, help="events for the batch API [1M]")
    parser.add_argument("--log-events", type=int, default=200_000, help="events in the DSJSON log [200k]")
    parser.add_argument("--candidate", action="append",
                        help='VW candidate arguments, as --candidate="--squarecb ..." (repeat) '
                             '[epsilon, squarecb, cover]')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", action="append", choices=("stream", "batch", "log"), default=[],
                        help="leave a part out (repeat)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each measurement wait up to this long for other processes to go quiet [0]")
    parser.add_argument("--label", help="free text stored with the results")
    parser.add_argument("--out", type=Path, help="result JSON [bench/results/replay-<time>.json]")
    args = parser.parse_args(argv)
    for name in ("events", "chunk", "feed", "k", "batch_events", "log_events"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {"timestamp": stamp, "command": " ".join([Path(sys.executable).name, *sys.argv]),
                              "label": args.label, "machine": machine_info(), "code": code_info(),
                              "options": {k: v for k, v in vars(args).items() if k != "out"} | {"out": None}}
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
        result["loadavg_at_start"] = [float(x) for x in load]
    except OSError:
        pass
    if "stream" not in args.skip:
        print(f"stream: {args.events:,} events ...", flush=True)
        result["stream_quiet"] = wait_quiet(args.wait_quiet)
        result["stream"] = run_alone(stream_stage, args.events, args.chunk, args.feed, args.k, args.seed)
    if "batch" not in args.skip:
        print(f"batch: {args.batch_events:,} events ...", flush=True)
        result["batch_quiet"] = wait_quiet(args.wait_quiet)
        result["batch"] = run_alone(batch_stage, args.batch_events, args.feed, args.k, args.seed)
    if "log" not in args.skip:
        print(f"log: {args.log_events:,} events ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="nb-replay-bench-") as directory:
            result["log"] = run_alone(log_stage, args.log_events, args.candidate or CANDIDATES, directory,
                                      args.wait_quiet)
    result["loadavg_at_end"] = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    save_results(result, args.out or RESULTS / f"replay-{stamp}.json", print_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
