"""What the estimators share: the ``Estimate`` they return and the checks of their inputs.

``replay.estimators`` (the batch API) and ``replay.streaming`` (the same estimators fed
chunk by chunk) both check logged data, target distributions and reward models here, so
a bad input raises the same ``ValueError`` whichever API reads it. The conventions
(``logged_p``, ``target_p``, ``target_pmf``, ``reward_hat``) are those of
``replay.estimators``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from replay.intervals import as_terms

__all__ = [
    "PMF_TOLERANCE", "Estimate", "Logged", "check_actions", "check_logged", "check_model", "check_positive",
    "check_with_model", "ips_term_bounds", "kish_ess", "no_bernstein", "plain",
]

PMF_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its (1 − alpha) interval [lower, upper] and diagnostics.

    ``ess`` = (Σw)²/Σw² of the weights the estimator applies (after clipping/switching;
    n for DM), ``max_weight`` their maximum, ``matched`` the share of samples the target
    could have chosen (target_p > 0). ``se`` is the normal-approximation standard error,
    reported whatever ``ci`` is. ``params`` records clip/tau/bounds/n_boot when used."""

    value: float
    lower: float
    upper: float
    alpha: float
    method: str
    ci: str
    n: int
    se: float
    ess: float | None
    max_weight: float | None
    matched: float | None
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        """A plain dict of Python scalars; NaN/inf become None so any JSON encoder works."""
        return {key: plain(value) for key, value in asdict(self).items()}


def plain(value: Any) -> Any:
    """``value`` for any JSON encoder: numpy scalars as Python ones, NaN/inf as None,
    through dicts, lists and tuples (as lists)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def no_bernstein(method: str) -> ValueError:
    return ValueError(f"ci='bernstein' needs a priori bounded per-sample terms; {method} does not support it (ips does)")


def ips_term_bounds(
    bounds: tuple[float, float] | None, observed: tuple[float, float], w_max: float, *, stacklevel: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """For ips(ci="bernstein"): the reward ``bounds`` (the ``observed`` min/max reward, with
    a warning at ``stacklevel`` of the caller, when not given) and the range of the terms
    w·r they imply for weights w in [0, w_max]."""
    if bounds is None:
        warnings.warn("ips(ci='bernstein'): bounds not given, using the observed min/max reward",
                      stacklevel=stacklevel + 1)
        bounds = observed
    return bounds, (min(0.0, bounds[0]) * w_max, max(0.0, bounds[1]) * w_max)


@dataclass(frozen=True)
class Logged:
    """Validated logged data and the raw importance weights w = target_p / logged_p."""

    rewards: np.ndarray
    logged_p: np.ndarray
    target_p: np.ndarray
    weights: np.ndarray

    @property
    def n(self) -> int:
        return self.rewards.size

    @property
    def matched(self) -> float:
        return float(np.mean(self.target_p > 0))


def check_logged(rewards: ArrayLike, logged_p: ArrayLike, target_p: ArrayLike) -> Logged:
    """The one place logged inputs are checked and weights computed."""
    r = as_terms(rewards, "rewards")
    p = np.asarray(logged_p, dtype=float)
    t = np.asarray(target_p, dtype=float)
    for name, array in (("logged_p", p), ("target_p", t)):
        if array.shape != r.shape:
            raise ValueError(f"{name} has shape {array.shape}, rewards has {r.shape}: lengths must match")
    if not np.all((p > 0) & (p <= 1)):   # NaN fails both comparisons
        raise ValueError("logged_p must be in (0, 1] (and not NaN) for every sample")
    if not np.all((t >= 0) & (t <= 1)):
        raise ValueError("target_p must be in [0, 1] (and not NaN) for every sample")
    return Logged(r, p, t, t / p)


def check_model(
    n: int, actions: ArrayLike | None, target_pmf: ArrayLike, reward_hat: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checks the target pmf and reward model; returns (target_p of the logged action,
    reward_hat of the logged action, the DM term Σ_a π(a|x_i)·r̂(x_i, a) per sample).
    Without ``actions`` (DM) the first two are empty."""
    pmf = np.asarray(target_pmf, dtype=float)
    if pmf.ndim != 2 or pmf.shape[0] != n or pmf.shape[1] < 1:
        raise ValueError(f"target_pmf must have shape (n={n}, K), got {pmf.shape}")
    if not np.all((pmf >= 0) & (pmf <= 1)):
        raise ValueError("target_pmf entries must be in [0, 1] (and not NaN)")
    sums = pmf.sum(axis=1)
    if not np.all(np.abs(sums - 1.0) <= PMF_TOLERANCE):
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(f"target_pmf rows must sum to 1 (±{PMF_TOLERANCE}); row {row} sums to {sums[row]!r}")
    model = np.asarray(reward_hat, dtype=float)
    if model.shape != pmf.shape:
        raise ValueError(f"reward_hat has shape {model.shape}, target_pmf has {pmf.shape}")
    rows = np.arange(n)
    a = np.zeros(0, dtype=np.int64) if actions is None else check_actions(actions, n, pmf.shape[1])
    used = pmf > 0
    if actions is not None:
        used[rows, a] = True
    if not np.all(np.isfinite(model[used])):
        raise ValueError("reward_hat must be finite at the logged action and wherever target_pmf > 0")
    dm_terms = (pmf * np.where(used, model, 0.0)).sum(axis=1)
    if actions is None:
        return a.astype(float), a.astype(float), dm_terms
    return pmf[rows, a], model[rows, a], dm_terms


def check_with_model(
    rewards: ArrayLike, logged_p: ArrayLike, actions: ArrayLike, target_pmf: ArrayLike, reward_hat: ArrayLike
) -> tuple[Logged, np.ndarray, np.ndarray]:
    """``check_model`` then ``check_logged`` with target_p = target_pmf[i, actions[i]]:
    (the logged data, reward_hat of the logged action, the DM terms)."""
    r = as_terms(rewards, "rewards")
    target_p, rhat_logged, dm_terms = check_model(r.size, actions, target_pmf, reward_hat)
    return check_logged(r, logged_p, target_p), rhat_logged, dm_terms


def check_actions(actions: ArrayLike, n: int, k: int) -> np.ndarray:
    """n integer action indices in [0, k), as int64 (integral floats are accepted)."""
    a = np.asarray(actions)
    if a.shape != (n,):
        raise ValueError(f"actions has shape {a.shape}, rewards has ({n},): lengths must match")
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"actions must be integer action indices, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= k):
        raise ValueError(f"actions must be in [0, {k - 1}] (K = {k} columns of target_pmf)")
    return a.astype(np.int64)


def check_positive(value: float | None, name: str, *, allow_zero: bool = False) -> float | None:
    """None passes through (no clipping); otherwise a number > 0 (or >= 0); inf is allowed."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return number


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size (Σw)²/Σw²: n for equal weights, ~1 if one dominates."""
    square = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / square if square > 0 else 0.0
