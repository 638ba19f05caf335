"""Sampling: what is served is drawn with exactly the logged probability."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from policies.exploration import ALGORITHMS, Exploration, apply_floor, event_uniform, normalize_pmf, rank, sample_index
from policies.learner import Learner, LearnerSettings


def test_sampling_frequencies_match_the_pmf():
    pmf = normalize_pmf([0.7, 0.15, 0.1, 0.05, 0.0])
    n = 200_000
    counts = np.bincount([sample_index(pmf, event_uniform(f"ev-{i}")) for i in range(n)], minlength=5)
    assert counts[4] == 0   # probability zero is never served
    result = stats.chisquare(counts[:4], np.array(pmf[:4]) * n)
    assert result.pvalue > 1e-3, (counts, result)


def test_event_uniform_is_uniform_and_deterministic():
    draws = np.array([event_uniform(f"e{i}") for i in range(50_000)])
    assert stats.kstest(draws, "uniform").pvalue > 1e-3
    assert event_uniform("same") == event_uniform("same")
    assert event_uniform("same", salt="control") != event_uniform("same")


def test_normalize_repairs_float32_and_degenerate_pmfs():
    assert sum(normalize_pmf(np.float32([0.3333333, 0.3333333, 0.3333333]))) == pytest.approx(1, abs=1e-15)
    assert normalize_pmf([1.0, 1.0, 1.0]) == pytest.approx([1 / 3] * 3)
    assert normalize_pmf([0.0, 0.0]) == [0.5, 0.5]
    assert normalize_pmf([float("nan"), 1.0]) == [0.0, 1.0]
    assert normalize_pmf([float("inf"), 1.0, -2.0]) == [0.0, 1.0, 0.0]


def test_rank_puts_served_first_then_by_probability():
    pmf = [0.1, 0.5, 0.3, 0.1]
    assert rank(pmf, 2, 3) == [2, 1, 0]
    assert rank(pmf, 1, 10) == [1, 2, 0, 3]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_exploration_algorithm_gives_a_valid_pmf(algorithm):
    learner = Learner(LearnerSettings(exploration=Exploration(algorithm=algorithm)))
    shared = "shared |Context reason=roaming"
    actions = [f"|Offer id=o{i}" for i in range(4)]
    for i in range(50):
        learner.learn_one(shared, actions, i % 4, 0.25, 1.0 if i % 4 == 2 else 0.0)
    pmf = learner.predict_one(shared, actions)
    assert len(pmf) == 4 and sum(pmf) == pytest.approx(1.0, abs=1e-12) and min(pmf) >= 0


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="unknown exploration algorithm"):
        Exploration(algorithm="greedy")


def test_policies_share_one_interface_and_give_exact_pmfs():
    from policies.baselines import Priority, Proportional, Uniform, baseline

    values = [3.5, 0.1, 150.0]
    assert Uniform().pmf(values) == pytest.approx([1 / 3] * 3)
    assert Priority().pmf(values) == [0.0, 0.0, 1.0]
    assert Priority().pmf([5.0, 5.0]) == [1.0, 0.0]   # ties: the first
    assert Proportional().pmf([1.0, 3.0]) == [0.25, 0.75]
    assert Proportional().pmf([0.0, 0.0]) == [0.5, 0.5]   # no value known: uniform
    assert isinstance(baseline("priority"), Priority)
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline("random")


def test_the_floor_mixes_with_uniform_over_the_free_offers_and_keeps_a_pmf():
    pmf = [0.0, 0.97, 0.0, 0.03]
    out = apply_floor(pmf, 0.2)   # each of 4 at least 0.05: (1 - 0.2) p + 0.05
    assert out == pytest.approx([0.05, 0.826, 0.05, 0.074], abs=1e-15) and sum(out) == pytest.approx(1, abs=1e-15)
    taken = apply_floor([0.0, 0.9, 0.1, 0.0], 0.3, taken=[0])   # slot 2: the offer of slot 1 stays at 0
    assert taken[0] == 0.0 and min(taken[1:]) == pytest.approx(0.1) and sum(taken) == pytest.approx(1)
    assert apply_floor([0.25] * 4, 0.5) == [0.25] * 4   # already at the floor: untouched, bit for bit
    assert apply_floor(pmf, 0.0) == pmf and apply_floor([1.0], 0.9) == [1.0]
    with pytest.raises(ValueError):
        apply_floor([0.0, 1.0], 0.1, taken=[0, 1])
