"""The service learns online over HTTP, and its logged propensities are honest."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import numpy as np
from scipy import stats

OFFERS = [{"id": f"offer{i}", "features": {"family": f"f{i}"}} for i in range(3)]


async def decide(client, reason: str, event_id: str) -> dict:
    body = {"channel": "web", "context": {"reason": reason}, "offers": OFFERS, "event_id": event_id}
    response = await client.post("/v1/decide", json=body)
    assert response.status == 200
    return await response.json()


async def test_learns_the_best_offer_for_each_context(make_client):
    """Context r<i> is best served offer<i>; after a few thousand rounds the served offer
    is the best one at least 90% of the time (epsilon 0.1 explores ~6.7% by design)."""
    client = await make_client(exploration="epsilon", epsilon=0.1)
    rng = random.Random(11)
    served_best = []
    for n in range(3000):
        best = rng.randrange(3)
        decision = await decide(client, f"r{best}", f"learn-{n}")
        served = decision["ranking"][0]["offer_id"]
        served_best.append(served == f"offer{best}")
        reward = 1.0 if served == f"offer{best}" else 0.0
        assert (await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": reward})).status == 200
    last = served_best[-1000:]
    assert sum(last) / len(last) >= 0.90, sum(last) / len(last)


async def test_served_offers_follow_logged_probabilities(make_client):
    """With the model held fixed, how often each offer is served matches the probability
    the service reports (and logs) for it: a chi-square test at a fixed seed."""
    client = await make_client(exploration="epsilon", epsilon=0.3, value_prior_examples=0)   # the model alone
    for n in range(300):   # teach it a preference, so the PMF is far from uniform
        decision = await decide(client, "roaming", f"warm-{n}")
        reward = 1.0 if decision["ranking"][0]["offer_id"] == "offer1" else 0.0
        await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": reward})
    for _ in range(200):   # let the learner catch up; then no more rewards: the model stays fixed
        learned = (await (await client.get("/v1/stats")).json())["model"]["examples_learned"]
        if learned == 300:
            break
        await asyncio.sleep(0.05)
    assert learned == 300

    n = 4000
    served: Counter[str] = Counter()
    pmfs = set()
    for i in range(n):
        ranking = (await decide(client, "roaming", f"honest-{i}"))["ranking"]
        served[ranking[0]["offer_id"]] += 1
        probabilities = {r["offer_id"]: r["probability"] for r in ranking}
        pmfs.add(tuple(probabilities[o["id"]] for o in OFFERS))
    assert len(pmfs) == 1, "the model changed while it should have been fixed"
    pmf = np.array(pmfs.pop())
    assert pmf.max() > 0.7   # far from uniform: the test can tell
    observed = np.array([served[o["id"]] for o in OFFERS])
    result = stats.chisquare(observed, pmf * n)
    assert result.pvalue > 1e-3, (observed, pmf * n, result)
