"""An open-loop, fixed-rate HTTP client for latency at a given load (plain wrk has no
fixed-rate mode). Request i is due at start + i/rate whatever happened to earlier
requests, so a slow server meets a growing queue instead of a politely waiting client.

Two engines send the same requests:
  c       (default when a C compiler is found) bench/openloop.c, compiled once into
          bench/results/.bin/: timerfd-scheduled, requests leave within tens of µs of
          their due time and cost a few µs of CPU each.
  python  aiohttp; its timers fire up to ~1 ms late and each request costs ~250 µs of
          the client's CPU, so at a few thousand requests/s it measures itself.

Two latencies are recorded per request:
  from_send      response complete - the moment the request was written.
  from_schedule  response complete - the moment it was due: includes any wait for a
                 free connection or a late timer, so it is the coordinated-omission-free
                 figure (the one the targets use).

    .venv/bin/python bench/openloop.py --url http://127.0.0.1:8080/v1/decide --kind decide \
        --rate 500 --duration 10 --out /tmp/lat.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from payload import decide_body, event_id, offers_json, reward_body

HEADERS = {"Content-Type": "application/json"}
WARMUP_SECONDS = 0.5
SLOW_SECONDS = 0.002   # the latency target: requests above it are grouped into episodes   # requests due in the first half second open connections: not counted
C_SOURCE = Path(__file__).resolve().parent / "openloop.c"
C_BUILD_DIR = Path(__file__).resolve().parent / "results" / ".bin"


def c_engine() -> Path | None:
    """The compiled C engine (built on first use), or None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    digest = hashlib.sha256(C_SOURCE.read_bytes()).hexdigest()[:12]
    binary = C_BUILD_DIR / f"openloop-{digest}"
    if not binary.exists():
        C_BUILD_DIR.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".tmp")
        subprocess.run([compiler, "-O2", "-Wall", "-o", str(partial), str(C_SOURCE)], check=True)
        partial.replace(binary)
    return binary


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "p999": rank(99.9),
            "max": ordered[-1], "mean": sum(ordered) / len(ordered)}


def requests(args: argparse.Namespace) -> tuple[list[str], list[bytes]]:
    """The event ids and bodies of the run's requests, in order."""
    if args.kind == "decide":
        offers = offers_json(args.offers)
        count = int(args.rate * args.duration)
        ids = [event_id(args.prefix, 0, n) for n in range(1, count + 1)]
        return ids, [decide_body(offers, args.prefix, 0, i + 1) for i in range(count)]
    ids = [line for line in Path(args.ids_file).read_text().split() if line]
    count = min(len(ids), int(args.rate * args.duration))
    return ids[:count], [reward_body(ids[i], i + 1) for i in range(count)]


def run_c(args: argparse.Namespace, binary: Path) -> dict:
    ids, bodies = requests(args)
    url = urlsplit(args.url)
    with tempfile.TemporaryDirectory(prefix="nb-openloop-") as tmp:
        bodies_file, out_file = Path(tmp) / "bodies", Path(tmp) / "out"
        bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
        subprocess.run([str(binary), url.hostname or "127.0.0.1", str(url.port or 80), url.path or "/",
                        repr(args.rate), str(len(bodies)), str(args.connections), str(bodies_file),
                        str(out_file), repr(args.timeout)], check=True)
        rows = [line.split() for line in out_file.read_text().splitlines()]
    statuses = [int(row[0]) for row in rows]
    from_send = [(float(row[2]) - float(row[1])) / 1e6 for row in rows]
    from_schedule = [float(row[2]) / 1e6 for row in rows]
    interval = 1.0 / args.rate
    done_at = [i * interval + from_schedule[i] for i in range(len(rows))]
    errors = {"connection_or_timeout": statuses.count(-1), "unparseable_response": statuses.count(-2)}
    return summarise(args, ids, statuses, from_send, from_schedule, done_at,
                     {k: v for k, v in errors.items() if v}, 0.0, "c")


async def run_python(args: argparse.Namespace) -> dict:
    ids, bodies = requests(args)
    count = len(bodies)
    statuses = [0] * count
    from_send = [0.0] * count
    from_schedule = [0.0] * count
    done_at = [0.0] * count
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession, i: int, due: float) -> None:
        data = bodies[i]
        sent = time.perf_counter()
        try:
            async with session.post(args.url, data=data, headers=HEADERS) as response:
                await response.read()
                statuses[i] = response.status
        except Exception as exc:  # counted and reported, never fatal
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            statuses[i] = -1
        end = time.perf_counter()
        from_send[i] = end - sent
        from_schedule[i] = end - due
        done_at[i] = end

    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    interval = 1.0 / args.rate
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(count):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, i, due)))
        await asyncio.gather(*tasks)
    return summarise(args, ids, statuses, from_send, from_schedule, done_at, errors, start, "python")


def summarise(args: argparse.Namespace, ids: list[str], statuses: list[int], from_send: list[float],
              from_schedule: list[float], done_at: list[float], errors: dict[str, int], start: float,
              engine: str) -> dict:
    count = len(statuses)
    interval = 1.0 / args.rate
    skip = min(count, int(WARMUP_SECONDS * args.rate))
    measured = range(skip, count)
    ok = [i for i in measured if 200 <= statuses[i] < 300]
    status_counts: dict[str, int] = {}
    for i in range(count):
        status_counts[str(statuses[i])] = status_counts.get(str(statuses[i]), 0) + 1
    span = (max(done_at[skip:]) - (start + skip * interval)) if count > skip else 0.0
    if args.ok_ids_file:
        Path(args.ok_ids_file).write_text("\n".join(ids[i] for i in range(count) if 200 <= statuses[i] < 300))
    slowest = sorted(ok, key=lambda i: -from_schedule[i])[:10]
    slow = slow_episodes(ok, from_schedule, interval, SLOW_SECONDS)
    return {
        "engine": engine, "kind": args.kind, "url": args.url, "rate_target": args.rate, "duration_target": args.duration,
        "sent": count, "measured": len(measured), "ok": len(ok), "status_counts": status_counts, "errors": errors,
        "achieved_rate": round(len(measured) / span, 1) if span > 0 else None,
        "latency_ms": {
            "from_send": {k: round(v * 1000, 3) for k, v in percentiles([from_send[i] for i in ok]).items()},
            "from_schedule": {k: round(v * 1000, 3) for k, v in percentiles([from_schedule[i] for i in ok]).items()},
        },
        # when the worst requests were due (seconds after the start): periodic stalls line up
        "slowest": [{"due_s": round(i * interval, 3), "ms": round(from_schedule[i] * 1000, 2)} for i in slowest],
        # runs of requests slower than SLOW_SECONDS: one long stall or many short ones?
        "slow_requests": sum(e["requests"] for e in slow), "slow_threshold_ms": SLOW_SECONDS * 1000,
        "slow_episodes": len(slow),
        "worst_episodes": sorted(slow, key=lambda e: -e["requests"])[:12],
    }


def slow_episodes(ok: list[int], from_schedule: list[float], interval: float, threshold: float) -> list[dict]:
    """Consecutive slow requests (gaps of under 5 ms between them merged) as episodes."""
    episodes: list[dict] = []
    gap = max(1, int(0.005 / interval))
    for i in ok:
        if from_schedule[i] <= threshold:
            continue
        if episodes and i - episodes[-1]["_last"] <= gap:
            e = episodes[-1]
            e["_last"], e["requests"] = i, e["requests"] + 1
            e["max_ms"] = max(e["max_ms"], round(from_schedule[i] * 1000, 2))
        else:
            episodes.append({"_first": i, "_last": i, "requests": 1, "max_ms": round(from_schedule[i] * 1000, 2)})
    return [{"due_s": round(e["_first"] * interval, 3), "span_ms": round((e["_last"] - e["_first"]) * interval * 1000, 1),
             "requests": e["requests"], "max_ms": e["max_ms"]} for e in episodes]


def main() -> None:
    parser = argparse.ArgumentParser(description="Open-loop fixed-rate client (see module docstring).")
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=("decide", "reward"), required=True,
                        help="decide: decide bodies (also for the reference); reward: rewards to --ids-file")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds (reward: fewer if the ids run out)")
    parser.add_argument("--offers", type=int, default=8)
    parser.add_argument("--prefix", default="ol", help="event id prefix for decide bodies")
    parser.add_argument("--ids-file", help="reward: event ids, one per line, used in order")
    parser.add_argument("--ok-ids-file", help="write the event ids that got a 2xx here")
    parser.add_argument("--connections", type=int, default=64, help="at most this many requests in flight")
    parser.add_argument("--engine", choices=("auto", "c", "python"), default="auto",
                        help="auto: c when a C compiler is found, else python")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    args = parser.parse_args()
    if not (0 < args.rate <= 100_000 and 0 < args.duration <= 600):
        parser.error("rate must be in (0, 100000] and duration in (0, 600]")
    if args.kind == "reward" and not args.ids_file:
        parser.error("--kind reward needs --ids-file")
    binary = c_engine() if args.engine in ("auto", "c") else None
    if args.engine == "c" and binary is None:
        parser.error("--engine c needs a C compiler (cc or gcc)")
    result = run_c(args, binary) if binary is not None else asyncio.run(run_python(args))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
