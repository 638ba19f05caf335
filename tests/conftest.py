"""Shared fixtures. Tests talk to real Redis servers: the embedded one the product
starts (always), and the one at REDIS_URL when it is set. Each test gets its own key
prefix, so tests never see each other's data and nothing is flushed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bandit.app import create_app
from bandit.config import Settings, load_settings
from bandit.store.embedded import EmbeddedRedis
from tests.harness import harness, short_tempdir  # noqa: F401 (harness is a fixture)


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of this test alone: it may be frozen, killed or refuse writes."""
    directory = short_tempdir("nbr")
    server = EmbeddedRedis(directory).start()
    assert server._proc is not None
    try:
        yield server
    finally:
        with_pid = server._proc.pid if server._proc is not None else None
        if with_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(with_pid, signal.SIGCONT)
        server.stop(force=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_redis() -> Iterator[EmbeddedRedis]:
    directory = short_tempdir("nbsess")
    server = EmbeddedRedis(directory).start()
    yield server
    server.stop(force=True)
    shutil.rmtree(directory, ignore_errors=True)


REDIS_TARGETS = ["embedded"] + (["external"] if os.environ.get("REDIS_URL") else [])


@pytest.fixture(params=REDIS_TARGETS)
def redis_url(request: pytest.FixtureRequest, embedded_redis: EmbeddedRedis) -> str:
    """Each test that takes this runs against every Redis available."""
    return embedded_redis.url if request.param == "embedded" else os.environ["REDIS_URL"]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    directory = short_tempdir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"nbtest:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def make_settings(redis_url: str, key_prefix: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        # slots={}: the one-slot deployment (cb model, cb log) unless a test asks for slots;
        # the multi-slot deployment (the shipped default) is tested in tests/test_slots*.py.
        base: dict[str, Any] = {"redis_url": redis_url, "key_prefix": key_prefix, "data_dir": data_dir,
                                "checkpoint_every_seconds": 3600.0, "slots": {}}
        base.update(overrides)
        return load_settings(env={}, overrides=base)
    return make


@pytest.fixture
async def make_client(make_settings, aiohttp_client) -> Callable[..., Any]:
    """An HTTP client for a real service (real Redis, real VW) built from settings overrides."""
    async def make(**overrides: Any):
        client = await aiohttp_client(create_app(make_settings(**overrides)))
        await wait_ready(client)
        return client
    return make


async def wait_ready(client, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await client.get("/readyz")
        if response.status == 200:
            return
        if loop.time() > deadline:
            raise TimeoutError(await response.text())
        await asyncio.sleep(0.05)


OFFERS = [{"id": f"offer{i}", "features": {"category": f"c{i % 2}", "price": 1.5 * i}} for i in range(4)]


def _dump_tasks_on_sigusr1() -> None:
    """``kill -USR1 <pytest pid>`` prints every asyncio task's stack: what a hung test
    (usually a teardown) is waiting for, which py-spy's thread stacks do not show."""
    import signal
    import sys
    import traceback

    def dump(signum: int, frame: Any) -> None:
        for task in asyncio.all_tasks() if _running_loop() else ():
            print(f"--- {task!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        traceback.print_stack(frame, file=sys.stderr)
        sys.stderr.flush()

    signal.signal(signal.SIGUSR1, dump)


def _running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_dump_tasks_on_sigusr1()
