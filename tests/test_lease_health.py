"""A leader that cannot do its duties lets go: two real service processes on one Redis,
each with its own data dir; the leader's checkpoint directory is replaced by a plain file
(a real ENOTDIR/EEXIST on every write there), it releases the lease, reports not ready,
and the other process takes over the learning and the log without a gap."""

from __future__ import annotations

import shutil
import time

import aiohttp
import pytest

from bandit.store.embedded import EmbeddedRedis
from tests.harness import decide_and_reward, Harness, Service, wait_until, read_lines



_pairs = decide_and_reward


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url) as response:
        return response.status, await response.json()


@pytest.mark.timeout(120)
async def test_a_leader_that_cannot_write_its_data_dir_lets_go(harness: Harness) -> None:
    first = await harness.start(env={"NEXTBEST_LEASE_BACKOFF_SECONDS": "3"})
    other_dir = harness.data_dir / "b"
    extra = ["--data-dir", str(other_dir)]
    if harness.redis_url is None:
        extra += ["--redis-url", EmbeddedRedis(harness.data_dir).url]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async def leads(service: Service):
            return (await _get(http, f"{service.base}/v1/stats"))[1]["learner"]["leading"]
        await wait_until(lambda: leads(first), what=f"the first process to lead\n{first.log_tail()}")
        second = await harness.start(*extra)
        assert not await leads(second)
        acked = await _pairs(http, first, "before", 30)
        await wait_until(lambda: _logged(harness.data_dir / "decisions", 30), what="the first 30 lines")

        models = harness.data_dir / "models"
        shutil.rmtree(models)
        models.write_text("not a directory")   # every checkpoint copy and probe there fails
        broken = time.monotonic()
        await wait_until(lambda: leads(second), timeout=15, what=f"a take-over\n{first.log_tail()}")
        took_over = time.monotonic() - broken
        print(f"take-over {took_over:.1f} s after the data dir broke")
        assert took_over < 8, took_over
        assert not await leads(first)
        status, body = await _get(http, f"{first.base}/readyz")
        assert status == 503 and body["error"]["code"] == "duties_failing", body
        assert str(models) in body["error"]["message"]
        assert (await _get(http, f"{second.base}/readyz"))[0] == 200

        acked += await _pairs(http, first, "after", 30)   # the one that let go still decides
        await wait_until(lambda: _logged(other_dir / "decisions", 30), what=f"the new leader's log\n"
                         f"{second.log_tail()}")
        ids = [line["EventId"] for d in (harness.data_dir, other_dir) for line in read_lines(d / "decisions")]
        assert ids == acked   # every joined event once, in order, across the two logs

        models.unlink()   # fixed: ready again after the back-off, following the new leader
        await wait_until(lambda: _ready(http, first), timeout=10, what=f"ready again\n{first.log_tail()}")
        assert not await leads(first) and await leads(second)
    log = first.log_path.read_text()
    assert "releasing the learner lease" in log and "Traceback" not in log


async def _ready(http: aiohttp.ClientSession, service: Service) -> bool:
    return (await _get(http, f"{service.base}/readyz"))[0] == 200


async def _logged(directory, count: int) -> bool:
    try:
        return len(read_lines(directory)) >= count
    except (OSError, ValueError):
        return False
