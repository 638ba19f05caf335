"""An open-loop, fixed-rate HTTP client for latency at a given load (plain wrk has no
fixed-rate mode). Request i is due at start + i/rate whatever happened to earlier
requests, so a slow server meets a growing queue instead of a politely waiting client.

Two latencies are recorded per request, with time.perf_counter:
  from_send      response complete - the moment the request was handed to aiohttp:
                 the server's latency plus this client's own overhead.
  from_schedule  response complete - the moment it was due: adds the client's
                 scheduling lag (asyncio timers wake up to ~1 ms late), so it is the
                 conservative, coordinated-omission-free figure.

    .venv/bin/python bench/openloop.py --url http://127.0.0.1:8080/v1/decide --kind decide \
        --rate 500 --duration 10 --out /tmp/lat.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from payload import decide_body, event_id, offers_json, reward_body

HEADERS = {"Content-Type": "application/json"}
WARMUP_SECONDS = 0.5   # requests due in the first half second open connections: not counted


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "p999": rank(99.9),
            "max": ordered[-1], "mean": sum(ordered) / len(ordered)}


async def run(args: argparse.Namespace) -> dict:
    if args.kind == "decide":
        offers = offers_json(args.offers)
        count = int(args.rate * args.duration)
        ids = [event_id(args.prefix, 0, n) for n in range(1, count + 1)]

        def body(i: int) -> bytes:
            return decide_body(offers, args.prefix, 0, i + 1)
    else:
        ids = [line for line in Path(args.ids_file).read_text().split() if line]
        count = min(len(ids), int(args.rate * args.duration))

        def body(i: int) -> bytes:
            return reward_body(ids[i], i + 1)

    statuses = [0] * count
    from_send = [0.0] * count
    from_schedule = [0.0] * count
    done_at = [0.0] * count
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession, i: int, due: float) -> None:
        data = body(i)
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

    connector = aiohttp.TCPConnector(limit=args.max_connections)
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

    skip = min(count, int(WARMUP_SECONDS * args.rate))
    measured = range(skip, count)
    ok = [i for i in measured if 200 <= statuses[i] < 300]
    status_counts: dict[str, int] = {}
    for i in range(count):
        status_counts[str(statuses[i])] = status_counts.get(str(statuses[i]), 0) + 1
    span = (max(done_at[skip:]) - (start + skip * interval)) if count > skip else 0.0
    if args.ok_ids_file:
        Path(args.ok_ids_file).write_text("\n".join(ids[i] for i in range(count) if 200 <= statuses[i] < 300))
    slowest = sorted(ok, key=lambda i: -from_send[i])[:10]
    return {
        "kind": args.kind, "url": args.url, "rate_target": args.rate, "duration_target": args.duration,
        "sent": count, "measured": len(measured), "ok": len(ok), "status_counts": status_counts, "errors": errors,
        "achieved_rate": round(len(measured) / span, 1) if span > 0 else None,
        "latency_ms": {
            "from_send": {k: round(v * 1000, 3) for k, v in percentiles([from_send[i] for i in ok]).items()},
            "from_schedule": {k: round(v * 1000, 3) for k, v in percentiles([from_schedule[i] for i in ok]).items()},
        },
        # when the worst requests were due (seconds after the start): periodic stalls line up
        "slowest": [{"due_s": round(i * interval, 3), "ms": round(from_send[i] * 1000, 2)} for i in slowest],
    }


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
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    args = parser.parse_args()
    if not (0 < args.rate <= 100_000 and 0 < args.duration <= 600):
        parser.error("rate must be in (0, 100000] and duration in (0, 600]")
    if args.kind == "reward" and not args.ids_file:
        parser.error("--kind reward needs --ids-file")
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
