"""A nextbest service of the simulator's own: ``nextbest serve`` in a child process on
the embedded Redis of a fresh data directory, so the simulator (one core) and the
service (the other) run side by side as they would in production."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bandit.store.embedded import EmbeddedRedis

MARKER = ".nextbest-simulation"   # a data directory the simulator made, and may wipe


class ServiceError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_data_dir(path: Path) -> Path:
    """An empty data directory: one a previous simulation left is wiped (its embedded
    Redis stopped first); anything else that is not empty is refused, never deleted."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise ServiceError(f"{path} is not empty and was not made by a simulation: choose another --data-dir")
        EmbeddedRedis(path).start().stop(force=True)   # stop a server a crashed run left behind
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by nextbest simulate; deleted by the next run in this directory\n")
    return path


class LocalService:
    """``async with LocalService(...) as url``: started, ready, and stopped gracefully
    (SIGTERM: the service checkpoints the model and stops its embedded Redis)."""

    def __init__(self, data_dir: Path, config_file: Path, catalog: Path, settings: dict[str, Any],
                 port: int | None = None) -> None:
        self.data_dir, self.config_file, self.catalog, self.settings = data_dir, config_file, catalog, settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "service.log"
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> str:
        env = {**os.environ, **{f"NEXTBEST_{k.upper()}": str(v) for k, v in self.settings.items()}}
        env.pop("NEXTBEST_REDIS_URL", None)   # the embedded Redis of this data directory
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bandit.cli", "serve", "--config", str(self.config_file),
                "--catalog", str(self.catalog), "--data-dir", str(self.data_dir), "--port", str(self.port),
                stdout=log, stderr=log, env=env, start_new_session=True)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def restart(self, settings: dict[str, Any]) -> str:
        """Stop gracefully and start again on the same data directory and port with these
        settings (the embedded Redis keeps its data: append-only file)."""
        await self.stop()
        self.settings = settings
        return await self.__aenter__()

    async def wait(self) -> int:
        assert self._process is not None
        return await self._process.wait()

    async def stop(self, timeout: float = 30.0) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()

    async def _wait_ready(self, timeout: float = 90.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as http:
            while loop.time() < deadline:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise ServiceError(f"the service exited with code {self._process.returncode}:\n{self._tail()}")
                try:
                    async with http.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise ServiceError(f"the service was not ready after {timeout:.0f} s:\n{self._tail()}")

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no service log)"
