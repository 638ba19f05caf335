"""The sufficient statistics ``replay.streaming`` keeps instead of the data: running
moments of values seen in chunks (``RunningMoments``), compensated sums
(``CompensatedSum``) and the weight diagnostics an ``Estimate`` reports (``WeightStats``).
``RunningMoments`` and ``WeightStats`` fold in a chunk with ``add`` and an instance fed
with other data with ``merge``. How exact they are: ``replay.streaming``'s docstring.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CompensatedSum", "RunningMoments", "WeightStats"]


class RunningMoments:
    """Total weight, mean and M2 = Σ weight·(x − mean)² of values seen in chunks (unit
    weights by default), merged by Chan et al.'s update on values shifted by a constant
    (the first chunk's mean) so that the mean's own rounding does not swamp a small spread."""

    __slots__ = ("shift", "weight", "mean", "m2")

    def __init__(self) -> None:
        self.shift: float | None = None
        self.weight = 0.0   # n for unit weights: exact up to 2**53
        self.mean = 0.0     # of the shifted values
        self.m2 = 0.0

    def add(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        unit = weights is None
        total = float(values.size if unit else weights.sum())
        if total <= 0:
            return   # no values, or zero weights: nothing to add
        if self.shift is None:
            self.shift = float(values.mean() if unit else weights @ values / total)
        x = values - self.shift
        mean = float(x.mean() if unit else weights @ x / total)
        deviation = x - mean
        self._combine(total, mean, float(deviation @ deviation if unit else weights @ (deviation * deviation)))

    def merge(self, other: RunningMoments) -> None:
        if other.weight == 0 or other.shift is None:
            return
        if self.shift is None:
            self.shift, self.weight, self.mean, self.m2 = other.shift, other.weight, other.mean, other.m2
            return
        self._combine(other.weight, other.mean + (other.shift - self.shift), other.m2)

    def _combine(self, weight: float, mean: float, m2: float) -> None:
        if self.weight == 0:
            self.weight, self.mean, self.m2 = weight, mean, m2
            return
        total = self.weight + weight
        delta = mean - self.mean
        self.mean += delta * (weight / total)
        self.m2 += m2 + delta * delta * (self.weight * weight / total)
        self.weight = total

    @property
    def value(self) -> float:
        """The (weighted) mean of the values themselves; NaN before any weight."""
        return math.nan if self.shift is None else self.shift + self.mean


class CompensatedSum:
    """Neumaier-compensated running sum of chunk sums."""

    def __init__(self) -> None:
        self.high = self.low = 0.0

    def add(self, x: float) -> None:
        total = self.high + x
        self.low += (self.high - total) + x if abs(self.high) >= abs(x) else (x - total) + self.high
        self.high = total

    @property
    def value(self) -> float:
        return self.high + self.low


class WeightStats:
    """What ``Estimate`` reports about the weights applied: ESS sums, max, matched count."""

    def __init__(self) -> None:
        self.total, self.squares = CompensatedSum(), CompensatedSum()
        self.max = -math.inf
        self.matched = 0

    def add(self, weights: np.ndarray, target_p: np.ndarray) -> None:
        self.total.add(float(weights.sum()))
        self.squares.add(float(weights @ weights))
        self.max = max(self.max, float(weights.max()))
        self.matched += int(np.count_nonzero(target_p > 0))

    def merge(self, other: WeightStats) -> None:
        self.total.add(other.total.value)
        self.squares.add(other.squares.value)
        self.max = max(self.max, other.max)
        self.matched += other.matched

    @property
    def ess(self) -> float:
        squares = self.squares.value
        return self.total.value ** 2 / squares if squares > 0 else 0.0
