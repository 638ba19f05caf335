"""Reading py-spy's raw stacks of the service: the top frames by own time, and shares by
component (innermost matching frame) and by activity (the task or callback a sample
belongs to). Used by bench/service.py --profile."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Component of a sample: the innermost frame that matches one of these specific rules;
# only when none does, the innermost generic one (aiohttp, asyncio). So a socket write
# made by redis-py counts as Redis, one made by aiohttp for a response as aiohttp.
# Without --native, time in C code (VW, msgspec, orjson, hiredis, numpy) is charged to
# the Python line that called it. Patterns match "function (path" of a frame.
SPECIFIC: list[tuple[str, tuple[str, ...]]] = [
    ("VW", ("policies/learner.py", "vowpalwabbit/", "pylibvw")),   # split into predict / learn below
    ("PMF normalise / sample / rank (numpy)", ("policies/exploration.py", "numpy/")),
    ("feature encoding + VW text lines (vwtext)", ("policies/vwtext.py",)),
    ("msgspec decode + validation", ("bandit/decide/schemas.py", "msgspec/")),
    ("joined-stream entries decode (store._joined_event, records.read_record)",
     ("_joined_event (bandit/store/store.py", "bandit/learn/records.py")),
    ("Redis client (redis-py: pack, send, parse)", ("redis/", "hiredis", "bandit/store/batching.py", "bandit/store/store.py")),
    ("decision log (DSJSON records, file write)", ("bandit/learn/decision_log.py",)),
    ("learner task other (checkpoint, stream)", ("bandit/learn/training.py",)),
    ("analytics (counting script arguments)", ("bandit/observe/analytics.py",)),
    ("decide glue (decider.py: record, orjson, hmac, ids)", ("bandit/decide/decider.py",)),
    ("handlers (+ orjson + web.Response)", ("bandit/http/handlers.py",)),
    ("error middleware", ("bandit/app.py",)),
    ("background worker (expire, lease)", ("bandit/learn/worker.py",)),
]
GENERIC: list[tuple[str, tuple[str, ...]]] = [
    ("aiohttp server (parse, dispatch, write)", ("aiohttp/", "multidict/", "yarl/", "propcache/")),
    ("asyncio loop, transports, sockets", ("asyncio/", "selectors.py", "_asyncio")),
    ("GC / interpreter", ("gc_collect", "libpython")),
]
# The activity a sample belongs to: the first rule any frame of the running callback or
# task matches (frames from the event loop's Handle._run down; above it all stacks share
# run_app and the loop).
ACTIVITIES: list[tuple[str, tuple[str, ...]]] = [
    ("POST /v1/decide handler", ("decide (bandit/http/handlers.py",)),
    ("POST /v1/reward handler", ("reward (bandit/http/handlers.py",)),
    ("other handlers", ("bandit/http/handlers.py",)),
    ("Redis pipeline task (batching.py: send, parse replies)", ("bandit/store/batching.py",)),
    ("learner task (read stream, learn, checkpoint)", ("bandit/learn/training.py",)),
    ("decision log task (read stream, write DSJSON)", ("bandit/learn/decision_log.py",)),
    ("analytics task (read stream, count)", ("bandit/observe/analytics.py",)),
    ("background worker (expire, lease)", ("bandit/learn/worker.py",)),
    ("aiohttp outside the handler (read, parse, dispatch, write)", ("aiohttp/",)),
    ("event loop (select, callbacks, socket reads)", ("asyncio/", "selectors.py")),
]
# Stacks of a thread that is only waiting (py-spy --native reports these as busy).
_IDLE = ("_worker (concurrent/futures/thread.py", "EpollSelector.select (selectors.py", "select (selectors.py",
         "Condition.wait (threading.py", "Thread._wait_for_tstate_lock (threading.py")


def frame_key(frame: str) -> tuple[str, str, str]:
    match = _FRAME.match(frame)
    if not match:
        return frame, "", ""
    path = re.sub(r"^.*?/(?=(bandit|policies|replay)/)", "", match["file"].replace(str(REPO) + "/", ""))
    for marker in ("site-packages/", "/lib/python3.11/", "/lib/python3.12/", "/lib/python3.13/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return match["func"], path, match["line"] or ""


def _is_idle(frames: list[tuple[str, str, str]]) -> bool:
    python = [f for f in frames if f[1].endswith(".py") or f[1].startswith("<frozen")]
    return bool(python) and any(f"{python[-1][0]} ({python[-1][1]}".startswith(p) for p in _IDLE)


def analyse_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Own time per function and per line (leaf frames), cumulative time per function,
    and breakdowns by activity (all busy samples) and by component (event-loop thread
    only: worker threads mostly wait in file writes and fsync, with the GIL released)."""
    own: dict[str, int] = defaultdict(int)
    own_line: dict[str, int] = defaultdict(int)
    cumulative: dict[str, int] = defaultdict(int)
    components: dict[str, int] = defaultdict(int)
    activities: dict[str, int] = defaultdict(int)
    total = idle = threads = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_key(f) for f in stack.split(";")]
        if _is_idle(frames):
            idle += count
            continue
        total += count
        python = [f for f in frames if f[1].endswith(".py")] or frames
        leaf = python[-1]
        own[f"{leaf[0]} ({leaf[1]})"] += count
        own_line[f"{leaf[0]} ({leaf[1]}:{leaf[2]})"] += count
        for name in {f"{f[0]} ({f[1]})" for f in frames}:
            cumulative[name] += count
        texts = [f"{func} ({path}" for func, path, _ in frames]
        if any(t.startswith("Thread._bootstrap (threading.py") for t in texts):   # a to_thread worker
            threads += count
            where = ("decision log file write + fsync" if any("bandit/learn/decision_log.py" in t for t in texts)
                     else "checkpoint files" if any("bandit/learn/training.py" in t for t in texts) else "other")
            activities[f"worker thread: {where} (GIL released; not event-loop CPU)"] += count
            continue
        component = _match(reversed(texts), SPECIFIC) or _match(reversed(texts), GENERIC) or "other"
        if component == "VW":
            learning = any("learn_one (" in t or "Trainer.learn (" in t for t in texts)
            component = "VW learn (text parse + learn)" if learning else "VW predict (text parse + predict)"
        components[component] += count
        roots = [i for i, t in enumerate(texts) if t.startswith("Handle._run (asyncio/events.py")]
        if roots:
            task = texts[roots[0] + 1:]
        else:
            task = [t for t in texts if "selectors.py" in t or "base_events.py" in t]
        activities[_first_rule(task, ACTIVITIES) or "other (loop internals, GC)"] += count

    def pct(items: dict[str, int], n: int | None = top, of: int | None = None) -> list[dict[str, Any]]:
        ranked = sorted(items.items(), key=lambda kv: -kv[1])[:n]
        base = of if of is not None else total
        return [{"frame": k, "samples": v, "percent": round(100 * v / base, 1) if base else 0.0} for k, v in ranked]

    return {"samples": total, "idle_samples_dropped": idle, "worker_thread_samples": threads,
            "by_component": pct(components, None, of=total - threads),
            "by_activity": pct(activities, None), "top_own": pct(own), "top_own_lines": pct(own_line, 30),
            "top_cumulative": pct(cumulative, 40)}


def _first_rule(texts: list[str], rules: list[tuple[str, tuple[str, ...]]]) -> str | None:
    """The first rule that any frame matches."""
    for name, patterns in rules:
        if any(p in text for text in texts for p in patterns):
            return name
    return None


def _match(texts, rules: list[tuple[str, tuple[str, ...]]]) -> str | None:
    """The rule the first matching frame (in the order given) matches."""
    for text in texts:
        for name, patterns in rules:
            if any(p in text for p in patterns):
                return name
    return None


# -- output -------------------------------------------------------------------------------
