"""The decide path's fixed policies behind one small interface: given the eligible
candidates' business values, the PMF to draw from. The
control group's baselines (``uniform``, ``priority``) and the cold model's value prior
(``Proportional``) use them, slot by slot (policies/slates.py). Every PMF is exact: the
logged propensities come from it. (Replay computes its own uniform and logging-policy
baselines from the log, replay/evaluate.py; it does not import these.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


from policies.exploration import event_uniform

BASELINES: tuple[str, ...] = ("uniform", "priority")


class Policy(Protocol):
    def pmf(self, values: Sequence[float]) -> list[float]:
        """A PMF over the candidates, in their order."""
        ...


@dataclass(frozen=True)
class Uniform:
    """Every eligible offer alike: the classic control group."""

    def pmf(self, values: Sequence[float]) -> list[float]:
        return [1.0 / len(values)] * len(values)


@dataclass(frozen=True)
class Priority:
    """A fixed business-priority order: always the most valuable offer (ties: the first)."""

    def pmf(self, values: Sequence[float]) -> list[float]:
        pmf = [0.0] * len(values)
        pmf[_argmax(values)] = 1.0
        return pmf


@dataclass(frozen=True)
class Proportional:
    """Probabilities proportional to the values (uniform when they are all zero): given
    prior × value, a ranking by expected value that still tries every offer."""

    def pmf(self, values: Sequence[float]) -> list[float]:
        total = float(sum(values))
        if total <= 0:
            return [1.0 / len(values)] * len(values)
        return [float(v) / total for v in values]


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
