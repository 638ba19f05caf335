"""Scale-out: two decide-only service processes and a separate learner process share
one Redis. Rewards posted to either service are learned once by the learner, logged
once, and both services pick up the learner's checkpoints."""

from __future__ import annotations


import aiohttp
import pytest

from tests.harness import Harness, _s, wait_until, read_lines

OFFERS = [{"id": f"o{i}"} for i in range(3)]
FAST_CHECKPOINTS = {"NEXTBEST_CHECKPOINT_EVERY_SECONDS": "0.3", "NEXTBEST_MODEL_POLL_SECONDS": "0.2"}


@pytest.mark.timeout(120)
async def test_two_services_and_a_learner_share_one_redis(harness: Harness) -> None:
    learner = await harness.start(command="learner", env=FAST_CHECKPOINTS)
    redis = harness.redis()

    async def lease_held():
        holder = _s(redis.get(harness.keys.worker_lock))
        return holder is not None and f":{learner.proc.pid}:" in holder
    await wait_until(lease_held, what=f"the learner to take the lease\n{learner.log_tail()}")

    services = [await harness.start("--no-learner", env=FAST_CHECKPOINTS) for _ in range(2)]
    acknowledged = []
    async with aiohttp.ClientSession() as http:
        for n in range(240):
            service = services[n % 2]
            best = n % 3
            body = {"channel": "web", "context": {"reason": f"r{best}"}, "offers": OFFERS, "event_id": f"mp-{n}"}
            async with http.post(f"{service.base}/v1/decide", json=body) as response:
                assert response.status == 200
                decision = await response.json()
            served = decision["ranking"][0]["offer_id"]
            reward = {"event_id": decision["event_id"], "reward": 1.0 if served == f"o{best}" else 0.0}
            async with http.post(f"{services[(n + 1) % 2].base}/v1/reward", json=reward) as response:
                assert response.status == 200   # the reward reaches the other process: the join is in Redis
                acknowledged.append(decision["event_id"])

        async def all_learned():
            learned = _s(redis.hget(harness.keys.model, "learned"))
            return learned is not None and int(learned) == len(acknowledged)
        await wait_until(all_learned, what=f"the learner to checkpoint every reward\n{learner.log_tail()}")
        version = int(_s(redis.hget(harness.keys.model, "version")))

        for service in services:
            async def caught_up(service=service):
                async with http.get(f"{service.base}/v1/stats") as response:
                    stats = await response.json()
                return stats["model"]["version"] == f"{version}.{len(acknowledged)}" and stats
            stats = await wait_until(caught_up, what=f"{service.base} to load checkpoint {version}")
            assert stats["learner"]["leading"] is False
            async with http.post(f"{service.base}/v1/decide", json={"channel": "web", "context": {"reason": "r2"},
                                                                    "offers": OFFERS, "k": 3}) as response:
                ranking = (await response.json())["ranking"]
            assert max(ranking, key=lambda r: r["probability"])["offer_id"] == "o2"

    async def all_logged():
        return len(read_lines(harness.data_dir / "decisions")) == len(acknowledged)
    await wait_until(all_logged, what="the learner to log every joined event")
    assert sorted(line["EventId"] for line in read_lines(harness.data_dir / "decisions")) == sorted(acknowledged)

    for process in (*services, learner):
        await harness.terminate(process)
