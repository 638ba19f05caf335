"""Interleaved A/B of decide throughput: several service variants side by side, measured
in alternating rounds, so slow drift of the machine (a VM's neighbours, frequency)
hits every variant alike. The figure to read is the median of the per-round ratios to
the first variant.

    .venv/bin/python bench/ab.py --variant plain --variant freeze:freeze --rounds 5
    .venv/bin/python bench/ab.py --variant head --variant old:root=/tmp/nbsrc --variant ref:reference

A variant is NAME[:OPTION,...]; options:
  freeze       gc.collect(); gc.freeze() after startup   (via bench/wrap.py)
  uvloop       uvloop event loop (pip install uvloop)     (via bench/wrap.py)
  root=DIR     run bandit/ from DIR (e.g. git archive <commit> | tar -x -C DIR)
  reference    bench/reference.py instead of the service
Each service gets its own temp data dir and embedded Redis. Layout as bench/service.py:
servers pinned to --server-cpu, wrk and redis-server to --client-cpu. Needs wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from payload import decide_body, lua_decide, offers_json
from machine import (
    HOST,
    REPO,
    RESULTS,
    BenchError,
    code_info,
    cpu_busy,
    cpu_seconds,
    free_port,
    http,
    machine_info,
    pinned,
    say,
    stop_process,
    wait_until_ready,
)


@dataclass
class Variant:
    name: str
    options: dict[str, str]
    proc: subprocess.Popen | None = None
    url: str = ""
    data_dir: Path | None = None
    redis_pid: int | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_reference(self) -> bool:
        return "reference" in self.options


def parse_variant(text: str) -> Variant:
    name, _, opts = text.partition(":")
    options: dict[str, str] = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        if key not in ("freeze", "uvloop", "root", "reference"):
            raise argparse.ArgumentTypeError(f"unknown variant option {key!r}")
        options[key] = value
    if "root" in options:
        root = Path(options["root"]).resolve()
        if not (root / "bandit" / "cli.py").is_file():
            raise argparse.ArgumentTypeError(f"{root} has no bandit/cli.py")
        options["root"] = str(root)
    return Variant(name or "variant", options)


class AB:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="nbab", dir="/tmp"))
        self.run_id = secrets.token_hex(3)
        pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
        self.server_cpu = args.server_cpu if pin else None
        self.client_cpu = args.client_cpu if pin else None
        self.offers = offers_json(args.offers)
        self.variants: list[Variant] = args.variant

    def start(self, v: Variant, index: int) -> None:
        port = free_port()
        v.url = f"http://{HOST}:{port}"
        log = self.tmp / f"{index}-{v.name}.log"
        env = {k: val for k, val in os.environ.items() if not k.startswith("NEXTBEST_")}
        root = Path(v.options.get("root") or REPO)
        if "root" in v.options:
            env["PYTHONPATH"] = str(root)
        if v.is_reference:
            cmd = [sys.executable, str(BENCH / "reference.py"), "--host", HOST, "--port", str(port),
                   *(["--uvloop"] if "uvloop" in v.options else [])]
        else:
            v.data_dir = self.tmp / f"d{index}"
            if "freeze" in v.options or "uvloop" in v.options:
                cmd = [sys.executable, str(BENCH / "wrap.py"), *(["--freeze"] if "freeze" in v.options else []),
                       *(["--uvloop"] if "uvloop" in v.options else []), "serve"]
            else:
                cmd = [sys.executable, "-m", "bandit.cli", "serve"]
            cmd += ["--host", HOST, "--port", str(port), "--data-dir", str(v.data_dir)]
        with log.open("wb") as out:
            v.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      cwd=root, env=env, preexec_fn=pinned(self.server_cpu), start_new_session=True)
        if v.is_reference:
            probe = decide_body(self.offers, "probe", 0, 1)
            wait_until_ready(v.proc, lambda: http("POST", v.url + "/v1/decide", probe)[0] == 200, v.name, log)
        else:
            wait_until_ready(v.proc, lambda: http("GET", v.url + "/readyz")[0] == 200, v.name, log)
            try:
                v.redis_pid = int((v.data_dir / "redis.pid").read_text().strip())
                if self.client_cpu is not None:
                    os.sched_setaffinity(v.redis_pid, {self.client_cpu})
            except (OSError, ValueError):
                v.redis_pid = None

    def wrk(self, v: Variant, tag: str, duration: int, connections: int) -> dict[str, Any]:
        result_path = self.tmp / f"{tag}.json"
        script = self.tmp / f"{tag}.lua"
        script.write_text(lua_decide(str(result_path), "/v1/decide", self.offers, f"{self.run_id}{tag}-"))
        cmd = ["wrk", "-t1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "-s", str(script),
               v.url]
        cpu0, busy0, t0 = cpu_seconds(v.proc.pid), cpu_busy(), time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=duration + 60,
                             preexec_fn=pinned(self.client_cpu))
        cpu1, busy1, elapsed = cpu_seconds(v.proc.pid), cpu_busy(), time.monotonic() - t0
        if out.returncode != 0 or not result_path.exists():
            raise BenchError(f"wrk failed on {v.name}: {out.stdout}\n{out.stderr}")
        data = json.loads(result_path.read_text())
        seconds = data["duration_us"] / 1e6
        used = (cpu1 or 0.0) - (cpu0 or 0.0)
        others = None
        if self.server_cpu is not None and self.server_cpu in busy0:
            others = round(max(0.0, busy1[self.server_cpu][0] - busy0[self.server_cpu][0] - used) / elapsed, 3)
        return {"rps": round(data["requests"] / seconds, 1), "requests": data["requests"],
                "us_per_request": round(used / data["requests"] * 1e6, 1) if data["requests"] else None,
                "p50_ms": data["latency_us"]["p50"] / 1000, "p99_ms": data["latency_us"]["p99"] / 1000,
                "non_2xx": data["errors"]["status"], "others_on_server_cpu": others}

    def run(self) -> dict[str, Any]:
        args = self.args
        for i, v in enumerate(self.variants):
            say(f"starting {v.name} {v.options or ''}")
            self.start(v, i)
        for i, v in enumerate(self.variants):
            self.wrk(v, f"w{i}", args.warmup, args.connections)
        n = len(self.variants)
        for r in range(args.rounds):
            order = [(i, self.variants[i]) for i in [(r + j) % n for j in range(n)]]
            for i, v in order:
                m = self.wrk(v, f"r{r}v{i}", args.duration, args.connections)
                if args.c1:
                    c1 = self.wrk(v, f"r{r}v{i}c1", args.duration, 1)
                    m.update({"c1_rps": c1["rps"], "c1_p50_ms": c1["p50_ms"], "c1_p99_ms": c1["p99_ms"]})
                v.rounds.append(m)
                say(f"round {r + 1}/{args.rounds} {v.name}: {m['rps']:.0f} rps, {m['us_per_request']} us/req"
                    + (f", c1 p50 {m['c1_p50_ms']:.2f} p99 {m['c1_p99_ms']:.2f} ms" if args.c1 else ""))
        base = self.variants[0]
        # rounds in which other processes took more than --max-others of the server's CPU
        # during any variant's measurement are left out of the summary
        kept = [r for r in range(args.rounds)
                if all((v.rounds[r]["others_on_server_cpu"] or 0.0) <= args.max_others for v in self.variants)]
        if not kept:
            say("every round was disturbed by other processes: summarising all of them")
            kept = list(range(args.rounds))
        summary = {"rounds_kept": kept}
        for v in self.variants:
            rounds = [v.rounds[r] for r in kept]
            ratios = [v.rounds[r]["rps"] / base.rounds[r]["rps"] for r in kept]
            cpu_ratios = [v.rounds[r]["us_per_request"] / base.rounds[r]["us_per_request"] for r in kept
                          if v.rounds[r]["us_per_request"] and base.rounds[r]["us_per_request"]]
            summary[v.name] = {
                "options": v.options, "rps_median": statistics.median(m["rps"] for m in rounds),
                "rps_min": min(m["rps"] for m in rounds), "rps_max": max(m["rps"] for m in rounds),
                "us_per_request_median": statistics.median(m["us_per_request"] or 0 for m in rounds),
                f"rps_vs_{base.name}_median": round(statistics.median(ratios), 3),
                f"rps_vs_{base.name}_range": [round(min(ratios), 3), round(max(ratios), 3)],
                f"cpu_per_request_vs_{base.name}_median": round(statistics.median(cpu_ratios), 3) if cpu_ratios else None,
            }
            if args.c1:
                summary[v.name]["c1_p50_ms_median"] = statistics.median(m["c1_p50_ms"] for m in rounds)
                summary[v.name]["c1_p99_ms_median"] = statistics.median(m["c1_p99_ms"] for m in rounds)
        return {"timestamp": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
                "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine_info(),
                "code": code_info(), "settings": {k: (v if not isinstance(v, list) else None) for k, v in
                                                  vars(args).items()},
                "variants": {v.name: {"options": v.options, "rounds": v.rounds} for v in self.variants},
                "summary": summary}

    def cleanup(self) -> None:
        for v in self.variants:
            stop_process(v.proc, 60)
        for v in self.variants:
            if v.data_dir is None:
                continue
            try:
                pid = int((v.data_dir / "redis.pid").read_text().strip())
                os.kill(pid, 0)
            except (OSError, ValueError):
                continue
            sys.path.insert(0, str(REPO))
            from bandit.store.embedded import EmbeddedRedis
            try:
                EmbeddedRedis(v.data_dir).start().stop(force=True)
            except Exception as exc:
                print(f"stopping redis-server {pid} failed ({exc}); killing it", file=sys.stderr)
                os.kill(pid, 9)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", type=parse_variant, action="append", required=True,
                        help="NAME[:OPTION,...] (see above); the first is the baseline")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement [5]")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--c1", action="store_true", help="also closed-loop latency with 1 connection each round")
    parser.add_argument("--max-others", type=float, default=0.05,
                        help="leave out rounds where other processes used more of the server CPU [0.05 cores]")
    parser.add_argument("--offers", type=int, default=8)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (1 <= args.rounds <= 20 and 1 <= args.duration <= 60 and 1 <= args.warmup <= 10
            and len(args.variant) <= 6 and 1 <= args.connections <= 1024 and 1 <= args.offers <= 50):
        parser.error("need rounds 1-20, duration 1-60, warmup 1-10, at most 6 variants")
    if shutil.which("wrk") is None:
        print("ab: wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)", file=sys.stderr)
        return 2
    names = [v.name for v in args.variant]
    if len(set(names)) != len(names):
        parser.error("variant names must differ")
    ab = AB(args)
    try:
        result = ab.run()
    except BenchError as exc:
        print(f"ab: {exc}", file=sys.stderr)
        return 1
    finally:
        ab.cleanup()
    out = args.out or RESULTS / f"ab-{result['timestamp']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    base = args.variant[0].name
    print(f"\n{'variant':<12} {'rps median':>10} {'min':>7} {'max':>7} {'us/req':>7} {'vs ' + base:>12} "
          f"{'range':>13}" + ("  c1 p50/p99 ms" if args.c1 else ""))
    summary = dict(result["summary"])
    kept = summary.pop("rounds_kept")
    print(f"(rounds kept: {len(kept)} of {args.rounds}; left out: rounds disturbed by other processes)")
    for name, s in summary.items():
        lo, hi = s[f"rps_vs_{base}_range"]
        print(f"{name:<12} {s['rps_median']:>10.0f} {s['rps_min']:>7.0f} {s['rps_max']:>7.0f} "
              f"{s['us_per_request_median']:>7.0f} {s[f'rps_vs_{base}_median']:>12.3f} {f'{lo:.2f}-{hi:.2f}':>13}"
              + (f"  {s['c1_p50_ms_median']:.2f}/{s['c1_p99_ms_median']:.2f}" if args.c1 else ""))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
