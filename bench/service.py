"""Throughput and latency of the nextbest service against a bare aiohttp endpoint,
measured in the same run on the same machine.

    make bench                                  # = .venv/bin/python bench/service.py
    .venv/bin/python bench/service.py --duration 10 --wait-quiet 60 --profile

Starts bench/reference.py (a bare aiohttp + orjson JSON endpoint) and
``python -m bandit.cli serve`` (on the embedded Redis in a fresh temp data dir, or
--redis-url under a unique key prefix), both on 127.0.0.1 on free ports, then:

  1. max throughput with wrk (closed loop, -t1 -c32 by default) of: the reference,
     POST /v1/decide (every request a new decision with a unique event id, 8 offers),
     POST /v1/reward (a reward for exactly the decisions of the decide phase, in order;
     if they run out, the rate is over the time they lasted);
  2. latency at half the max rate with an open-loop fixed-rate client (openloop.py,
     engine openloop.c): decide, reward (to the ids that latency run created), the
     reference; with --latency-rates, decide at those fixed rates too;
  3. closed-loop latency with one connection (wrk -c1): decide and the reference,
     i.e. service time without queueing;
  4. the reference's max throughput again (drift check: the ratio uses the mean);
  5. with --profile, py-spy samples the service during a decide and a reward phase
     and the top frames by own time and breakdowns by component and by activity are
     printed (raw stacks: bench/results/profile-*.txt).

CPU layout (2+ cores, default): the server under test (reference or service, one at
a time) is pinned to --server-cpu; wrk, the open-loop client, the embedded
redis-server and py-spy to --client-cpu. --no-pin lets the scheduler decide. Each
phase reports the CPU used by the server, redis-server and the load generator, and
by *other* processes ("others"): on a shared machine, --wait-quiet waits for them.

Needs: wrk (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk).
--profile needs py-spy: .venv/bin/pip install py-spy (Linux: ptrace must be allowed,
e.g. root or kernel.yama.ptrace_scope=0; in Docker run with --cap-add SYS_PTRACE).
--gc-stats / --gc-freeze / --uvloop run the service through bench/wrap.py (GC pause
timings; experiments: gc.freeze() after startup, uvloop). --service-root runs another source tree
(e.g. an older commit) for A/B comparisons.

Writes bench/results/service-<timestamp>.json (all figures, the command, the machine,
the commit) and prints a table. Every process it starts is stopped on exit, Ctrl-C
included; the embedded redis-server too.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import (NOISY, QUIET, REPO, RESULTS, BENCH, HOST, BenchError, _raise_exit, children_cpu, code_info,
                     cpu_busy, cpu_seconds, free_port, http, machine_info, pinned, save_results, say, stop_process,
                     wait_until_ready)
from payload import decide_body, lua_decide, lua_reward, offers_json
from profiling import analyse_profile
from report import print_report


class BacklogWatch:
    """Samples (seconds since the phase started, learner + log backlog) every 0.1 s in a thread."""

    def __init__(self, backlog, started: float) -> None:
        self._backlog, self._started = backlog, started
        self.samples: list[tuple[float, int]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.1):
            try:
                self.samples.append((round(time.monotonic() - self._started, 2), sum(self._backlog())))
            except (OSError, ValueError, KeyError, BenchError):   # a busy service may not answer in time
                continue

    def stop(self) -> list[tuple[float, int]]:
        self._done.set()
        self._thread.join(15)
        return self.samples


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = secrets.token_hex(3)
        self.tmp = Path(tempfile.mkdtemp(prefix="nbb", dir="/tmp"))
        self.data_dir = self.tmp / "d"
        self.lua_dir = self.tmp / "lua"
        self.lua_dir.mkdir()
        self.offers = offers_json(args.offers)
        self.wrk = shutil.which("wrk")
        self.py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
        self.server_cpu = args.server_cpu if pin else None
        self.client_cpu = args.client_cpu if pin else None
        self.redis_cpu = (self.client_cpu if args.redis_cpu == "client" else self.server_cpu) if pin else None
        self.wrapped = bool(args.gc_stats or args.gc_freeze or args.uvloop or args.stalls)
        self.reference: subprocess.Popen | None = None
        self.service: subprocess.Popen | None = None
        self.learner: subprocess.Popen | None = None   # --split-learner: `nextbest learner` on the client's CPU
        self.redis_pid: int | None = None
        self.key_prefix = f"nbbench:{self.run_id}" if args.redis_url else None
        self.phases: dict[str, dict[str, Any]] = {}
        self.profile: dict[str, Any] = {}

    # -- servers -----------------------------------------------------------------------
    def start_servers(self) -> None:
        ref_port, svc_port = free_port(), free_port()
        while svc_port == ref_port:
            svc_port = free_port()
        self.ref_url = f"http://{HOST}:{ref_port}"
        self.svc_url = f"http://{HOST}:{svc_port}"
        ref_log = self.tmp / "reference.log"
        with ref_log.open("wb") as log:
            self.reference = subprocess.Popen(
                [sys.executable, str(BENCH / "reference.py"), "--host", HOST, "--port", str(ref_port),
                 *(["--uvloop"] if self.args.uvloop else [])],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                preexec_fn=pinned(self.server_cpu), start_new_session=True)
        probe = decide_body(self.offers, "probe", 0, 1)
        wait_until_ready(self.reference, lambda: http("POST", self.ref_url + "/v1/decide", probe)[0] == 200,
                         "the reference server", ref_log)

        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTBEST_")}
        root = self.args.service_root or REPO
        if self.args.service_root:   # import bandit/policies from there, ahead of the editable install
            env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
        if self.key_prefix:
            env["NEXTBEST_KEY_PREFIX"] = self.key_prefix
        # wrk's connections plus the probes' own must fit the per-process limit (default 1024)
        env["NEXTBEST_MAX_CONNECTIONS"] = str(max(1024, self.args.connections + 16))
        for name, value in self.args.setting:   # e.g. background_max_lag_seconds=0: the old equal turns
            env[f"NEXTBEST_{name.upper()}"] = value
        if self.wrapped:   # the same CLI, with GC timing and experiments (bench/wrap.py)
            cmd = [sys.executable, str(BENCH / "wrap.py"), *(["--freeze"] if self.args.gc_freeze else []),
                   *(["--stalls"] if self.args.stalls else []),
                   *(["--uvloop"] if self.args.uvloop else []), "serve"]
        else:
            cmd = [sys.executable, "-m", "bandit.cli", "serve"]
        cmd += ["--host", HOST, "--port", str(svc_port), "--data-dir", str(self.data_dir)]
        if self.args.redis_url:
            cmd += ["--redis-url", self.args.redis_url]
        if self.args.no_learner or self.args.split_learner:
            cmd += ["--no-learner"]
        self.service_cmd = cmd
        svc_log = self.tmp / "service.log"
        with svc_log.open("wb") as log:
            self.service = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=root, env=env, preexec_fn=pinned(self.server_cpu),
                                            start_new_session=True)
        wait_until_ready(self.service, lambda: http("GET", self.svc_url + "/readyz")[0] == 200,
                         "the nextbest service", svc_log)
        if self.args.split_learner:
            learner_cmd = [sys.executable, "-m", "bandit.cli", "learner", "--data-dir", str(self.data_dir),
                           *(["--redis-url", self.args.redis_url] if self.args.redis_url else [])]
            learner_log = self.tmp / "learner.log"
            with learner_log.open("wb") as log:
                self.learner = subprocess.Popen(learner_cmd, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, cwd=root, env=env,
                                                preexec_fn=pinned(self.client_cpu), start_new_session=True)
            wait_until_ready(self.learner, lambda: b"learner started" in learner_log.read_bytes(),
                             "the nextbest learner", learner_log)
        if not self.args.redis_url:
            try:
                self.redis_pid = int((self.data_dir / "redis.pid").read_text().strip())
            except (OSError, ValueError):
                self.redis_pid = None
            if self.redis_pid and self.redis_cpu is not None:
                os.sched_setaffinity(self.redis_pid, {self.redis_cpu})

    def cleanup(self) -> None:
        stop_process(self.learner, 60)
        stop_process(self.service, 60)
        stop_process(self.reference, 10)
        if not self.args.redis_url:
            self._stop_embedded_redis()
        else:
            self._delete_keys()
        if not self.args.keep_data:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"kept {self.tmp}", file=sys.stderr)

    def _stop_embedded_redis(self) -> None:
        """The service stops the redis-server it started; this catches a service that
        was killed or crashed (the server runs in its own session and would outlive it)."""
        pidfile = self.data_dir / "redis.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        sys.path.insert(0, str(REPO))
        from bandit.store.embedded import EmbeddedRedis
        try:
            EmbeddedRedis(self.data_dir).start().stop(force=True)
        except Exception as exc:  # last resort: it is ours, in our temp dir
            print(f"stopping the embedded redis-server failed ({exc}); killing pid {pid}", file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _delete_keys(self) -> None:
        """Only this run's keys (a unique prefix) in the Redis given with --redis-url."""
        try:
            import redis
            client = redis.Redis.from_url(self.args.redis_url)
            batch = []
            for key in client.scan_iter(match=f"{self.key_prefix}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
            client.close()
        except Exception as exc:
            print(f"could not delete keys {self.key_prefix}:* from {self.args.redis_url}: {exc}", file=sys.stderr)

    # -- load --------------------------------------------------------------------------
    def wait_quiet(self) -> dict[str, Any] | None:
        """On a shared machine: wait (up to --wait-quiet seconds) until other processes
        use less than QUIET cores, measured over 1 s, before a phase starts."""
        if not self.args.wait_quiet:
            return None
        ours = [p for p in (self.service.pid if self.service else None,
                            self.reference.pid if self.reference else None, self.redis_pid, os.getpid()) if p]
        started = time.monotonic()
        while True:
            before, ours_before = cpu_busy(), sum(cpu_seconds(p) or 0.0 for p in ours)
            time.sleep(1.0)
            after, ours_after = cpu_busy(), sum(cpu_seconds(p) or 0.0 for p in ours)
            busy = sum(after[c][0] - before[c][0] for c in after if c in before)
            foreign = max(0.0, busy - (ours_after - ours_before))
            waited = time.monotonic() - started
            if foreign < QUIET or waited >= self.args.wait_quiet:
                if foreign >= QUIET:
                    say(f"  machine still busy ({foreign:.2f} cores used by others) after {waited:.0f}s; going on")
                return {"waited_s": round(waited, 1), "others_cores_at_start": round(foreign, 3)}

    def wrk_phase(self, name: str, lua: str, base_url: str, duration: int, server_pid: int | None,
                  record: bool = True, connections: int | None = None, watch_backlog: bool = False) -> dict[str, Any]:
        script = self.lua_dir / f"{name}.lua"
        result_path = self.lua_dir / f"{name}.json"
        script.write_text(lua.replace("__RESULT_PATH__", str(result_path)))
        connections = connections or self.args.connections
        threads = min(self.args.threads, connections)
        cmd = [self.wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
               "--timeout", "10s", "--latency", "-s", str(script), base_url]
        quiet = self.wait_quiet() if record else None
        probes = self._probes_before(server_pid)
        before = self._cpu_snapshot(server_pid)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=pinned(self.client_cpu), cwd=self.lua_dir)
        watch = BacklogWatch(self.backlog, started) if watch_backlog else None   # a thread: after the fork
        try:
            stdout, stderr = proc.communicate(timeout=duration + 60)
        finally:
            samples = watch.stop() if watch else []
            if proc.poll() is None:
                proc.kill()
        out = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
        elapsed = time.monotonic() - started
        after = self._cpu_snapshot(server_pid)
        if out.returncode != 0 or not result_path.exists():
            raise BenchError(f"wrk failed ({out.returncode}) in phase {name}:\n{out.stdout}\n{out.stderr}")
        data = json.loads(result_path.read_text())
        active = data["duration_us"] / 1e6
        stops = [t["stopped"] for t in data["threads"] if t["stopped"] > 0]
        exhausted = bool(stops)
        if exhausted:   # reward phase: the ids ran out before the duration; rate over the time they lasted
            active = max(stops) - min(t["started"] for t in data["threads"])
        errors = data["errors"]
        result = {
            "tool": "wrk", "command": " ".join(cmd), "duration_s": round(active, 3),
            "requests": data["requests"], "rps": round(data["requests"] / active, 1) if active > 0 else 0.0,
            "ids_exhausted": exhausted, "errors": errors,
            "non_2xx": errors["status"], "socket_errors": errors["connect"] + errors["read"] + errors["write"]
            + errors["timeout"],
            "latency_ms": {k: round(v / 1000, 3) for k, v in data["latency_us"].items()},
            "threads": data["threads"], "wrk_stdout": out.stdout, "wall_s": round(elapsed, 3),
        }
        if watch:   # when the learner and the log had caught up, if they did before wrk ended
            result["caught_up_s"] = next((t for t, backlog in samples if t >= active and backlog == 0), None)
        # utilisation over the time load was applied (wrk waits out -d even when the ids ran out)
        result.update(self._cpu_delta(before, after, min(elapsed, active) if active > 0 else elapsed,
                                      data["requests"]))
        result.update(self._probes_after(probes, data["requests"]))
        if quiet:
            result["quiet_gate"] = quiet
        if record:
            self.phases[name] = result
        return result

    def _probes_before(self, server_pid: int | None) -> dict[str, Any]:
        """Redis INFO counters, and (with --gc-stats/--gc-freeze) reset the service's GC timings."""
        probes: dict[str, Any] = {"redis": self.redis_info(), "service": server_pid == getattr(self.service, "pid", -1)}
        if probes["service"] and self.wrapped:
            http("GET", self.svc_url + "/_bench/gc?reset=1")
        return probes

    def _probes_after(self, probes: dict[str, Any], requests: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        after = self.redis_info()
        if probes["redis"] and after:
            delta = {k: after[k] - probes["redis"][k] for k in after if k in probes["redis"]}
            out["redis_forks"] = delta.get("total_forks")
            if delta.get("total_forks"):   # how long the last fork stopped Redis (and every caller)
                out["redis_latest_fork_ms"] = round(after.get("latest_fork_usec", 0) / 1000, 1)
            out["redis_aof_delayed_fsync"] = delta.get("aof_delayed_fsync")
            if requests and "total_commands_processed" in delta:
                out["redis_commands_per_request"] = round(delta["total_commands_processed"] / requests, 2)
        if probes["service"] and self.wrapped:
            status, body = http("GET", self.svc_url + "/_bench/gc")
            if status == 200:
                out["gc"] = json.loads(body)
        return out

    def redis_info(self) -> dict[str, int] | None:
        fields = ("total_forks", "latest_fork_usec", "aof_delayed_fsync", "total_commands_processed", "used_memory")
        try:
            import redis
            if self.args.redis_url:
                client = redis.Redis.from_url(self.args.redis_url, socket_timeout=5)
            else:
                client = redis.Redis(unix_socket_path=str(self.data_dir / "redis.sock"), socket_timeout=5)
            try:
                info = client.info()
            finally:
                client.close()
        except Exception:
            return None
        return {k: int(info[k]) for k in fields if k in info}

    def _cpu_snapshot(self, server_pid: int | None) -> dict[str, float | None]:
        return {"server": cpu_seconds(server_pid), "redis": cpu_seconds(self.redis_pid),
                "client": children_cpu(), "cpus": cpu_busy(), "t": time.monotonic()}

    def _cpu_delta(self, before: dict, after: dict, elapsed: float, requests: int) -> dict[str, Any]:
        """CPU used by the server, redis-server and the load generator, per request; and
        what other processes on the machine used meanwhile (other people's work on a
        shared box, or hypervisor steal), which makes a phase's figures suspect."""
        out: dict[str, Any] = {}
        used: dict[str, float] = {}
        for who in ("server", "redis", "client"):
            if before[who] is None or after[who] is None:
                continue
            used[who] = after[who] - before[who]
            out[f"{who}_cpu_util"] = round(used[who] / elapsed, 3)
            out[f"{who}_cpu_us_per_request"] = round(used[who] / requests * 1e6, 1) if requests else None
        cpus = sorted(set(before["cpus"]) & set(after["cpus"]))
        busy = {c: after["cpus"][c][0] - before["cpus"][c][0] for c in cpus}
        steal = sum(after["cpus"][c][1] - before["cpus"][c][1] for c in cpus)
        out["cpu_busy"] = {f"cpu{c}": round(busy[c] / elapsed, 3) for c in cpus}
        out["steal_util"] = round(steal / elapsed, 3)
        out["foreign_cpu_util"] = round(max(0.0, sum(busy.values()) - sum(used.values())) / elapsed, 3)
        if self.server_cpu is not None and self.server_cpu in busy and "server" in used:
            ours = used["server"] + (used.get("redis", 0.0) if self.redis_cpu == self.server_cpu else 0.0)
            out["server_core_foreign_util"] = round(max(0.0, busy[self.server_cpu] - ours) / elapsed, 3)
        out["noisy"] = (out.get("server_core_foreign_util", out["foreign_cpu_util"]) > NOISY
                        or out["steal_util"] > NOISY)
        return out

    def openloop_phase(self, name: str, url: str, kind: str, rate: float, duration: float,
                       server_pid: int | None, *, prefix: str = "ol", ids_file: Path | None = None,
                       ok_ids_file: Path | None = None) -> dict[str, Any]:
        out_path = self.lua_dir / f"{name}.json"
        cmd = [sys.executable, str(BENCH / "openloop.py"), "--url", url, "--kind", kind, "--rate", f"{rate:.1f}",
               "--duration", f"{duration:.2f}", "--offers", str(self.args.offers), "--prefix", prefix,
               "--out", str(out_path)]
        if ids_file:
            cmd += ["--ids-file", str(ids_file)]
        if ok_ids_file:
            cmd += ["--ok-ids-file", str(ok_ids_file)]
        quiet = self.wait_quiet()
        probes = self._probes_before(server_pid)
        before = self._cpu_snapshot(server_pid)
        started = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=duration + 90,
                             preexec_fn=pinned(self.client_cpu, realtime=True), cwd=REPO)
        elapsed = time.monotonic() - started
        after = self._cpu_snapshot(server_pid)
        if out.returncode != 0:
            raise BenchError(f"the open-loop client failed in phase {name}:\n{out.stderr[-3000:]}")
        result = json.loads(out_path.read_text())
        result["tool"] = "openloop.py"   # engine: result["engine"]
        result["command"] = " ".join(cmd)
        active = result["sent"] / result["achieved_rate"] if result.get("achieved_rate") else elapsed
        result.update(self._cpu_delta(before, after, min(elapsed, active), result["sent"]))
        result.update(self._probes_after(probes, result["sent"]))
        # a client that fell behind (the aiohttp fallback engine saturates around 2-3k
        # requests/s) has its own queue in the latency, not only the server's
        result["client_kept_up"] = bool(result.get("achieved_rate")) and result["achieved_rate"] >= 0.95 * rate
        if quiet:
            result["quiet_gate"] = quiet
        self.phases[name] = result
        return result

    # -- service state -----------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        status, body = http("GET", self.svc_url + "/v1/stats", timeout=10)
        if status != 200:
            raise BenchError(f"GET /v1/stats answered {status}: {body[:300]!r}")
        return json.loads(body)

    def backlog(self) -> tuple[int, int]:
        """Joined events not yet learned, and not yet written to the decision log."""
        stats = self.stats()
        counters = stats["counters"]
        joined = sum(counters.get(k, 0) for k in ("events_joined", "events_defaulted"))
        settled = joined + counters.get("events_dropped", 0)
        learned = stats["model"]["examples_learned"]
        logged = counters.get("events_logged", 0)
        if self.args.split_learner:   # the serving process only follows checkpoints: ask Redis
            lags = self.metrics(("nextbest_learner_lag", "nextbest_decision_log_lag"))
            return int(lags["nextbest_learner_lag"]), int(lags["nextbest_decision_log_lag"])
        learn_backlog = 0 if self.args.no_learner else max(0, joined - learned)
        log_backlog = 0 if self.args.no_learner else max(0, settled - logged)
        return learn_backlog, log_backlog

    def metrics(self, names: tuple[str, ...]) -> dict[str, float]:
        status, body = http("GET", self.svc_url + "/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics answered {status}: {body[:300]!r}")
        values = {}
        for line in body.decode().splitlines():
            name, _, value = line.partition(" ")
            if name in names:
                values[name] = float(value)
        return values

    def drain(self, timeout: float = 180.0) -> dict[str, Any]:
        """Wait for the learner and the decision log to catch up with the rewards."""
        started = time.monotonic()
        at_end = self.backlog()
        current = at_end
        while max(current) > 0 and time.monotonic() - started < timeout:
            time.sleep(0.1)
            current = self.backlog()
        return {"learn_backlog_at_end": at_end[0], "log_backlog_at_end": at_end[1],
                "drain_seconds": round(time.monotonic() - started, 2) if max(at_end) > 0 else 0.0,
                "drained": max(current) == 0}

    # -- profiling ---------------------------------------------------------------------
    def profiled_phase(self, name: str, lua: str, duration: int) -> dict[str, Any]:
        out = RESULTS / f"profile-{name}-{self.stamp}.txt"
        spy_cmd = [self.py_spy, "record", "--pid", str(self.service.pid), "--rate", str(self.args.profile_rate),
                   "--duration", str(duration), "--format", "raw", "--output", str(out)]
        if self.args.profile_native:
            spy_cmd.append("--native")
        script = self.lua_dir / f"{name}.lua"
        result_path = self.lua_dir / f"{name}.json"
        script.write_text(lua)
        wrk_cmd = [self.wrk, "-t", str(self.args.threads), "-c", str(self.args.connections),
                   "-d", f"{duration + 3}s", "--timeout", "10s", "--latency", "-s", str(script), self.svc_url]
        load = subprocess.Popen(wrk_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=pinned(self.client_cpu), cwd=self.lua_dir)
        try:
            time.sleep(1.0)
            spy = subprocess.run(spy_cmd, capture_output=True, text=True, check=False, timeout=duration + 60,
                                 preexec_fn=pinned(self.client_cpu))
        finally:
            try:
                load.communicate(timeout=duration + 60)
            except subprocess.TimeoutExpired:
                load.kill()
                load.communicate()
        if spy.returncode != 0 or not out.exists():
            raise BenchError(f"py-spy failed ({spy.returncode}):\n{spy.stdout}\n{spy.stderr}\n"
                             "py-spy needs ptrace: run as root, set kernel.yama.ptrace_scope=0, "
                             "or in Docker add --cap-add SYS_PTRACE")
        wrk_data = json.loads(result_path.read_text()) if result_path.exists() else None
        summary = analyse_profile(out)
        summary["file"] = str(out.relative_to(REPO))
        summary["py_spy_command"] = " ".join(spy_cmd)
        if wrk_data:
            summary["wrk_requests"] = wrk_data["requests"]
            summary["wrk_threads"] = wrk_data["threads"]
        return summary

    # -- the whole run -----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        args = self.args
        d = args.duration
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.start_servers()
        ref_pid, svc_pid = self.reference.pid, self.service.pid
        per_thread_connections = args.connections // args.threads
        say(f"reference {self.ref_url} (pid {ref_pid}), service {self.svc_url} (pid {svc_pid}), "
            f"redis pid {self.redis_pid}; layout: {self.layout()}")

        def decide_lua(name: str, prefix: str) -> str:
            return lua_decide("__RESULT_PATH__", "/v1/decide", self.offers, prefix)

        # 1. max throughput --------------------------------------------------------------
        if args.warmup:
            say(f"warm-up: reference {args.warmup}s")
            self.wrk_phase("warmup_reference", decide_lua("w", f"{self.run_id}w"), self.ref_url, args.warmup,
                           ref_pid, record=False)
        say(f"reference max throughput ({d}s)")
        ref1 = self.wrk_phase("reference_max", decide_lua("r", f"{self.run_id}r"), self.ref_url, d, ref_pid)
        if args.warmup:
            say(f"warm-up: decide {args.warmup}s")
            self.wrk_phase("warmup_decide", decide_lua("w", f"{self.run_id}w"), self.svc_url, args.warmup,
                           svc_pid, record=False)
        say(f"decide max throughput ({d}s)")
        prefix_m = f"{self.run_id}m"
        dec = self.wrk_phase("decide_max", decide_lua("m", prefix_m), self.svc_url, d, svc_pid)
        time.sleep(1.0)
        say(f"decide max throughput, three slots (channel contact_center, {d}s)")
        dec3 = self.wrk_phase("decide_slots_max", lua_decide("__RESULT_PATH__", "/v1/decide", self.offers,
                                                             f"{self.run_id}t", channel="contact_center"),
                              self.svc_url, d, svc_pid)
        # wrk counts requests it generated; the last `connections` of each thread may have been
        # cut off in flight at the end, so they are not rewarded.
        pool = [max(0, t["counter"] - per_thread_connections) for t in sorted(dec["threads"], key=lambda t: t["tid"])]
        time.sleep(1.0)
        say(f"reward max throughput (up to {d}s, {sum(pool)} decisions to reward)")
        rew = self.wrk_phase("reward_max", lua_reward("__RESULT_PATH__", "/v1/reward", prefix_m, pool),
                             self.svc_url, d, svc_pid, watch_backlog=True)
        rew["ids_available"] = sum(pool)
        rew.update(self.drain())
        # rewards over the time until they were all learned and logged: if the ids ran out
        # before wrk's end, the background work went on in the rest of the phase
        if rew["drain_seconds"] == 0 and rew.get("caught_up_s") is not None:
            learned_by = rew["caught_up_s"]
        else:
            learned_by = (rew["wall_s"] if rew["ids_exhausted"] else rew["duration_s"]) + rew["drain_seconds"]
        rew["rps_sustained"] = round(rew["requests"] / max(learned_by, rew["duration_s"]), 1)
        time.sleep(1.0)

        # 2. latency at a fraction of the max rate ---------------------------------------
        frac = args.latency_fraction
        decide_rate = frac * dec["rps"]
        reward_rate = frac * rew["rps"]
        ok_ids = self.lua_dir / "latency_ids.txt"
        say(f"decide latency at {decide_rate:.0f}/s ({frac:.0%} of max, {d}s, open loop)")
        self.openloop_phase("decide_latency", self.svc_url + "/v1/decide", "decide", decide_rate, d, svc_pid,
                            prefix=f"{self.run_id}l", ok_ids_file=ok_ids)
        time.sleep(1.0)
        available = len([line for line in ok_ids.read_text().split() if line]) if ok_ids.exists() else 0
        reward_seconds = min(d, available / reward_rate) if reward_rate > 0 else 0
        if reward_seconds >= 2:
            say(f"reward latency at {reward_rate:.0f}/s ({frac:.0%} of max, {reward_seconds:.1f}s, open loop)")
            self.openloop_phase("reward_latency", self.svc_url + "/v1/reward", "reward", reward_rate,
                                reward_seconds, svc_pid, ids_file=ok_ids)
            self.phases["reward_latency"].update(self.drain())
            time.sleep(1.0)
        for rate in args.latency_rates:   # fixed rates, comparable across machines and commits
            say(f"decide latency at {rate:.0f}/s ({d}s, open loop)")
            self.openloop_phase(f"decide_latency_at_{rate:.0f}", self.svc_url + "/v1/decide", "decide", rate, d,
                                svc_pid, prefix=f"{self.run_id}f{rate:.0f}-")
            time.sleep(1.0)
        say(f"reference latency at {decide_rate:.0f}/s (the decide rate, {d}s, open loop)")
        self.openloop_phase("reference_latency", self.ref_url + "/v1/decide", "decide", decide_rate, d, ref_pid,
                            prefix=f"{self.run_id}q")
        say(f"decide and reference latency, closed loop, 1 connection ({d}s each)")
        self.wrk_phase("decide_c1", decide_lua("c", f"{self.run_id}c"), self.svc_url, d, svc_pid, connections=1)
        self.wrk_phase("reference_c1", decide_lua("c", f"{self.run_id}e"), self.ref_url, d, ref_pid, connections=1)
        say(f"reference max throughput again ({d}s, drift check)")
        ref2 = self.wrk_phase("reference_max_again", decide_lua("r", f"{self.run_id}s"), self.ref_url, d, ref_pid)

        # 3. profile -------------------------------------------------------------------------
        if args.profile:
            say(f"profiling decide with py-spy ({d}s at {args.profile_rate} Hz)")
            prefix_p = f"{self.run_id}p"
            self.profile["decide"] = self.profiled_phase("decide", decide_lua("p", prefix_p).replace(
                "__RESULT_PATH__", str(self.lua_dir / "decide.json")), d)
            threads = self.profile["decide"].get("wrk_threads") or []
            pool_p = [max(0, t["counter"] - per_thread_connections) for t in sorted(threads, key=lambda t: t["tid"])]
            self.drain()
            time.sleep(1.0)
            say(f"profiling reward with py-spy (up to {d}s)")
            self.profile["reward"] = self.profiled_phase("reward", lua_reward(
                str(self.lua_dir / "reward.json"), "/v1/reward", prefix_p, pool_p), d)
            self.profile["reward"].update(self.drain())

        final_stats = self.stats()
        ref_rps = (ref1["rps"] + ref2["rps"]) / 2
        dl = self.phases["decide_latency"]["latency_ms"]
        rl = self.phases.get("reward_latency", {}).get("latency_ms", {})
        summary = {
            "reference_rps": round(ref_rps, 1), "reference_rps_runs": [ref1["rps"], ref2["rps"]],
            "decide_rps": dec["rps"], "reward_rps": rew["rps"], "reward_rps_sustained": rew["rps_sustained"],
            "decide_vs_reference": round(dec["rps"] / ref_rps, 3),
            "decide_slots_rps": dec3["rps"], "decide_slots_vs_reference": round(dec3["rps"] / ref_rps, 3),
            "decide_slots_vs_decide": round(dec3["rps"] / dec["rps"], 3),
            "reward_vs_reference": round(rew["rps"] / ref_rps, 3),
            "reward_vs_decide": round(rew["rps"] / dec["rps"], 3),
            "reward_sustained_vs_decide": round(rew["rps_sustained"] / dec["rps"], 3),
            "latency_rate": round(decide_rate, 1),
            # from the due time: the open-loop figure, with any queueing in front of the server
            "decide_p50_ms": dl["from_schedule"].get("p50"), "decide_p99_ms": dl["from_schedule"].get("p99"),
            "decide_p99_ms_from_send": dl["from_send"].get("p99"),
            "reward_p50_ms": rl.get("from_schedule", {}).get("p50"),
            "reward_p99_ms": rl.get("from_schedule", {}).get("p99"),
            "decide_c1_rps": self.phases["decide_c1"]["rps"],
            "decide_c1_p50_ms": self.phases["decide_c1"]["latency_ms"]["p50"],
            "decide_c1_p99_ms": self.phases["decide_c1"]["latency_ms"]["p99"],
            "reference_c1_p50_ms": self.phases["reference_c1"]["latency_ms"]["p50"],
            "reference_c1_p99_ms": self.phases["reference_c1"]["latency_ms"]["p99"],
            "reference_p50_ms": self.phases["reference_latency"]["latency_ms"]["from_schedule"].get("p50"),
            "reference_p99_ms": self.phases["reference_latency"]["latency_ms"]["from_schedule"].get("p99"),
        }
        targets = {
            "decide_vs_reference >= 0.20 (aim 0.40)": summary["decide_vs_reference"] >= 0.20,
            "reward_rps >= decide_rps": summary["reward_rps"] >= summary["decide_rps"],
            "reward_rps_sustained >= decide_rps": summary["reward_rps_sustained"] >= summary["decide_rps"],
            "decide p99 < 2 ms at half the max rate": (summary["decide_p99_ms"] or 1e9) < 2.0,
            "three-slot decide >= 0.8 of one-slot decide": summary["decide_slots_vs_decide"] >= 0.8,
        }
        return {
            "timestamp": self.stamp, "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine_info(),
            "code": {**code_info(), "service_root": str(args.service_root or REPO), "label": args.label},
            "settings": {
                "duration_s": d, "warmup_s": args.warmup, "wrk_threads": args.threads,
                "connections": args.connections, "offers": args.offers, "context_features": 4,
                "latency_fraction": frac, "layout": self.layout(), "redis": args.redis_url or "embedded",
                "learner_in_service": not (args.no_learner or args.split_learner),
                "learner_process": args.split_learner, "service_command": " ".join(self.service_cmd),
                "gc_instrumented": self.wrapped, "gc_freeze": args.gc_freeze, "uvloop": args.uvloop,
                "service_settings": dict(args.setting),
            },
            "summary": summary, "targets": targets, "phases": self.phases, "profile": self.profile,
            "service_stats_at_end": final_stats,
        }

    def layout(self) -> str:
        if self.server_cpu is None:
            return "unpinned"
        return (f"server cpu {self.server_cpu}; wrk/open-loop client/py-spy cpu {self.client_cpu}; "
                f"redis-server cpu {self.redis_cpu}" + ("" if not self.args.redis_url else " (external: not pinned)"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per phase, 1-60 [10]")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds before each server, 0-10 [2]")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections [32]")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads [1]")
    parser.add_argument("--offers", type=int, default=8, help="candidate offers per decide, 1-50 [8]")
    parser.add_argument("--latency-fraction", type=float, default=0.5,
                        help="latency phases run at this fraction of the max rate [0.5]")
    parser.add_argument("--redis-url", help="use this Redis (keys under a unique prefix, deleted after) "
                        "instead of the embedded one")
    parser.add_argument("--latency-rates", type=lambda text: [float(x) for x in text.split(",") if x.strip()],
                        default=[], metavar="R1,R2",
                        help="also measure decide latency (open loop) at these fixed rates, e.g. 1000,2000")
    parser.add_argument("--split-learner", action="store_true",
                        help="serve with --no-learner and run `nextbest learner` as a second process on the "
                             "client's CPU (the deployment that scales: docs/operations.md)")
    parser.add_argument("--no-learner", action="store_true",
                        help="serve with --no-learner: rewards are joined but not learned or logged")
    parser.add_argument("--setting", action="append", default=[], type=_setting, metavar="NAME=VALUE",
                        help="a service setting (docs/api.md), passed as NEXTBEST_<NAME>; repeatable")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU for the server under test [1]")
    parser.add_argument("--client-cpu", type=int, default=0, help="CPU for wrk and the clients [0]")
    parser.add_argument("--redis-cpu", choices=("client", "server"), default="client",
                        help="where the embedded redis-server runs [client]")
    parser.add_argument("--stalls", action="store_true",
                        help="record event-loop stops over 10 ms and what the loop was running (bench/wrap.py)")
    parser.add_argument("--gc-stats", action="store_true",
                        help="run the service through bench/wrap.py and report its GC pauses per phase")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="experiment: as --gc-stats, and gc.freeze() once the service has started")
    parser.add_argument("--uvloop", action="store_true",
                        help="experiment: run the service (via bench/wrap.py) and the reference on uvloop "
                        "(pip install uvloop)")
    parser.add_argument("--wait-quiet", type=int, default=0, metavar="SECONDS",
                        help="on a shared machine, wait up to SECONDS before each phase for other processes "
                        "to go quiet (< 0.1 cores) [0: do not wait]")
    parser.add_argument("--profile", action="store_true",
                        help="also profile decide and reward with py-spy (pip install py-spy)")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second [200]")
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native (C/C++ frames too)")
    parser.add_argument("--service-root", type=Path,
                        help="run the service from this source tree instead of the repo, e.g. a commit exported "
                        "with: git archive <commit> | tar -x -C /tmp/nbsrc")
    parser.add_argument("--label", help="free text stored with the results (e.g. which commit --service-root is)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temp dir (data, scripts, logs)")
    parser.add_argument("--out", type=Path, help="result JSON [bench/results/service-<timestamp>.json]")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 60:
        parser.error("--duration must be within 1-60 seconds")
    if not 0 <= args.warmup <= 10:
        parser.error("--warmup must be within 0-10 seconds")
    if not 1 <= args.threads <= 16 or not args.threads <= args.connections <= 1024:
        parser.error("need 1 <= --threads <= 16 and --threads <= --connections <= 1024")
    if not 1 <= args.offers <= 50:
        parser.error("--offers must be within 1-50")
    if not 0.05 <= args.latency_fraction <= 0.95:
        parser.error("--latency-fraction must be within 0.05-0.95")
    if not all(0 < rate <= 100_000 for rate in args.latency_rates):
        parser.error("--latency-rates must be within (0, 100000] requests/s")
    if args.service_root is not None:
        args.service_root = args.service_root.resolve()
        if not (args.service_root / "bandit" / "cli.py").is_file():
            parser.error(f"--service-root {args.service_root} has no bandit/cli.py")
    if not 0 <= args.wait_quiet <= 600:
        parser.error("--wait-quiet must be within 0-600 seconds")
    if not 1 <= args.profile_rate <= 1000:
        parser.error("--profile-rate must be within 1-1000")
    cpus = os.sched_getaffinity(0)
    if not args.no_pin and len(cpus) >= 2:
        for cpu in (args.server_cpu, args.client_cpu):
            if cpu not in cpus:
                parser.error(f"CPU {cpu} is not available (have {sorted(cpus)}); use --server-cpu/--client-cpu "
                             "or --no-pin")
        if args.server_cpu == args.client_cpu:
            parser.error("--server-cpu and --client-cpu must differ (or use --no-pin)")
    return args


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed. Install it first:\n"
              "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk\n"
              "  macOS:         brew install wrk", file=sys.stderr)
        return 2
    if args.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("bench: --uvloop needs uvloop: .venv/bin/pip install uvloop", file=sys.stderr)
            return 2
    bench = Bench(args)
    if args.profile and bench.py_spy is None:
        print("bench: --profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    try:
        result = bench.run()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        bench.cleanup()
    save_results(result, args.out or RESULTS / f"service-{result['timestamp']}.json", print_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
