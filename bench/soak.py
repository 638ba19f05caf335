"""Soak: memory of the service and of its embedded Redis over many decide+reward pairs.

    .venv/bin/python bench/soak.py                       # 100k pairs, a sample every 10k
    nice .venv/bin/python bench/soak.py --pairs 20000 --every 2000 --json /tmp/soak.json

Starts ``python -m bandit.cli serve`` on the embedded Redis in a fresh temp data dir (as
bench/service.py does), then drives ``--pairs`` decide+reward pairs with ``--concurrency``
clients (each: one decide, then the reward of that decision; the bodies of
bench/payload.py: 8 offers, 10,000 subscribers). Every ``--every`` pairs the load pauses
and one sample is taken, so each sample is a snapshot, not a race with the traffic:

- RSS of the service and of the embedded redis-server (VmRSS in /proc);
- Redis ``INFO memory`` used_memory (and its RSS and fragmentation ratio as Redis sees them),
  the AOF rewrite buffer, the Lua script cache, ``DBSIZE``;
- the joined stream's length and each consumer group's pending entries (XPENDING);
- per key pattern of bandit/store/keys.py (``Keys`` with every argument ``*``): the key
  count and the sum of ``MEMORY USAGE`` (one SCAN of the prefix, keys grouped by their
  most specific pattern), and how many of them have no TTL.

The memory that matters is the growth after warm-up: the table shows each sample and
the per-pair growth between the second sample and the last. Writes ``--json`` when given.
Every process it starts is stopped on exit; the embedded redis-server too.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import inspect
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import (HOST, REPO, BenchError, code_info, free_port, http, machine_info, say, stop_process,
                     wait_until_ready)
from payload import decide_body, event_id, offers_json, reward_body

sys.path.insert(0, str(REPO))
from bandit.store.keys import Keys  # noqa: E402  (after the path: the tree this bench lives in)

HEADERS = {"Content-Type": "application/json"}


def key_patterns(prefix: str) -> list[tuple[str, str]]:
    """(name, glob) for every key of ``Keys``, each argument ``*``, most specific first
    (most literal characters), so a key is counted under the narrowest pattern it fits
    (``ev:*:rids`` before ``ev:*``)."""
    keys = Keys(prefix)
    out = []
    for name, member in vars(Keys).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            out.append((name, getattr(keys, name)))
        elif inspect.isfunction(member):
            arity = len(inspect.signature(member).parameters) - 1
            out.append((name, member(keys, *["*"] * arity)))
    return sorted(out, key=lambda item: -len(item[1].replace("*", "")))


def rss_kb(pid: int | None) -> int | None:
    """A process's resident set (VmRSS, kB), None when it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def error_code(answer: bytes) -> str:
    """The ``error.code`` of a JSON error answer, or ``?``."""
    try:
        return str(json.loads(answer)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="nbsoak", dir="/tmp"))
        self.data_dir = self.tmp / "d"
        self.offers = offers_json(args.offers)
        self.prefix = f"s{secrets.token_hex(2)}-"
        self.service: subprocess.Popen | None = None
        self.redis_pid: int | None = None
        self.client: redis.Redis | None = None
        self.patterns = key_patterns("nb")
        self.errors: dict[str, int] = {}

    # -- the service -----------------------------------------------------------------
    def start(self) -> None:
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTBEST_")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
        for name, value in self.args.setting:
            env[f"NEXTBEST_{name.upper()}"] = value
        cmd = [sys.executable, "-m", "bandit.cli", "serve", "--host", HOST, "--port", str(port),
               "--data-dir", str(self.data_dir)]
        self.service_log = self.tmp / "service.log"
        with self.service_log.open("wb") as log:
            self.service = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=REPO, env=env, start_new_session=True)
        wait_until_ready(self.service, lambda: http("GET", self.url + "/readyz")[0] == 200,
                         "the nextbest service", self.service_log)
        self.redis_pid = int((self.data_dir / "redis.pid").read_text().strip())
        self.client = redis.Redis(unix_socket_path=str(self.data_dir / "redis.sock"))

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        stop_process(self.service, 60)
        if self.redis_pid is not None and rss_kb(self.redis_pid) is not None:
            # the service stops the server it started; this catches a service that crashed
            from bandit.store.embedded import EmbeddedRedis
            try:
                EmbeddedRedis(self.data_dir).start().stop(force=True)
            except Exception as exc:
                say(f"could not stop the embedded redis-server: {exc}")
        if self.args.keep_data:
            say(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- load ------------------------------------------------------------------------
    async def pairs(self, session: aiohttp.ClientSession, start: int, count: int, progress) -> None:
        """Pairs ``start+1 .. start+count``, ``--concurrency`` at a time."""
        queue = iter(range(start + 1, start + count + 1))

        async def worker() -> None:
            for n in queue:
                ev = event_id(self.prefix, 0, n)
                body = decide_body(self.offers, self.prefix, 0, n)
                for url, data in ((self.url + "/v1/decide", body), (self.url + "/v1/reward", self._reward(ev, n))):
                    async with session.post(url, data=data, headers=HEADERS) as response:
                        answer = await response.read()
                        if response.status >= 300:   # e.g. "reward 503 redis_unavailable"
                            key = f"{url.rsplit('/', 1)[1]} {response.status} {error_code(answer)}"
                            self.errors[key] = self.errors.get(key, 0) + 1
                progress(1)

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))

    def _reward(self, ev: str, n: int) -> bytes:
        if not self.args.reward_ids:
            return reward_body(ev, n)
        return ('{"event_id":"%s","reward":%s,"reward_id":"r%d"}' % (ev, "1.0" if n % 3 == 0 else "0.0", n)).encode()

    # -- samples ---------------------------------------------------------------------
    def sample(self, done: int, started: float) -> dict[str, Any]:
        c = self.client
        assert c is not None
        memory, persistence = c.info("memory"), c.info("persistence")
        groups = {g["name"].decode(): {"pending": g["pending"], "lag": g.get("lag")}
                  for g in c.xinfo_groups("nb:joined")} if c.exists("nb:joined") else {}
        by_pattern: dict[str, dict[str, int]] = {}
        batch: list[bytes] = []

        def flush() -> None:
            pipe = c.pipeline(transaction=False)
            for key in batch:
                pipe.memory_usage(key)
                pipe.pttl(key)
            replies = pipe.execute()
            for i, key in enumerate(batch):
                name = self._pattern(key.decode())
                row = by_pattern.setdefault(name, {"keys": 0, "bytes": 0, "no_ttl": 0})
                row["keys"] += 1
                row["bytes"] += replies[2 * i] or 0
                row["no_ttl"] += replies[2 * i + 1] == -1
            batch.clear()

        for key in c.scan_iter(match="nb:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                flush()
        if batch:
            flush()
        return {
            "pairs": done, "elapsed_s": round(time.monotonic() - started, 1),
            "service_rss_kb": rss_kb(self.service.pid if self.service else None),
            "redis_rss_kb": rss_kb(self.redis_pid),
            "used_memory": memory["used_memory"], "used_memory_rss": memory["used_memory_rss"],
            "fragmentation": memory.get("mem_fragmentation_ratio"),
            "scripts": memory.get("number_of_cached_scripts"), "used_memory_scripts": memory.get("used_memory_scripts"),
            "aof_buffer": persistence.get("aof_buffer_length"),
            "aof_rewrite_buffer": persistence.get("aof_rewrite_buffer_length"),
            "aof_rewrites": persistence.get("aof_rewrites"),
            "dbsize": c.dbsize(), "stream_length": c.xlen("nb:joined"), "groups": groups,
            "keys": dict(sorted(by_pattern.items(), key=lambda kv: -kv[1]["bytes"])),
        }

    def _pattern(self, key: str) -> str:
        for name, glob in self.patterns:
            if fnmatch.fnmatchcase(key, glob):
                return name
        return "other"

    # -- the run ---------------------------------------------------------------------
    async def drive(self) -> list[dict[str, Any]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
        started = time.monotonic()
        samples = [self.sample(0, started)]
        connector = aiohttp.TCPConnector(limit=self.args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), transient=not sys.stderr.isatty(),
                          disable=self.args.no_progress) as bar:
                task = bar.add_task("pairs", total=self.args.pairs)
                done = 0
                while done < self.args.pairs:
                    step = min(self.args.every, self.args.pairs - done)
                    await self.pairs(session, done, step, lambda k: bar.advance(task, k))
                    done += step
                    samples.append(await asyncio.to_thread(self.sample, done, started))
                    if self.args.no_progress:
                        say(f"{done} pairs: redis rss {samples[-1]['redis_rss_kb']} kB, "
                            f"used_memory {samples[-1]['used_memory']}")
        return samples


def report(samples: list[dict[str, Any]]) -> None:
    """One row per sample, then the per-key-pattern table of the last sample and the
    growth per pair between the first sample after warm-up and the last."""
    from rich.console import Console
    from rich.table import Table
    console = Console()
    table = Table(title="soak samples")
    for col in ("pairs", "svc RSS MB", "redis RSS MB", "used_memory MB", "dbsize", "stream", "PEL l/log/an", "s"):
        table.add_column(col, justify="right")
    for s in samples:
        pel = "/".join(str(s["groups"].get(g, {}).get("pending", "-")) for g in ("learner", "log", "analytics"))
        table.add_row(str(s["pairs"]), f"{(s['service_rss_kb'] or 0) / 1024:.1f}", f"{(s['redis_rss_kb'] or 0) / 1024:.1f}",
                      f"{s['used_memory'] / 2**20:.1f}", str(s["dbsize"]), str(s["stream_length"]), pel,
                      str(s["elapsed_s"]))
    console.print(table)
    last = samples[-1]
    keys = Table(title=f"keys at {last['pairs']} pairs")
    for col in ("pattern", "keys", "MB", "bytes/key", "no TTL"):
        keys.add_column(col, justify="right")
    for name, row in last["keys"].items():
        keys.add_row(name, str(row["keys"]), f"{row['bytes'] / 2**20:.2f}", str(row["bytes"] // max(1, row["keys"])),
                     str(row["no_ttl"]))
    console.print(keys)
    if len(samples) >= 3:
        first, end = samples[1], samples[-1]
        pairs = end["pairs"] - first["pairs"]
        for label, field in (("redis RSS", "redis_rss_kb"), ("service RSS", "service_rss_kb")):
            grown = ((end[field] or 0) - (first[field] or 0)) * 1024
            console.print(f"{label}: {grown / 2**20:+.1f} MB from {first['pairs']} to {end['pairs']} pairs "
                          f"({grown / pairs:+.0f} B/pair)")
        grown = end["used_memory"] - first["used_memory"]
        console.print(f"used_memory: {grown / 2**20:+.1f} MB ({grown / pairs:+.0f} B/pair)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100_000, help="decide+reward pairs (default 100000)")
    parser.add_argument("--every", type=int, default=10_000, help="a sample every this many pairs (default 10000)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients in flight (default 8)")
    parser.add_argument("--offers", type=int, default=8)
    parser.add_argument("--reward-ids", action="store_true", help="every reward carries a reward_id")
    parser.add_argument("--setting", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a service setting as NEXTBEST_<NAME> (repeatable)")
    parser.add_argument("--json", type=Path, help="write the samples, the command and the machine here")
    parser.add_argument("--no-progress", action="store_true", help="a line per sample instead of a progress bar")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)
    if args.pairs <= 0 or args.every <= 0 or args.concurrency <= 0:
        parser.error("--pairs, --every and --concurrency must be positive")
    soak = Soak(args)
    try:
        soak.start()
        say(f"service at {soak.url}, redis-server pid {soak.redis_pid}, data in {soak.data_dir}")
        samples = asyncio.run(soak.drive())
    except BenchError as exc:
        say(str(exc))
        return 1
    finally:
        soak.stop()
    report(samples)
    if soak.errors:
        say(f"non-2xx answers: {soak.errors}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "machine": machine_info(), "code": code_info(),
                                         "errors": soak.errors, "samples": samples}, indent=2))
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
