"""Sample weights for sub-sampled logs: an event logged with ``pdrop`` p (the share of
events of its kind the logger dropped) stands for s = 1/(1 − p) events.

Every estimator then becomes a Hájek (self-normalised by the sample weights) mean:
V = Σ s_i·t_i / Σ s_i over its per-event terms t_i (IPS: w·r; DR: DM + w·(r − r̂); DM;
the logging policy's mean reward), and SNIPS uses the weights w_i·s_i. Dividing by Σs
rather than by the unknown number of events before sub-sampling keeps an estimate within
the rewards' range and unbiased to O(1/n).

Its intervals are computed on the **linearised terms** u_i = V + (s_i/s̄)·(t_i − V)
(s̄ = mean(s)): their mean is V exactly, and their sample variance over n is the
delta-method variance of the ratio Σs·t/Σs. Normal, bootstrap and Bernstein intervals
take them as they take plain terms; a priori bounds [a, b] of t become
[a − (c − 1)(b − a), b + (c − 1)(b − a)] for u, c = max(s)/s̄ (V lies in [a, b]). The
betting confidence sequences (``replay.sequences``) take the weights w_i·s_i/s̄
(nonnegative, mean 1 in the sample as the target's weights have mean 1 in expectation).

Without pdrop (every s = 1) none of this runs: ``check_sample_weight`` returns None and
every estimate is the plain one, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["check_sample_weight", "hajek_terms", "pdrop_weights", "widened", "represented"]


def pdrop_weights(pdrop: ArrayLike) -> np.ndarray:
    """s_i = 1/(1 − pdrop_i): how many logged events each kept one stands for."""
    p = np.asarray(pdrop, dtype=float)
    if not np.all((p >= 0) & (p < 1)):   # NaN fails both
        raise ValueError("pdrop must be in [0, 1) for every sample")
    return 1.0 / (1.0 - p)


def check_sample_weight(sample_weight: ArrayLike | None, n: int) -> np.ndarray | None:
    """The sample weights as (n,) floats, each finite and > 0; None when absent or all 1
    (then estimators take their unweighted path, bit for bit)."""
    if sample_weight is None:
        return None
    s = np.asarray(sample_weight, dtype=float)
    if s.shape != (n,):
        raise ValueError(f"sample_weight has shape {s.shape}, rewards has ({n},): lengths must match")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("sample_weight must be finite and > 0 for every sample (1/(1 - pdrop))")
    return None if np.all(s == 1.0) else s


def hajek_terms(terms: np.ndarray, s: np.ndarray | None) -> np.ndarray:
    """The linearised terms u_i = V + (s_i/s̄)·(t_i − V) of the Hájek mean V = Σs·t/Σs
    (module docstring); ``terms`` themselves when ``s`` is None."""
    if s is None:
        return terms
    value = float(s @ terms) / float(s.sum())
    return value + (s / s.mean()) * (terms - value)


def widened(bounds: tuple[float, float], s: np.ndarray | None) -> tuple[float, float]:
    """A priori bounds of the linearised terms, from those of the terms (module docstring)."""
    if s is None:
        return bounds
    low, high = bounds
    spread = (float(s.max() / s.mean()) - 1.0) * (high - low)
    return low - spread, high + spread


def represented(s: np.ndarray | None, n: int) -> float:
    """How many events the n logged ones stand for: Σ s_i (n without pdrop)."""
    return float(n) if s is None else float(s.sum())
