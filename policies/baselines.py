"""Policies behind one small interface: given the eligible candidates' business values
and (optionally) model scores, return the PMF to draw from. The service's control group
and replay's baselines use the same objects, so what replay evaluates is exactly what
the service would serve. Every PMF is exact: logged propensities come from it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


from policies.exploration import event_uniform

BASELINES: tuple[str, ...] = ("uniform", "priority")


class Policy(Protocol):
    def pmf(self, values: Sequence[float], scores: Sequence[float] | None = None) -> list[float]:
        """A PMF over the candidates, in their order."""
        ...


@dataclass(frozen=True)
class Uniform:
    """Every eligible offer alike: the classic control group."""

    def pmf(self, values: Sequence[float], scores: Sequence[float] | None = None) -> list[float]:
        return [1.0 / len(values)] * len(values)


@dataclass(frozen=True)
class Priority:
    """A fixed business-priority order: always the most valuable offer (ties: the first)."""

    def pmf(self, values: Sequence[float], scores: Sequence[float] | None = None) -> list[float]:
        pmf = [0.0] * len(values)
        pmf[_argmax(values)] = 1.0
        return pmf


@dataclass(frozen=True)
class Proportional:
    """Probabilities proportional to the values (uniform when they are all zero): given
    prior × value, a ranking by expected value that still tries every offer."""

    def pmf(self, values: Sequence[float], scores: Sequence[float] | None = None) -> list[float]:
        total = float(sum(values))
        if total <= 0:
            return [1.0 / len(values)] * len(values)
        return [float(v) / total for v in values]


@dataclass(frozen=True)
class EpsilonGreedy:
    """The highest-scoring candidate with 1 - epsilon, the rest uniformly (ties: the first)."""

    epsilon: float = 0.1

    def pmf(self, values: Sequence[float], scores: Sequence[float] | None = None) -> list[float]:
        n = len(values)
        pmf = [self.epsilon / n] * n
        pmf[_argmax(scores if scores is not None else values)] += 1.0 - self.epsilon
        return pmf


@dataclass(frozen=True)
class Softmax:
    """Probabilities proportional to exp(lambda · score)."""

    lam: float = 1.0

    def pmf(self, values: Sequence[float], scores: Sequence[float] | None = None) -> list[float]:
        logits = [self.lam * float(x) for x in (scores if scores is not None else values)]
        top = max(logits)
        weights = [math.exp(x - top) for x in logits]
        total = sum(weights)
        return [w / total for w in weights]


def _argmax(xs: Sequence[float]) -> int:
    """The first index of the largest value."""
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


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
