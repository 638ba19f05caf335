"""The serving loop's busy poll: I/O and timers behave as on asyncio's own loop, a
quiet loop still sleeps, and the setting is validated."""

from __future__ import annotations

import asyncio
import resource
import socket
import time

import pytest

from bandit.config import ConfigError, load_settings
from bandit.eventloop import BusyPollSelector, new_event_loop


def test_io_and_timers_work_and_an_idle_loop_sleeps():
    loop = new_event_loop(200)
    assert isinstance(loop._selector, BusyPollSelector)   # noqa: SLF001

    async def scenario() -> tuple[bytes, float, float]:
        left, right = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=left)
        loop.call_later(0.05, right.send, b"ping")
        got = await asyncio.wait_for(reader.readexactly(4), 2)
        cpu_before, wall_before = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await asyncio.sleep(0.5)   # nothing to do: the loop must block, not spin for half a second
        cpu_after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall_before
        writer.close()
        right.close()
        cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        return got, cpu, wall

    try:
        got, cpu, wall = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert got == b"ping"
    assert 0.45 <= wall < 1.5
    assert cpu < 0.25   # spinning through the sleep would cost ~0.5 s of CPU


def test_zero_turns_the_busy_poll_off():
    loop = new_event_loop(0)
    try:
        assert not isinstance(getattr(loop, "_selector", None), BusyPollSelector)
    finally:
        loop.close()


@pytest.mark.parametrize("value", ["-1", "20000", "fast"])
def test_bad_busy_poll_settings_are_refused(value):
    with pytest.raises(ConfigError, match="busy_poll_us"):
        load_settings(env={"NEXTBEST_BUSY_POLL_US": value})
    assert load_settings(env={"NEXTBEST_BUSY_POLL_US": "50"}).busy_poll_us == 50.0
