"""Baseline policies for the control group: what the business would do without the
model. Each returns an exact PMF, so control decisions are logged with their true
propensities and can be learned from and replayed like any other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from policies.exploration import event_uniform

Baseline = Literal["uniform", "priority"]
BASELINES: tuple[str, ...] = ("uniform", "priority")


def uniform_pmf(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def priority_pmf(values: Sequence[float]) -> np.ndarray:
    """A fixed business-priority order: always the most valuable offer (ties: the first)."""
    pmf = np.zeros(len(values))
    pmf[int(np.argmax(values))] = 1.0
    return pmf


def baseline_pmf(baseline: str, values: Sequence[float]) -> np.ndarray:
    if baseline == "uniform":
        return uniform_pmf(len(values))
    if baseline == "priority":
        return priority_pmf(values)
    raise ValueError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")


def in_control_group(unit: str, share: float) -> bool:
    """Deterministic per unit (a subscriber): the same caller is always in the same group,
    so lift compares people, not calls. Independent of the draw that picks the offer."""
    return share > 0 and event_uniform(unit, salt="control-group") < share
