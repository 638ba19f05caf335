"""The benchmarks' shared plumbing: processes (start, pin, stop), CPU accounting from
/proc, HTTP probes, the machine and code records every result file carries, and how a
result is saved. Used by bench/service.py, bench/ab.py and bench/evaluation.py."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET = 0.10   # --wait-quiet: start a phase when other processes use less than this many cores
NOISY = 0.05   # a phase is flagged when others used more than 5% of the server's core
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# -- processes ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pinned(cpu: int | None, realtime: bool = False):
    """Pin a child to a CPU; ``realtime``: also run it under SCHED_FIFO when allowed
    (root), so the load generator's timers are not delayed by whatever else shares its
    core (redis-server, system daemons)."""
    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        if realtime:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            except (PermissionError, OSError):
                pass
    return setup if cpu is not None or realtime else None


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a live process (all its threads)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_busy() -> dict[int, tuple[float, float]]:
    """Per CPU: (busy seconds, steal seconds) since boot, from /proc/stat."""
    out = {}
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *values = line.split()
                user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in values[:8])
                out[int(name[3:])] = ((user + nice + system + irq + softirq + steal) / CLK_TCK, steal / CLK_TCK)
    except (OSError, ValueError):
        pass
    return out


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_ready(proc: subprocess.Popen, check, what: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} during startup:\n{tail(log)}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{what} did not become ready within {timeout:.0f}s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen | None, grace: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


# -- machine -----------------------------------------------------------------------------

def code_info() -> dict[str, Any]:
    """Which code was measured (read-only git queries)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    commit, subject, status = git("rev-parse", "HEAD"), git("log", "-1", "--format=%s"), git("status", "--porcelain")
    return {"commit": commit.strip() if commit else None, "subject": subject.strip() if subject else None,
            "modified": [line[3:] for line in status.splitlines() if line.strip()] if status else []}


def machine_info() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for module in ("aiohttp", "msgspec", "orjson", "redis", "hiredis", "vowpalwabbit", "numpy"):
        try:
            from importlib.metadata import version
            versions[module] = version(module)
        except Exception:
            versions[module] = None
    wrk = shutil.which("wrk")
    wrk_version = None
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else None
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        mem_gb = round(int(meminfo) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        mem_gb = None
    return {
        "nproc": os.cpu_count(), "cpus_available": len(os.sched_getaffinity(0)), "cpu_model": model,
        "memory_gb": mem_gb, "kernel": platform.release(), "python": platform.python_version(),
        "python_implementation": platform.python_implementation(), "packages": versions, "wrk": wrk_version,
    }


# -- the run -----------------------------------------------------------------------------


def save_results(result: dict, out: Path, report: Callable[[dict], None]) -> None:
    """Every bench's ending: the JSON file, the human-readable report, where the file is."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    report(result)
    print(f"\nresults: {out}")
