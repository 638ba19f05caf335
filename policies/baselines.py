"""Policies behind one small interface: given the eligible candidates' business values
and (optionally) model scores, return the PMF to draw from. The service's control group
and replay's baselines use the same objects, so what replay evaluates is exactly what
the service would serve. Every PMF is exact: logged propensities come from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from policies.exploration import event_uniform

BASELINES: tuple[str, ...] = ("uniform", "priority")


class Policy(Protocol):
    def pmf(self, values: Sequence[float], scores: np.ndarray | None = None) -> np.ndarray:
        """A PMF over the candidates, in their order."""
        ...


@dataclass(frozen=True)
class Uniform:
    """Every eligible offer alike: the classic control group."""

    def pmf(self, values: Sequence[float], scores: np.ndarray | None = None) -> np.ndarray:
        return np.full(len(values), 1.0 / len(values))


@dataclass(frozen=True)
class Priority:
    """A fixed business-priority order: always the most valuable offer (ties: the first)."""

    def pmf(self, values: Sequence[float], scores: np.ndarray | None = None) -> np.ndarray:
        pmf = np.zeros(len(values))
        pmf[int(np.argmax(values))] = 1.0
        return pmf


@dataclass(frozen=True)
class EpsilonGreedy:
    """The highest-scoring candidate with 1 - epsilon, the rest uniformly (ties: the first)."""

    epsilon: float = 0.1

    def pmf(self, values: Sequence[float], scores: np.ndarray | None = None) -> np.ndarray:
        n = len(values)
        best = int(np.argmax(scores if scores is not None else values))
        pmf = np.full(n, self.epsilon / n)
        pmf[best] += 1.0 - self.epsilon
        return pmf


@dataclass(frozen=True)
class Softmax:
    """Probabilities proportional to exp(lambda · score)."""

    lam: float = 1.0

    def pmf(self, values: Sequence[float], scores: np.ndarray | None = None) -> np.ndarray:
        logits = self.lam * np.asarray(scores if scores is not None else values, dtype=np.float64)
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()


def baseline(name: str) -> Policy:
    if name == "uniform":
        return Uniform()
    if name == "priority":
        return Priority()
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")


def in_control_group(unit: str, share: float) -> bool:
    """Deterministic per unit (a subscriber): the same caller is always in the same group,
    so lift compares people, not calls. Independent of the draw that picks the offer."""
    return share > 0 and event_uniform(unit, salt="control-group") < share
