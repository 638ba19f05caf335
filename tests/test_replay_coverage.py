"""Replay's estimators on the simulator's world: logs with a known truth.

A logging policy with exact, uneven propensities serves the simulator's contacts; the
subscribers answer from the hidden truth. For a deterministic target policy (the
oracle) and a stochastic one (uniform), the true value on those contacts is known
exactly, so the estimators' 95% intervals can be checked for coverage over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bandit.store.catalog import read_catalog_file
from replay.estimators import dr, ips, snips
from simulator.truth import expected_values
from simulator.world import generate_base, generate_contacts

CATALOG = Path(__file__).resolve().parents[1] / "examples" / "telecom" / "catalog.yaml"
OFFERS = read_catalog_file(CATALOG)
IDS = [o.id for o in OFFERS]
VALUES = {o.id: o.spec.value for o in OFFERS}
K = len(IDS)
SEEDS = 60


def logged_world(seed: int, n: int = 3000) -> dict[str, np.ndarray]:
    """One log: contexts, the logging policy's draws and propensities, rewards, the truth."""
    base = generate_base(1500, seed)
    contacts = generate_contacts(base, n, seed)
    rng = np.random.default_rng([seed, 99])
    values = np.array([VALUES[o] for o in IDS])
    # Logging: half uniform, half the most valuable offer: propensities from 1/18 to 1/2 + 1/18.
    logging_pmf = np.full(K, 0.5 / K)
    logging_pmf[int(np.argmax(values))] += 0.5
    accept = np.empty((n, K))
    for row, contact in enumerate(contacts):
        accept[row], _ = expected_values(base, contact, IDS, VALUES)
    actions = rng.choice(K, size=n, p=logging_pmf)
    answered = np.array([c.uniform for c in contacts]) < accept[np.arange(n), actions]
    channel = np.array([c.channel for c in contacts])
    # The reward is the acceptance: value-weighted rewards are so skewed (a 450 for one
    # answer in hundreds) that no normal interval is honest at a few thousand events.
    return {"accept": accept, "ev": accept, "actions": actions, "logged_p": logging_pmf[actions],
            "rewards": answered.astype(float), "channel": channel}


def reward_model(log: dict[str, np.ndarray]) -> np.ndarray:
    """A deliberately crude model, as a data scientist's first try: mean reward per
    (channel, offer) from the log itself (importance-weighted so it is not the logging
    policy's mix). DR must stay honest even when the model is biased."""
    n = len(log["rewards"])
    hat = np.zeros((n, K))
    for channel in np.unique(log["channel"]):
        rows = log["channel"] == channel
        for a in range(K):
            hit = rows & (log["actions"] == a)
            hat[rows, a] = log["rewards"][hit].mean() if hit.any() else 0.0
    return hat


@pytest.mark.parametrize("target", ["oracle", "uniform"])
def test_intervals_cover_the_true_value_on_simulator_logs(target):
    covered = {"ips": 0, "snips": 0, "dr": 0}
    for seed in range(SEEDS):
        log = logged_world(seed)
        n = len(log["rewards"])
        if target == "oracle":
            pmf = np.zeros((n, K))
            pmf[np.arange(n), log["ev"].argmax(axis=1)] = 1.0
        else:
            pmf = np.full((n, K), 1.0 / K)
        truth = float((pmf * log["ev"]).sum(axis=1).mean())
        target_p = pmf[np.arange(n), log["actions"]]
        estimates = {"ips": ips(log["rewards"], log["logged_p"], target_p),
                     "snips": snips(log["rewards"], log["logged_p"], target_p),
                     "dr": dr(log["rewards"], log["logged_p"], log["actions"], pmf, reward_model(log))}
        for name, estimate in estimates.items():
            covered[name] += estimate.lower <= truth <= estimate.upper
    for name, hits in covered.items():
        assert hits / SEEDS >= 0.90, (name, hits / SEEDS)


def test_the_oracle_is_worth_more_than_logging_and_replay_sees_it():
    log = logged_world(1, n=6000)
    n = len(log["rewards"])
    pmf = np.zeros((n, K))
    pmf[np.arange(n), log["ev"].argmax(axis=1)] = 1.0
    estimate = dr(log["rewards"], log["logged_p"], log["actions"], pmf, reward_model(log))
    logged_value = log["rewards"].mean()
    assert estimate.lower > logged_value   # the better policy is recognised from the log alone
