"""Run the ``nextbest`` CLI instrumented, for benchmark experiments only
(bench/service.py --gc-stats / --gc-freeze / --uvloop / --stalls). Product code is not changed:
the app factory is wrapped before the CLI imports it.

  * always: every garbage collection is timed (gc.callbacks); GET /_bench/gc returns
    the pauses per generation since the last GET /_bench/gc?reset=1;
  * --freeze: once the service has started (Redis, model, worker open), gc.collect()
    then gc.freeze(), so full collections stop re-scanning the ~60k objects that
    importing aiohttp, redis, numpy and VW leaves behind (the suggested product change);
  * --uvloop: run on uvloop's event loop (pip install uvloop; not a project dependency);
  * --stalls: every stop of the event loop longer than 10 ms, with what the loop thread
    was running when it was noticed (a heartbeat every 2 ms on the loop, a watching
    thread); in the same GET /_bench/gc answer, under "stalls". A stop the heartbeat does
    not see (the loop kept turning) happened outside the process: Redis, the VM.

    .venv/bin/python bench/wrap.py [--freeze] [--uvloop] serve --port 8080 --data-dir /tmp/nb
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import traceback

from aiohttp import web

import bandit.app

_BUCKETS_MS = (1.0, 5.0, 20.0)


def _empty() -> dict[str, dict[str, float]]:
    return {str(g): {"count": 0, "total_ms": 0.0, "max_ms": 0.0, **{f"over_{int(b)}ms": 0 for b in _BUCKETS_MS}}
            for g in (0, 1, 2)}


STATS = _empty()
_started = [0.0]


class StallWatch:
    """Event-loop stops over ``threshold_s``: where the loop thread was, and for how long."""

    def __init__(self, threshold_s: float = 0.010, beat_s: float = 0.002) -> None:
        self.threshold_s, self.beat_s = threshold_s, beat_s
        self.beat = time.perf_counter()
        self.stalls: list[dict] = []
        self._open: dict | None = None
        self._loop_thread = threading.get_ident()
        self._origin = time.perf_counter()

    async def start(self, app: web.Application) -> None:
        self._loop_thread = threading.get_ident()
        asyncio.get_running_loop().call_soon(self._tick)
        threading.Thread(target=self._watch, name="stall-watch", daemon=True).start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._open is not None:   # the loop is back: close the stall it was in
            self._open["ms"] = round((now - self.beat) * 1000, 1)
            self.stalls.append(self._open)
            self._open = None
        self.beat = now
        asyncio.get_running_loop().call_later(self.beat_s, self._tick)

    def _watch(self) -> None:
        while True:
            time.sleep(self.beat_s)
            since = time.perf_counter() - self.beat
            if since > self.threshold_s + self.beat_s and self._open is None:
                frame = sys._current_frames().get(self._loop_thread)   # noqa: SLF001
                where = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}"
                         for f in traceback.extract_stack(frame)[-5:]] if frame else []
                self._open = {"at_s": round(self.beat - self._origin, 3), "where": where}

    def take(self, reset: bool) -> list[dict]:
        stalls = list(self.stalls)
        if reset:
            self.stalls.clear()
        return stalls


WATCH: StallWatch | None = None


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
    if WATCH is not None:
        body["stalls"] = WATCH.take(reset=request.query.get("reset") == "1")
    if request.query.get("reset") == "1":
        STATS = _empty()
    return web.json_response(body)


async def _freeze(app: web.Application) -> None:
    gc.collect()
    gc.freeze()


def main() -> None:
    args = sys.argv[1:]
    global WATCH
    freeze = "--freeze" in args
    if freeze:
        args.remove("--freeze")
    if "--stalls" in args:
        args.remove("--stalls")
        WATCH = StallWatch()
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
        if WATCH is not None:
            app.on_startup.append(WATCH.start)
        return app

    bandit.app.create_app = create_app
    gc.callbacks.append(_callback)
    from bandit.cli import main as cli_main
    sys.argv = ["nextbest", *args]
    cli_main()


if __name__ == "__main__":
    main()
