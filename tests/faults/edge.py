"""The fault scenarios at the edges: a full log filesystem that later grows, a data dir
that turns read-only under the leader, slow and vanishing clients, a hashed profile field
that must never reach the log in clear, and configs that must be refused with file:line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.faults.checker import Verdict
from tests.faults.deploy import Plan, deployment, drain, finish, leader, wait_leader
from tests.harness import REPO_ROOT, short_tempdir

RECOVER_S = 15.0


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"mount {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")


def mount_refused() -> str | None:
    """Why this machine cannot mount (not root, or root in a container without
    CAP_SYS_ADMIN), or None: a scenario that needs a mount is then skipped, saying why."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs as root)"
    probe = short_tempdir("nbmnt")
    try:
        _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return f"this machine refuses mounts ({exc}): the scenario needs a tmpfs or a bind mount"
    else:
        _umount(probe)
    finally:
        probe.rmdir()
    return None


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


async def _lines_written(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*") if p.is_file())


async def full_disk(plan: Plan) -> Verdict:
    """The decision log on a small tmpfs that fills under load (ENOSPC, a torn line), then
    grows (``remount,size=64m``): the log catches up with no gap and no torn line left
    (fault 1). Root only: mounting needs it (CI runs as root)."""
    verdict = Verdict("full_disk")
    verdict.skipped = mount_refused()
    if verdict.skipped:
        return verdict
    size = "3m" if plan.full else "96k"
    async with deployment() as (h, _):
        decisions = h.data_dir / "decisions"
        decisions.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(decisions))
        try:
            # the leader lets go once its duties fail: retry after 3 s, not the default 30
            service = await h.start(env={"NEXTBEST_LEASE_BACKOFF_SECONDS": "3"})
            load = await plan.load([service.base]).start()
            deadline = time.monotonic() + (300 if plan.full else 60)
            while shutil.disk_usage(decisions).free > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            full = time.monotonic()
            verdict.require(shutil.disk_usage(decisions).free == 0, f"the {size} tmpfs never filled")
            await asyncio.sleep(plan.phase_s)   # decisions and rewards go on; the log stays behind
            log = service.log_path.read_text(errors="replace")
            verdict.require("cannot write" in log, "the leader never said the log cannot be written")
            _mount("-o", "remount,size=64m", str(decisions))
            grown = time.monotonic()
            verdict.notes.append(f"full for {grown - full:.1f} s")
            await drain([service], timeout=60)   # under load: until the log has caught up once
            verdict.recover_s = time.monotonic() - grown
            await asyncio.sleep(plan.phase_s)
            return await finish(verdict, h, load)
        finally:
            for service in h.services:
                if service.proc.poll() is None:
                    await h.kill9(service)
            _umount(decisions)


async def readonly_leader(plan: Plan) -> Verdict:
    """The leader's data dir turns read-only (a read-only bind mount as root, chmod
    otherwise): it lets the lease go and the other process leads within RECOVER_S (fault 2)."""
    verdict = Verdict("readonly_leader")
    root = os.geteuid() == 0
    if root and (refused := mount_refused()):   # as root chmod does not stop writes: it needs the bind mount
        verdict.skipped = refused
        return verdict
    async with deployment(own_redis=True) as (h, _):
        from tests.faults.scenarios import TWO_DIRS, _two, two_logs
        first, second = await _two(h)
        load = await plan.load([first.base, second.base]).start()
        await asyncio.sleep(plan.phase_s)
        target = h.data_dir / TWO_DIRS[0]
        if root:
            _mount("--bind", str(target), str(target))
            _mount("-o", "remount,bind,ro", str(target))
        else:
            for path in (target, target / "models", target / "decisions"):
                path.chmod(0o555)
        try:
            found, took = await wait_leader([second], RECOVER_S)
            verdict.recover_s = took
            verdict.require(found is second, f"the other process did not lead within {RECOVER_S} s")
            await asyncio.sleep(plan.phase_s)
        finally:
            if root:
                _umount(target)
            else:
                for path in (target, target / "models", target / "decisions"):
                    path.chmod(0o755)
        verdict.require(await leader([first, second]) is second, "the leadership moved again")
        return await finish(verdict, h, load, two_logs(h))


HEAD = (b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n")
BODY_TIMEOUT_S = 1.0


async def _trickle(port: int, timeout: float) -> bytes:
    """A client that sends part of a body, then a byte now and then, never the rest: the
    status line it gets (b"" if none within ``timeout``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HEAD + b'{"channel": "web", ')
        await writer.drain()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return await asyncio.wait_for(reader.readline(), 0.3)
            except asyncio.TimeoutError:
                with contextlib.suppress(ConnectionError):
                    writer.write(b" ")
                    await writer.drain()
        return b""
    except ConnectionError:
        return b"reset"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _vanish(port: int) -> None:
    """A client that hangs up mid-body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD + b'{"channel": "web", ')
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def slow_clients(plan: Plan) -> Verdict:
    """Many connections trickling a body under load: each closed with a 408 by the body
    timeout, the load unharmed; clients hanging up mid-body leave no traceback (fault 6)."""
    verdict = Verdict("slow_clients")
    slow = 200 if plan.full else 40
    async with deployment() as (h, _):
        service = await h.start(env={"NEXTBEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S)})
        load = await plan.load([service.base]).start()
        await asyncio.sleep(plan.phase_s / 2)
        started = load.record.now()
        answers = await asyncio.gather(*(_trickle(service.port, BODY_TIMEOUT_S + 10) for _ in range(slow)))
        await asyncio.gather(*(_vanish(service.port) for _ in range(10)))
        verdict.recover_s = load.record.now() - started   # every slow client answered after this long
        timed_out = sum(a.startswith(b"HTTP/1.1 408") for a in answers)
        verdict.notes.append(f"{timed_out}/{slow} slow clients answered 408")
        verdict.require(timed_out == slow, f"only {timed_out} of {slow} slow clients got a 408: "
                        f"{sorted(set(answers))[:3]}")
        await asyncio.sleep(plan.phase_s / 2)
        verdict.require(not load.record.failures, f"the load failed beside slow clients: {load.record.codes()}")
        verdict = await finish(verdict, h, load)
        log = service.log_path.read_text(errors="replace")
        verdict.require("client disconnected during POST /v1/decide" in log, "no line for the disconnects")
        return verdict


MSISDN_BASE = 79001230000
SECRET = "fault-suite-secret"


async def privacy(plan: Plan) -> Verdict:
    """Profiles with an msisdn marked ``log: hash``, decided on under load: the number is
    never in clear in the log files or the joined stream (fault 8)."""
    verdict = Verdict("privacy")
    async with deployment() as (h, _):
        config = h.data_dir / "privacy.yaml"
        config.write_text(f"subscriber_secret: {SECRET}\nfeatures:\n  subscriber:\n    tariff: categorical\n"
                          "    msisdn: {type: categorical, log: hash}\n")
        service = await h.start("--config", str(config))
        subscribers = 20
        async with aiohttp.ClientSession() as http:
            for n in range(subscribers):
                profile = {"tariff": f"t{n % 3}", "msisdn": str(MSISDN_BASE + n)}
                async with http.put(f"{service.base}/v1/subscribers/s{n}", json=profile) as response:
                    assert response.status in (200, 201), await response.text()
        load = await plan.load([service.base], decide_extra=lambda n: {"subscriber_id": f"s{n % subscribers}"}).start()
        seen: dict[bytes, bytes] = {}   # stream id → its fields: sampled while the load runs (checkpoints trim it)
        deadline = time.monotonic() + plan.phase_s * 2
        while time.monotonic() < deadline:
            for sid, fields in await asyncio.to_thread(h.redis().xrange, h.keys.joined):
                seen[sid] = b"".join(k + v for k, v in fields.items())
            await asyncio.sleep(0.1)
        await load.stop()
        clear = [str(MSISDN_BASE + n).encode() for n in range(subscribers)]
        stream = list(seen)
        stream_bytes = b"".join(seen.values())
        verdict = await finish(verdict, h, load)
        log_bytes = b"".join(p.read_bytes() for p in (h.data_dir / "decisions").rglob("*") if p.is_file())
        in_stream = [c for c in clear if c in stream_bytes]
        in_log = [c for c in clear if c in log_bytes]
        verdict.require(len(stream) > 0, "the joined stream was empty whenever read")
        verdict.notes.append(f"{len(stream)} stream entries and {verdict.logged} log lines searched")
        verdict.require(not in_stream, f"msisdn in clear in the joined stream: {in_stream[:3]}")
        verdict.require(not in_log, f"msisdn in clear in the decision log: {in_log[:3]}")
        verdict.require(b"msisdn=" in log_bytes, "no hashed msisdn token in the log (the field was not used)")
        return verdict


BAD_CONFIGS = {"vw_args": "vw_args: --no_such_option\n", "bits": "bits: 99\n", "port": "port: 70000\n"}


async def bad_config(plan: Plan) -> Verdict:
    """``serve`` with each of three bad configs: exit status non-zero, one line naming
    file:line, no traceback, nothing started (fault 9)."""
    verdict = Verdict("bad_config")
    directory = short_tempdir("nbfc")
    try:
        for name, text in BAD_CONFIGS.items():
            path = directory / f"{name}.yaml"
            path.write_text(f"data_dir: {directory / 'data'}\n{text}")
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "bandit.cli", "serve", "--config", str(path)],
                capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
            output = done.stdout + done.stderr
            verdict.require(done.returncode != 0, f"{name}: exit status 0")
            verdict.require(f"{path}:2: setting '{name}'" in output, f"{name}: no {path}:2 in {output[-300:]!r}")
            verdict.require("Traceback" not in output, f"{name}: a traceback")
            verdict.notes.append(f"{name}: exit {done.returncode}: {output.strip().splitlines()[-1][:120]}")
        verdict.require(not (directory / "data").exists(), "a data dir was created for a refused config")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return verdict
