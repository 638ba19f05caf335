"""Finite-sample intervals for ``evaluate``: IPS and DR with empirical Bernstein
(``ci="bernstein"``) or the betting confidence sequence (``ci="cs"``, anytime-valid,
``replay.sequences``), in place of the normal interval.

Both need ranges known before the rewards are seen. The rewards' range is the log's
observed [min, max] (as ``cs.py``'s ``empirical_r_bounds``; for the service's logs, 0
and the most valuable offer's value). The weights' range comes from the *full* logged
PMFs: w_max = max over events and actions of π(a)/μ(a), the largest weight the log
could have produced, not the largest it did. Then, per event i and with the reward
model's r̂_i known before the reward,

- IPS's terms w·r lie in [min(0, r_min)·w_max, max(0, r_max)·w_max];
- DR's terms Σ_a π(a)·r̂_i(a) + w_i(a_i)·(r_i − r̂_i(a_i)) lie in [L, U] with
  L = min_i (DM_i + min(0, min_a w_i(a)·(r_min − r̂_i(a)))) and
  U = max_i (DM_i + max(0, max_a w_i(a)·(r_max − r̂_i(a)))).

IPS's confidence sequence needs no w_max at all (only w ≥ 0 and E[w] = 1), which is why
it stays valid under heavy weights. DR's terms are not bounded below without w_max
(w·(r − r̂) can be −w_max·(r_max − r_min)), and the bounded sequence on [L, U] is as
wide as w_max is large; so with ``ci="cs"`` DR's interval is the IPS terms' confidence
sequence: a confidence set for the policy's value V, valid whichever estimator's point
sits in it (DR's point is kept; ``params["interval"]`` says so). SNIPS, DM and switch-DR
keep their normal intervals (their ``ci`` says so).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from replay.inputs import Estimate
from replay.intervals import bernstein_ci
from replay.sequences import ips_interval
from replay.weighting import hajek_terms, widened

__all__ = ["FINITE_KINDS", "dr_row_bounds", "dr_term_bounds", "finite_estimates", "possible_weights", "weight_limits"]

FINITE_KINDS = ("bernstein", "cs")
BLOCK_ROWS = 65_536   # weight_limits works by blocks of rows: its temporaries are a block's, not n×K


def possible_weights(target: np.ndarray, logged: np.ndarray, mask: np.ndarray, chosen: np.ndarray,
                     logged_p: np.ndarray) -> np.ndarray:
    """n×K: π(a)/μ(a) for every action the log gave a chance; where the log has no PMF
    for an event, only its served action's weight (the others cannot be known)."""
    rows = np.arange(target.shape[0])
    known = mask & np.isfinite(logged) & (logged > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(known, target / np.where(known, logged, 1.0), 0.0)
    weights[rows, chosen] = target[rows, chosen] / logged_p
    return weights


def dr_row_bounds(weights: np.ndarray, target: np.ndarray, reward_hat: np.ndarray, mask: np.ndarray,
                  bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per event (row), [L_i, U_i] for its DR term, known before its reward (module
    docstring); a multi-slot log scales each slot's by the earlier slots' weight bound."""
    r_min, r_max = bounds
    hat = np.where(mask, reward_hat, 0.0)
    dm = (target * hat).sum(axis=1)
    down = np.where(weights > 0, weights * (r_min - hat), 0.0).min(axis=1)
    up = np.where(weights > 0, weights * (r_max - hat), 0.0).max(axis=1)
    return dm + np.minimum(0.0, down), dm + np.maximum(0.0, up)


def dr_term_bounds(weights: np.ndarray, target: np.ndarray, reward_hat: np.ndarray, mask: np.ndarray,
                   bounds: tuple[float, float]) -> tuple[float, float]:
    """[L, U] for DR's per-event terms (module docstring)."""
    low, high = dr_row_bounds(weights, target, reward_hat, mask, bounds)
    return float(low.min()), float(high.max())


def weight_limits(target: np.ndarray, logged: np.ndarray, mask: np.ndarray, chosen: np.ndarray,
                  logged_p: np.ndarray, reward_hat: np.ndarray,
                  bounds: tuple[float, float]) -> tuple[float, float, float]:
    """(w_max, L, U): the largest possible weight (``possible_weights``) and DR's term
    bounds (``dr_term_bounds``), computed by blocks of rows."""
    w_max, low, high = 0.0, np.inf, -np.inf
    for start in range(0, target.shape[0], BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        weights = possible_weights(target[rows], logged[rows], mask[rows], chosen[rows], logged_p[rows])
        block_low, block_high = dr_term_bounds(weights, target[rows], reward_hat[rows], mask[rows], bounds)
        w_max, low, high = max(w_max, float(weights.max())), min(low, block_low), max(high, block_high)
    return w_max, float(low), float(high)


def finite_estimates(estimates: dict[str, Estimate], kind: str, alpha: float, *, rewards: np.ndarray,
                     weights_logged: np.ndarray, dr_terms: np.ndarray, weights: np.ndarray | None, target: np.ndarray,
                     reward_hat: np.ndarray, mask: np.ndarray, bounds: tuple[float, float],
                     sample_weight: np.ndarray | None = None,
                     limits: tuple[float, float, float] | None = None) -> dict[str, Estimate]:
    """``estimates`` with IPS's and DR's intervals replaced by ``kind``'s ("bernstein" or
    "cs"); ``weights_logged`` are the served actions' weights, ``weights`` the n×K
    possible ones (``possible_weights``), ``bounds`` the rewards' range. ``limits``
    (``weight_limits``) in place of ``weights``: the same, without the n×K weights.
    ``sample_weight`` (pdrop, checked: None or not all 1): the confidence sequences take
    the weights w·s/s̄, Bernstein the linearised terms in widened bounds
    (``replay.weighting``; the limits are the plain weights', which ``widened`` widens)."""
    s = sample_weight
    if s is not None:
        weights_logged = weights_logged * (s / s.mean())   # for the sequences; Bernstein's terms below
    out = dict(estimates)
    if limits is not None:
        w_max, low_dr, high_dr = limits
    else:
        assert weights is not None
        w_max = float(weights.max()) if weights.size else 0.0
        low_dr, high_dr = dr_term_bounds(weights, target, reward_hat, mask, bounds)
    note = {"bounds": list(bounds), "w_max": w_max}
    if "ips" in out:
        if kind == "cs":
            lower, upper = ips_interval(weights_logged, rewards, bounds, alpha)
        else:
            term_bounds = (min(0.0, bounds[0]) * w_max, max(0.0, bounds[1]) * w_max)
            plain = weights_logged if s is None else weights_logged * (s.mean() / s)
            lower, upper = bernstein_ci(hajek_terms(plain * rewards, s), alpha, bounds=widened(term_bounds, s))
        ips = out["ips"]
        out["ips"] = replace(ips, lower=lower, upper=upper, ci=kind, params={**ips.params, **note})
    if "dr" in out:
        dr = out["dr"]
        if kind == "cs":   # a confidence sequence for V itself, from the nonnegative IPS terms
            lower, upper = ips_interval(weights_logged, rewards, bounds, alpha)
            params = {**dr.params, **note, "interval": "betting confidence sequence of the IPS terms"}
        else:
            term_bounds = (min(low_dr, float(dr_terms.min())), max(high_dr, float(dr_terms.max())))
            lower, upper = bernstein_ci(hajek_terms(dr_terms, s), alpha, bounds=widened(term_bounds, s))
            params = {**dr.params, **note, "term_bounds": list(term_bounds)}
        out["dr"] = replace(dr, lower=lower, upper=upper, ci=kind, params=params)
    return out
