"""Per-stage cost of the decide path without HTTP or Redis: microseconds per call of
each step POST /v1/decide takes, on the benchmark's request body. Complements the
sampling profile (bench/service.py --profile) with absolute numbers.

    .venv/bin/python bench/micro.py [--offers 8] [--iterations 5000] [--service-root DIR]

Stages that the code under test does not have (it changes) are skipped, not fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def timed(fn: Callable[[], Any], iterations: int) -> float:
    """Best of 3 runs, microseconds per call."""
    best = float("inf")
    for _ in range(3):
        gc.collect()
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, (time.perf_counter() - start) / iterations * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--service-root", type=Path, help="import bandit/policies from this tree")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.service_root:
        sys.path.insert(0, str(args.service_root.resolve()))
    sys.path.insert(0, str(BENCH))

    import orjson
    from payload import decide_body, offers_json

    from bandit.config import Settings
    from bandit.decide.decider import Decider, ModelHolder
    from bandit.decide.schemas import DecideRequest, decode
    from policies import exploration, vwtext
    from policies.learner import Learner

    body = decide_body(offers_json(args.offers), "micro", 0, 1)
    settings = Settings()
    learner = Learner(settings.learner)

    from bandit.store.keys import Keys
    from bandit.decide.schemas import decode_feature_map

    class NoStore:   # no profile, and create_decision says "new" at once: no Redis
        keys = Keys("nb")

        async def mget(self, keys: list[str]) -> list[None]:
            return [None] * len(keys)

        async def create_decision(self, *a: Any, **k: Any) -> None:
            return None

    store = NoStore()
    decider = Decider(settings, store, store, None, store, ModelHolder(learner, 0), b"k" * 32)  # type: ignore[arg-type]
    request = decode(body, DecideRequest)
    loop = asyncio.new_event_loop()
    n = args.iterations
    results: dict[str, float] = {}

    def stage(name: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # the code under test changed: skip
            results[name] = float("nan")
            print(f"skipped {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        results[name] = timed(fn, n)

    def run_decide() -> Any:
        coro = decider.decide(request)
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        raise RuntimeError("decide awaited something real")

    decision = run_decide()
    stage("msgspec decode + validate (schemas.decode)", lambda: decode(body, DecideRequest))
    stage("Decider.decide without Redis (all below)", run_decide)
    context = {**request.context, "channel": request.channel}
    stage("  encode context features (vwtext.encode_features)", lambda: vwtext.encode_features(context))
    encoded_ctx = {vwtext.CONTEXT_NAMESPACE: vwtext.encode_features(context)}
    stage("  encode offers, uncached (vwtext.encode_offer x N)",
          lambda: [vwtext.encode_offer(o.id, decode_feature_map(bytes(o.features))) for o in request.offers])
    actions = [vwtext.encode_offer(o.id, decode_feature_map(bytes(o.features))) for o in request.offers]
    stage("  VW text lines (shared_line + action_line x N)",
          lambda: (vwtext.shared_line(encoded_ctx), [vwtext.action_line(a) for a in actions]))
    shared = vwtext.shared_line(encoded_ctx)
    lines = [vwtext.action_line(a) for a in actions]
    stage("  Learner.predict_one (VW parse + predict + normalize)", lambda: learner.predict_one(shared, lines))
    if hasattr(learner, "_run"):
        try:
            import policies.learner as learner_module
            pylibvw = learner_module.pylibvw
            example = vwtext.adf_example(shared, lines)
            stage("    VW parse + predict only (Learner._run)", lambda: learner._run(example, pylibvw.vw.predict_multi))
        except Exception as exc:
            print(f"skipped VW-only stage: {exc}", file=sys.stderr)
    pmf = learner.predict_one(shared, lines)
    raw = [float(x) for x in pmf]
    stage("    normalize_pmf", lambda: exploration.normalize_pmf(raw))
    stage("  event_uniform + sample_index",
          lambda: exploration.sample_index(pmf, exploration.event_uniform("micro0-1")))
    stage("  rank", lambda: exploration.rank(pmf, 0, 3))
    stage("  subscriber_hash (HMAC-SHA256)", lambda: decider.subscriber_hash("sub-1"))
    record = {"v": 1, "id": "micro0-1", "ts": 0, "channel": "web", "sid": "x" * 32, "shared": encoded_ctx,
              "offers": [o.id for o in request.offers], "actions": actions, "chosen": 0, "pmf": pmf,
              "model": "0.0", "k": 3, "defer": False}
    stage("  orjson.dumps(record)", lambda: orjson.dumps(record))
    stage("orjson.dumps(response body)", lambda: orjson.dumps(decision.body()))
    loop.close()

    info = {"offers": args.offers, "iterations": n, "body_bytes": len(body), "record_bytes": len(orjson.dumps(record)),
            "us_per_call": {k: round(v, 2) for k, v in results.items()}}
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"decide path, {args.offers} offers, body {len(body)} B, record {info['record_bytes']} B "
          f"(best of 3 x {n} calls)")
    for name, us in results.items():
        print(f"  {us:8.1f} us  {name}")


if __name__ == "__main__":
    main()
