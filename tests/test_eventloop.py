"""The serving loop: its busy poll (I/O and timers behave as on asyncio's own loop, a
quiet loop still sleeps, the setting is validated) and its idle turns for background
work (bandit.learn.pacing)."""

from __future__ import annotations

import asyncio
import resource
import socket
import time

import pytest

from bandit.config import ConfigError, load_settings
from bandit.store.eventloop import (
    ServingEventLoop,
    ServingSelector,
    idle_turn,
    new_event_loop,
)
from bandit.learn.pacing import Pace, lag_ms


def test_io_and_timers_work_and_an_idle_loop_sleeps():
    loop = new_event_loop(200)
    assert isinstance(loop, ServingEventLoop) and loop.serving_selector._poll_seconds == 200e-6

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
        assert isinstance(loop._selector, ServingSelector) and loop._selector._poll_seconds == 0
    finally:
        loop.close()


def _run(loop: asyncio.AbstractEventLoop, coro):
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.mark.parametrize("busy_poll_us", [0, 200])
def test_an_idle_turn_waits_until_nothing_else_is_ready(busy_poll_us):
    """A chain of ready callbacks (requests being served) runs to its end before the
    background duty gets its turn; on a foreign loop the turn is a plain sleep(0)."""
    order: list[str] = []

    def chain(n: int) -> None:
        order.append(f"request {n}")
        if n < 50:
            asyncio.get_running_loop().call_soon(chain, n + 1)

    async def scenario() -> None:
        asyncio.get_running_loop().call_soon(chain, 1)
        await idle_turn()
        order.append("background")

    _run(new_event_loop(busy_poll_us), scenario())
    assert order == [f"request {n}" for n in range(1, 51)] + ["background"]

    order.clear()
    _run(asyncio.new_event_loop(), scenario())
    assert order.index("background") < 5   # asyncio's own loop: no idle turns, just a yield


def test_each_idle_moment_goes_to_one_duty_in_turn():
    """Two duties waiting: the first gets the idle moment; the work it starts runs before
    the second gets the next one (a request would wait behind one slice, not two)."""
    order: list[str] = []

    def chain(n: int) -> None:
        order.append(f"work {n}")
        if n < 5:
            asyncio.get_running_loop().call_soon(chain, n + 1)

    async def duty(name: str) -> None:
        await idle_turn()
        order.append(name)
        if name == "learner":
            asyncio.get_running_loop().call_soon(chain, 1)

    async def scenario() -> None:
        await asyncio.gather(duty("learner"), duty("log"))

    _run(new_event_loop(0), scenario())
    assert order == ["learner", "work 1", "work 2", "work 3", "work 4", "work 5", "log"]


def test_a_duty_too_far_behind_stops_waiting_for_idle():
    """Under a load that never leaves the loop idle, a duty within its lag bound waits;
    one further behind than the bound takes plain turns (and counts them)."""
    loop = new_event_loop(0)

    async def busy_forever() -> None:
        while True:
            await asyncio.sleep(0)

    async def scenario() -> tuple[bool, bool, int]:
        hog = asyncio.create_task(busy_forever())
        pace = Pace(max_lag_seconds=5.0)
        now_ms = int(time.time() * 1000)
        recent, old = f"{now_ms - 1000}-0", f"{now_ms - 60_000}-3"
        try:
            waited = not (await _finishes_within(pace.turn(recent), 0.2))
            behind_ok = await _finishes_within(pace.turn(old), 0.2)
        finally:
            hog.cancel()
        return waited, behind_ok, pace.behind_turns

    waited, behind_ok, behind_turns = _run(loop, scenario())
    assert waited and behind_ok and behind_turns == 1
    assert 59_000 < lag_ms(f"{int(time.time() * 1000) - 60_000}-0") < 61_000
    assert lag_ms("garbage") == 0.0


async def _finishes_within(coro, seconds: float) -> bool:
    try:
        await asyncio.wait_for(coro, seconds)
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("value", ["-1", "100000", "soon"])
def test_bad_background_lag_settings_are_refused(value):
    with pytest.raises(ConfigError, match="background_max_lag_seconds"):
        load_settings(env={"NEXTBEST_BACKGROUND_MAX_LAG_SECONDS": value})
    assert load_settings(env={"NEXTBEST_BACKGROUND_MAX_LAG_SECONDS": "0"}).background_max_lag_seconds == 0.0


@pytest.mark.parametrize("value", ["-1", "20000", "fast"])
def test_bad_busy_poll_settings_are_refused(value):
    with pytest.raises(ConfigError, match="busy_poll_us"):
        load_settings(env={"NEXTBEST_BUSY_POLL_US": value})
    assert load_settings(env={"NEXTBEST_BUSY_POLL_US": "50"}).busy_poll_us == 50.0
