"""Control group and objective: the baseline serves a fixed share of subscribers with
exact logged propensities, and the value objective rewards an acceptance with the
offer's value."""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from tests.harness import read_lines

OFFERS = [{"id": f"o{i}", "value": float(10 * (i + 1))} for i in range(4)]


async def logged(data_dir, n: int, timeout: float = 20.0) -> list[dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        lines = read_lines(data_dir / "decisions")
        if len(lines) >= n or loop.time() > deadline:
            return lines
        await asyncio.sleep(0.05)


async def test_control_group_share_and_exact_propensities(make_client, data_dir):
    client = await make_client(control_share=0.2, control_policy="uniform", exploration="epsilon", epsilon=0.05)
    n = 2000
    told: dict[str, str] = {}
    for i in range(n):
        body = {"channel": "web", "subscriber_id": f"7900{i:07d}", "context": {"r": "x"}, "offers": OFFERS}
        decision = await (await client.post("/v1/decide", json=body)).json()
        told[decision["event_id"]] = decision["policy"]
        await client.post("/v1/reward", json={"event_id": decision["event_id"],
                                              "reward": 1.0 if decision["ranking"][0]["offer_id"] == "o3" else 0.0})
    lines = await logged(data_dir, n)
    assert len(lines) == n
    assert all(told[line["EventId"]] == line["_nb"]["policy"] for line in lines)   # the response says who chose
    control = [line for line in lines if line["_nb"]["policy"] == "control"]
    share = len(control) / n
    assert abs(share - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n), share
    assert all(line["_label_probability"] == 0.25 and line["p"] == [0.25] * 4 for line in control)
    served = Counter(line["_nb"]["offers"][line["_labelIndex"]] for line in control)
    assert stats.chisquare([served[o["id"]] for o in OFFERS]).pvalue > 1e-3
    model = [line for line in lines if line["_nb"]["policy"] == "model"]
    late = model[-300:]   # the model learned o3 and serves it most of the time; control never does more than 1/4
    assert sum(line["_nb"]["offers"][line["_labelIndex"]] == "o3" for line in late) / len(late) > 0.8


async def test_group_is_fixed_per_subscriber(make_client, data_dir):
    # without the propensity floor: priority then serves its top offer with probability 1, every time
    client = await make_client(control_share=0.5, control_policy="priority", propensity_floor=0)
    for repeat in range(3):
        for i in range(40):
            body = {"channel": "web", "subscriber_id": f"sub-{i}", "offers": OFFERS}
            decision = await (await client.post("/v1/decide", json=body)).json()
            await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": 0})
    lines = await logged(data_dir, 120)
    groups: dict[str, set[str]] = {}
    for line in lines:
        groups.setdefault(line["_nb"]["subscriber"], set()).add(line["_nb"]["policy"])
    assert all(len(g) == 1 for g in groups.values())
    priority = [line for line in lines if line["_nb"]["policy"] == "control"]
    assert priority and all(line["_labelIndex"] == 3 and line["_label_probability"] == 1.0 for line in priority)


async def test_value_objective_rewards_acceptance_with_the_offer_value(make_client):
    client = await make_client(reward_objective="value")
    decision = await (await client.post("/v1/decide", json={"channel": "web", "offers": OFFERS})).json()
    served_value = next(o["value"] for o in OFFERS if o["id"] == decision["ranking"][0]["offer_id"])
    accepted = await (await client.post("/v1/reward", json={"event_id": decision["event_id"],
                                                           "outcome": "accept"})).json()
    assert accepted["reward"] == served_value
    other = await (await client.post("/v1/decide", json={"channel": "web", "offers": OFFERS})).json()
    revenue = await (await client.post("/v1/reward", json={"event_id": other["event_id"], "reward": 12.5})).json()
    assert revenue["reward"] == 12.5   # a posted amount is taken as it is


async def test_the_priority_baselines_ranking_runs_down_by_value(make_client):
    client = await make_client(control_share=1.0, control_policy="priority", value_prior_examples=0)
    offers = [{"id": "cheap", "value": 3.0}, {"id": "mid", "value": 40.0}, {"id": "top", "value": 150.0},
              {"id": "low", "value": 1.0}]
    decision = await (await client.post("/v1/decide", json={"channel": "web", "offers": offers, "k": 4})).json()
    assert decision["policy"] == "control"
    assert [r["offer_id"] for r in decision["ranking"]] == ["top", "mid", "cheap", "low"]
    # the propensity floor (0.005 / 4 offers) keeps the others served now and then: 0.995 · 1 + 0.00125
    assert [r["probability"] for r in decision["ranking"]] == pytest.approx([0.99625, 0.00125, 0.00125, 0.00125],
                                                                             abs=1e-15)
