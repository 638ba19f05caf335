"""Confidence intervals for the mean of per-sample terms (or a ratio of their sums).

Every off-policy estimator in ``replay.estimators`` is a mean of per-sample terms, or
(SNIPS) a ratio of two sums, so three interval kinds cover them all and can be reused by
any module that averages something per event (the simulator's lift over control):

* ``normal``: mean ± z·sd/√n, sd with ddof=1, z = Φ⁻¹(1 − α/2). Asymptotic; fine for
  the thousands of events replay works with, optimistic for heavy-tailed weights.
* ``bootstrap``: percentile bootstrap over samples. Seeded for reproducibility and
  vectorised: resample indices are drawn in chunks so memory stays bounded.
* ``bernstein``: the empirical Bernstein bound (Maurer & Pontil 2009, Thm 4) for terms
  known a priori to lie in [a, b]. Finite-sample valid, hence wider. It needs only n,
  the mean and the variance (``bernstein_interval``), so ``replay.streaming`` offers it too.

Only numpy and the standard library: ``statistics.NormalDist`` gives z, no scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

CI_KINDS: tuple[str, ...] = ("normal", "bootstrap", "bernstein")
N_BOOT = 1000
_CHUNK_ROWS = 100              # resamples per chunk ...
_CHUNK_ELEMENTS = 4_000_000    # ... but at most this many int64 indices (32 MB) at once

RngLike = np.random.Generator | int | None


def check_alpha(alpha: float) -> float:
    """alpha is the miss probability of a two-sided (1 − alpha) interval: in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def check_ci(ci: str) -> str:
    if ci not in CI_KINDS:
        raise ValueError(f"ci must be one of {', '.join(CI_KINDS)}; got {ci!r}")
    return ci


def z_value(alpha: float) -> float:
    """The two-sided normal quantile Φ⁻¹(1 − α/2) (1.959964 for α = 0.05)."""
    return NormalDist().inv_cdf(1.0 - check_alpha(alpha) / 2.0)


def as_terms(values: ArrayLike, name: str = "terms") -> np.ndarray:
    """A non-empty, finite 1-D float array, or ValueError naming the argument."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def standard_error(terms: ArrayLike) -> float:
    """sd(terms, ddof=1)/√n: the plug-in standard error of their mean (NaN if n < 2)."""
    array = as_terms(terms)
    if array.size < 2:
        return math.nan
    return float(np.std(array, ddof=1) / math.sqrt(array.size))


def normal_interval(center: float, se: float, alpha: float = 0.05) -> tuple[float, float]:
    """center ± z·se: the Wald interval once a standard error is known."""
    half = z_value(alpha) * se
    return center - half, center + half


def normal_ci(terms: ArrayLike, alpha: float = 0.05, *, center: float | None = None) -> tuple[float, float]:
    """mean ± z·sd/√n of per-sample terms (CLT). ``center`` replaces the mean when the
    terms are influence terms of another statistic (SNIPS's delta method: mean zero)."""
    array = as_terms(terms)
    middle = float(array.mean()) if center is None else float(center)
    return normal_interval(middle, standard_error(array), alpha)


def bootstrap_ci(
    terms: ArrayLike,
    alpha: float = 0.05,
    *,
    denominator: ArrayLike | None = None,
    n_boot: int = N_BOOT,
    rng: RngLike = None,
) -> tuple[float, float]:
    """Percentile bootstrap: the α/2 and 1 − α/2 quantiles of the statistic over
    ``n_boot`` resamples of the n samples with replacement. The statistic is mean(terms),
    or Σterms/Σdenominator when ``denominator`` is given (a ratio estimator such as
    SNIPS, resampled as pairs). ``rng`` (Generator or int seed) makes it reproducible."""
    alpha = check_alpha(alpha)
    stats = bootstrap_statistics(terms, denominator=denominator, n_boot=n_boot, rng=rng)
    if np.all(np.isnan(stats)):
        return math.nan, math.nan
    low, high = np.nanquantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_statistics(
    terms: ArrayLike, *, denominator: ArrayLike | None = None, n_boot: int = N_BOOT, rng: RngLike = None
) -> np.ndarray:
    """The ``n_boot`` resampled statistics (NaN where a ratio's denominator sums to 0)."""
    numerator = as_terms(terms)
    weights = None if denominator is None else as_terms(denominator, "denominator")
    if weights is not None and weights.size != numerator.size:
        raise ValueError(f"denominator has length {weights.size}, terms has {numerator.size}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    generator = np.random.default_rng(rng)
    n = numerator.size
    rows = max(1, min(_CHUNK_ROWS, _CHUNK_ELEMENTS // n))
    out = np.empty(int(n_boot))
    for start in range(0, int(n_boot), rows):
        count = min(rows, int(n_boot) - start)
        index = generator.integers(0, n, size=(count, n))
        top = numerator[index].sum(axis=1)
        if weights is None:
            out[start : start + count] = top / n
        else:
            bottom = weights[index].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[start : start + count] = np.where(bottom != 0, top / bottom, np.nan)
    return out


def bernstein_ci(terms: ArrayLike, alpha: float = 0.05, *, bounds: tuple[float, float]) -> tuple[float, float]:
    """Empirical Bernstein (Maurer & Pontil 2009, Theorem 4) for i.i.d. terms known a
    priori to lie in ``bounds`` = [a, b]: ``bernstein_interval`` from their n, mean and
    sample variance. Raises ValueError if a term is outside [a, b]. Needs n ≥ 2."""
    alpha = check_alpha(alpha)
    array = as_terms(terms)
    n = array.size
    variance = float(np.var(array, ddof=1)) if n >= 2 else math.nan
    return bernstein_interval(n, float(array.mean()), variance, bounds, alpha,
                              observed=(float(array.min()), float(array.max())))


def bernstein_interval(
    n: int,
    mean: float,
    variance: float,
    bounds: tuple[float, float],
    alpha: float = 0.05,
    *,
    observed: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """The empirical Bernstein interval from summary statistics (``replay.streaming`` keeps
    no terms): n i.i.d. terms in ``bounds`` = [a, b], their mean and sample variance V
    (ddof=1). With probability ≥ 1 − δ, |E X − mean| ≤ √(2·V·ln(2/δ)/n) + 7·(b − a)·ln(2/δ)/(3(n − 1)).
    Two-sided, so δ = α/2 on each side. The interval is intersected with [a, b], where
    the mean must lie. ``observed`` = the terms' (min, max): ValueError unless within
    [a, b] (± 1e-12). NaN, NaN for n < 2."""
    alpha = check_alpha(alpha)
    low_bound, high_bound = check_bounds(bounds, "bounds")
    if observed is not None and (observed[0] < low_bound - 1e-12 or observed[1] > high_bound + 1e-12):
        raise ValueError(f"bounds {bounds!r} do not contain every term: the bound would be invalid")
    if n < 2:
        return math.nan, math.nan
    log_term = math.log(2.0 / (alpha / 2.0))
    half = math.sqrt(2.0 * variance * log_term / n) + 7.0 * (high_bound - low_bound) * log_term / (3.0 * (n - 1))
    return max(low_bound, mean - half), min(high_bound, mean + half)


def check_bounds(bounds: tuple[float, float], name: str = "bounds") -> tuple[float, float]:
    """A finite (low, high) pair with low <= high."""
    try:
        low, high = (float(value) for value in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {bounds!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"{name} must be finite with low <= high, got {bounds!r}")
    return low, high
