"""Run the ``nextbest`` CLI instrumented, for benchmark experiments only
(bench/service.py --gc-stats / --gc-freeze / --uvloop). Product code is not changed:
the app factory is wrapped before the CLI imports it.

  * always: every garbage collection is timed (gc.callbacks); GET /_bench/gc returns
    the pauses per generation since the last GET /_bench/gc?reset=1;
  * --freeze: once the service has started (Redis, model, worker open), gc.collect()
    then gc.freeze(), so full collections stop re-scanning the ~60k objects that
    importing aiohttp, redis, numpy and VW leaves behind (the suggested product change);
  * --uvloop: run on uvloop's event loop (pip install uvloop; not a project dependency).

    .venv/bin/python bench/wrap.py [--freeze] [--uvloop] serve --port 8080 --data-dir /tmp/nb
"""

from __future__ import annotations

import gc
import sys
import time

from aiohttp import web

import bandit.app

_BUCKETS_MS = (1.0, 5.0, 20.0)


def _empty() -> dict[str, dict[str, float]]:
    return {str(g): {"count": 0, "total_ms": 0.0, "max_ms": 0.0, **{f"over_{int(b)}ms": 0 for b in _BUCKETS_MS}}
            for g in (0, 1, 2)}


STATS = _empty()
_started = [0.0]


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _started[0]) * 1000
    stats = STATS[str(info["generation"])]
    stats["count"] += 1
    stats["total_ms"] += ms
    stats["max_ms"] = max(stats["max_ms"], ms)
    for bound in _BUCKETS_MS:
        if ms > bound:
            stats[f"over_{int(bound)}ms"] += 1


async def _gc_stats(request: web.Request) -> web.Response:
    global STATS
    body = {"generations": {g: {k: round(v, 3) for k, v in s.items()} for g, s in STATS.items()},
            "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(), "gc_counts": gc.get_count()}
    if request.query.get("reset") == "1":
        STATS = _empty()
    return web.json_response(body)


async def _freeze(app: web.Application) -> None:
    gc.collect()
    gc.freeze()


def main() -> None:
    args = sys.argv[1:]
    freeze = "--freeze" in args
    if freeze:
        args.remove("--freeze")
    if "--uvloop" in args:
        args.remove("--uvloop")
        import asyncio

        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    original = bandit.app.create_app

    def create_app(settings):
        app = original(settings)
        app.router.add_get("/_bench/gc", _gc_stats)
        if freeze:
            app.on_startup.append(_freeze)   # after cleanup_ctx: the runtime is open by then
        return app

    bandit.app.create_app = create_app
    gc.callbacks.append(_callback)
    from bandit.cli import main as cli_main
    sys.argv = ["nextbest", *args]
    cli_main()


if __name__ == "__main__":
    main()
