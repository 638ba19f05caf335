"""Running real nextbest processes in tests: one data directory and one Redis (the
embedded one a process starts there, or REDIS_URL with a unique key prefix); every
process and embedded server a test starts is cleaned up, even on failure."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis

from bandit.learn.decision_log import log_files
from bandit.store.embedded import EmbeddedRedis
from bandit.store.keys import Keys
from bandit.store.store import JoinedEvent, Store, _joined_event

REPO_ROOT = Path(__file__).resolve().parents[1]


def read_lines(directory: Path) -> list[dict[str, Any]]:
    """Every event in a decision log directory, oldest first, all in memory (replay
    streams the same files: replay/readers/dsjson.py)."""
    out = []
    for path in log_files(directory):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            out.extend(orjson.loads(line) for line in fh if line.strip())
    return out


async def joined_entries(store: Store, after_id: str = "-") -> list[JoinedEvent]:
    """The joined stream's entries after ``after_id`` (all: "-"), as the consumers decode them."""
    start = "-" if after_id == "-" else f"({after_id}"
    reply = await store.redis.xrange(store.keys.joined, min=start, max="+")
    return [_joined_event(sid, fields) for sid, fields in reply]


def short_tempdir(prefix: str = "nbt") -> Path:
    """Unix socket paths are limited to ~107 bytes: keep data dirs short."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


VARIANTS = ["embedded"] + (["external"] if os.environ.get("REDIS_URL") else [])
CHECKPOINT_EVERY_EVENTS = 40
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


async def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll an async predicate until it returns something true; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _alive(pid: int) -> bool:
    """A live process, not a zombie left for a PID 1 that never reaps."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _redis_servers_on(data_dir: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"redis-server.*{data_dir}/"], capture_output=True, text=True)
    return [pid for pid in map(int, out.stdout.split()) if _alive(pid)]


def _s(value: Any) -> Any:
    """bytes from redis-py as str."""
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return f"--- {self.log_path.name} ---\n{_tail(self.log_path)}"


@dataclass
class Harness:
    """One data directory and one Redis (the service's embedded one, or REDIS_URL with
    a unique key prefix); starts service processes and always cleans them up."""

    variant: str
    data_dir: Path
    prefix: str
    redis_url: str | None            # None: the service runs its embedded Redis in data_dir
    services: list[Service] = field(default_factory=list)
    _client: redis.Redis | None = None
    _servers: list[EmbeddedRedis] = field(default_factory=list)   # embedded servers this test started

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTBEST_")}
        env.update({
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            "NEXTBEST_CHECKPOINT_EVERY_EVENTS": str(CHECKPOINT_EVERY_EVENTS),
            "NEXTBEST_REWARD_WAIT_SECONDS": "600",
        })
        if self.redis_url is not None:
            env["NEXTBEST_KEY_PREFIX"] = self.prefix
        return env

    async def start(self, *extra: str, command: str = "serve", env: dict[str, str] | None = None) -> Service:
        """Start ``nextbest <command>`` on this harness's data and Redis; a ``serve`` is
        waited for until /readyz answers 200."""
        port = _free_port()
        log_path = self.data_dir / f"{command}-{len(self.services) + 1}.log"
        cmd = [sys.executable, "-m", "bandit.cli", command, "--data-dir", str(self.data_dir), *extra]
        if command == "serve":
            cmd += ["--port", str(port)]
        if self.redis_url is not None:
            cmd += ["--redis-url", self.redis_url]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**self.env(), **(env or {})}, cwd=REPO_ROOT)
        service = Service(proc, port, log_path)
        self.services.append(service)
        if command == "serve":
            await self._wait_ready(service)
        return service

    async def _wait_ready(self, service: Service) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if service.proc.poll() is not None:
                    raise AssertionError(f"service exited with {service.proc.returncode} during startup\n"
                                         f"{service.log_tail()}")
                try:
                    async with session.get(f"{service.base}/readyz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"service not ready within {READY_TIMEOUT}s\n{service.log_tail()}")
                await asyncio.sleep(0.05)

    @staticmethod
    async def kill9(service: Service) -> None:
        os.kill(service.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(service.proc.wait, STOP_TIMEOUT)

    @staticmethod
    async def terminate(service: Service) -> None:
        """SIGTERM: the service writes a final checkpoint and flushes the log, then exits 0."""
        os.kill(service.proc.pid, signal.SIGTERM)
        try:
            code = await asyncio.to_thread(service.proc.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"service did not exit within {STOP_TIMEOUT}s of SIGTERM\n"
                                 f"{service.log_tail()}") from None
        assert code == 0, f"service exited with {code} after SIGTERM\n{service.log_tail()}"

    def redis(self) -> redis.Redis:
        """A client on the service's Redis. For the embedded one, adopt the server a
        service left running, or start it from its AOF when none runs (a service that
        started it stops it on SIGTERM)."""
        if self.redis_url is not None:
            if self._client is None:
                self._client = redis.Redis.from_url(self.redis_url)
            return self._client
        server = EmbeddedRedis(self.data_dir).start()
        if server.started_here:
            self._servers.append(server)
        if self._client is not None:
            try:
                self._client.ping()
                return self._client
            except redis.ConnectionError:
                self._client.close()
        self._client = redis.Redis.from_url(server.url)
        return self._client

    def cleanup(self) -> None:
        for service in self.services:
            if service.proc.poll() is None:
                os.kill(service.proc.pid, signal.SIGKILL)
                service.proc.wait(STOP_TIMEOUT)
        if self._client is not None:
            if self.redis_url is not None:
                keys = list(self._client.scan_iter(match=f"{self.prefix}:*", count=1000))
                if keys:
                    self._client.delete(*keys)
            self._client.close()
            self._client = None
        elif self.redis_url is not None:
            with redis.Redis.from_url(self.redis_url) as client:
                keys = list(client.scan_iter(match=f"{self.prefix}:*", count=1000))
                if keys:
                    client.delete(*keys)
        if self.variant == "embedded":
            try:
                EmbeddedRedis(self.data_dir).start().stop(force=True)
                for server in self._servers:
                    server.stop(force=True)     # already down: this only reaps our child process
            finally:
                for pid in _redis_servers_on(self.data_dir):   # a stop that failed must not leak a server
                    os.kill(pid, signal.SIGKILL)
        leftover = _redis_servers_on(self.data_dir)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        assert leftover == [], f"redis-server processes left on {self.data_dir}: {leftover}"


@pytest.fixture(params=VARIANTS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    data_dir = short_tempdir("nbc")
    if request.param == "embedded":
        h = Harness("embedded", data_dir, "nb", None)
    else:
        h = Harness("external", data_dir, f"nbtest:{uuid.uuid4().hex[:12]}", os.environ["REDIS_URL"])
    try:
        yield h
    finally:
        h.cleanup()


async def decide_and_reward(http: aiohttp.ClientSession, service: Service, tag: str, count: int) -> list[str]:
    """``count`` decisions on a running service, each rewarded at once; the acknowledged ids."""
    offers = [{"id": f"o{i}"} for i in range(3)]
    acked = []
    for n in range(count):
        body = {"channel": "web", "context": {"n": n % 3}, "offers": offers, "event_id": f"{tag}-{n}"}
        async with http.post(f"{service.base}/v1/decide", json=body) as response:
            assert response.status == 200, await response.text()
        async with http.post(f"{service.base}/v1/reward", json={"event_id": f"{tag}-{n}", "reward": 1}) as response:
            assert response.status == 200, await response.text()
        acked.append(f"{tag}-{n}")
    return acked
