"""Off-policy estimators: what would a target policy have earned on the logged traffic?

Conventions
-----------
* **Rewards, not costs**: bigger is better (VW's cost is the negated reward).
* ``logged_p[i]``: the probability with which the *logging* policy (the one that served
  the traffic) chose the logged action ``actions[i]`` for event i — the propensity the
  decision log records at serve time. In (0, 1]: a served action had a positive chance.
* ``target_p[i]``: the probability that the *target* policy (the one evaluated) picks
  that same logged action in the same context; 0/1 for a deterministic target.
* ``target_pmf`` and ``reward_hat`` are n × K: the target's full distribution and a reward
  model's prediction for every action. When the candidate set varies by event, pad rows
  to K with zero target probability; ``reward_hat`` in slots with zero target probability
  (other than the logged action) is never read, so padding may be anything, even NaN.
* The importance weight is w_i = target_p_i / logged_p_i.
* ``sample_weight`` (every estimator, keyword): s_i = 1/(1 − pdrop_i) for a sub-sampled
  log (``LoggedEvent.sample_weight``). Then every value is the Hájek mean Σs·t/Σs of its
  terms (SNIPS: the weights w·s), ``ess`` and ``max_weight`` are those of w·s, and the
  intervals are on the linearised terms (``replay.weighting``); ``n`` stays the number of
  logged samples, ``params["represented"]`` = Σs the events they stand for.

Each estimator returns an :class:`Estimate`: the value, a two-sided (1 − alpha) interval
(``ci`` = "normal", "bootstrap" or "bernstein", see ``replay.intervals``) and diagnostics
of the weights. Every value is the mean of per-sample terms, except SNIPS (a ratio).
``Estimate`` and the input checks live in ``replay.inputs`` (shared with ``replay.streaming``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from replay.inputs import (
    PMF_TOLERANCE,   # not used here: still importable from replay.estimators
    Estimate,
    check_logged,
    check_model,
    check_positive,
    check_with_model,
    ips_term_bounds,
    kish_ess,
    no_bernstein,
)
from replay.intervals import (
    N_BOOT,
    RngLike,
    as_terms,
    bernstein_ci,
    bootstrap_ci,
    check_alpha,
    check_bounds,
    check_ci,
    normal_ci,
    normal_interval,
    standard_error,
)
from replay.weighting import check_sample_weight, hajek_terms, represented, widened


__all__ = [
    "Estimate", "ips", "snips", "dm", "dr", "switch_dr", "estimate_all", "difference_of_means",
    "normal_ci", "bootstrap_ci", "bernstein_ci", "standard_error", "DEFAULT_TAU",
]

DEFAULT_TAU = 10.0   # switch-DR threshold in estimate_all: weights above 10 fall back to the model


# ---------------------------------------------------------------- shared assembly


def _estimate(
    method: str,
    terms: np.ndarray,
    *,
    alpha: float,
    ci: str,
    weights: np.ndarray | None,
    matched: float | None,
    n_boot: int,
    rng: RngLike,
    term_bounds: tuple[float, float] | None = None,
    params: dict[str, Any] | None = None,
    sample_weight: np.ndarray | None = None,
) -> Estimate:
    """An Estimate for a mean of per-sample terms, with the requested interval; with
    ``sample_weight`` (checked: None or not all 1) the Hájek mean, its interval on the
    linearised terms (``replay.weighting``)."""
    s = sample_weight
    value = float(terms.mean()) if s is None else float(s @ terms) / float(s.sum())
    terms = hajek_terms(terms, s)
    if term_bounds is not None:
        term_bounds = widened(term_bounds, s)
    if weights is not None and s is not None:
        weights = weights * s
    if ci == "normal":
        lower, upper = normal_ci(terms, alpha)
    elif ci == "bootstrap":
        lower, upper = bootstrap_ci(terms, alpha, n_boot=n_boot, rng=rng)
    elif term_bounds is not None:
        lower, upper = bernstein_ci(terms, alpha, bounds=term_bounds)
    else:
        raise no_bernstein(method)
    extra = dict(params or {})
    if ci == "bootstrap":
        extra["n_boot"] = n_boot
    if s is not None:
        extra["represented"] = represented(s, terms.size)
    return Estimate(
        value=value, lower=lower, upper=upper, alpha=alpha, method=method, ci=ci, n=terms.size,
        se=standard_error(terms),
        ess=(float(terms.size) if s is None else kish_ess(s)) if weights is None else kish_ess(weights),
        max_weight=None if weights is None else float(weights.max()),
        matched=matched, params=extra,
    )


def _start(alpha: float, ci: str) -> tuple[float, str]:
    return check_alpha(alpha), check_ci(ci)


# ---------------------------------------------------------------- estimators


def ips(
    rewards: ArrayLike,
    logged_p: ArrayLike,
    target_p: ArrayLike,
    *,
    alpha: float = 0.05,
    ci: str = "normal",
    clip: float | None = None,
    bounds: tuple[float, float] | None = None,
    n_boot: int = N_BOOT,
    rng: RngLike = None,
    sample_weight: ArrayLike | None = None,
) -> Estimate:
    """Inverse propensity scoring, V = (1/n) Σ w_i·r_i with w_i = target_p_i/logged_p_i
    (with ``sample_weight`` s: Σ s_i·w_i·r_i / Σ s_i, module docstring).

    Unbiased when the logging policy gives every action the target can choose a positive
    probability. ``clip=M`` uses min(w_i, M): less variance, biased (downward for rewards
    ≥ 0). ``ci="bernstein"`` needs the range of the terms: rewards in ``bounds`` = (r_min,
    r_max) give terms in [min(0, r_min)·w_max, max(0, r_max)·w_max], w_max = ``clip`` if
    given (a true a-priori bound) else the largest observed weight. Give ``bounds``:
    inferring them from the rewards seen (with a warning) weakens the guarantee."""
    alpha, ci = _start(alpha, ci)
    data = check_logged(rewards, logged_p, target_p)
    s = check_sample_weight(sample_weight, data.n)
    clip = check_positive(clip, "clip")
    weights = data.weights if clip is None else np.minimum(data.weights, clip)
    params: dict[str, Any] = {} if clip is None else {"clip": clip}
    term_bounds = None
    if bounds is not None:
        bounds = check_bounds(bounds, "bounds")
        if data.rewards.min() < bounds[0] or data.rewards.max() > bounds[1]:
            raise ValueError(f"bounds {bounds!r} do not contain every reward")
    if ci == "bernstein":
        observed = (float(data.rewards.min()), float(data.rewards.max()))
        w_max = clip if clip is not None else float(weights.max())
        bounds, term_bounds = ips_term_bounds(bounds, observed, w_max, stacklevel=2)
        params["bounds"] = bounds
    return _estimate(
        "ips", weights * data.rewards, alpha=alpha, ci=ci, weights=weights, matched=data.matched,
        n_boot=n_boot, rng=rng, term_bounds=term_bounds, params=params, sample_weight=s,
    )


def snips(
    rewards: ArrayLike,
    logged_p: ArrayLike,
    target_p: ArrayLike,
    *,
    alpha: float = 0.05,
    ci: str = "normal",
    n_boot: int = N_BOOT,
    rng: RngLike = None,
    sample_weight: ArrayLike | None = None,
) -> Estimate:
    """Self-normalised IPS, V = Σ w_i·r_i / Σ w_i (with ``sample_weight`` s, the weights
    w_i·s_i: Σ s·w·r / Σ s·w, the Hájek form): a ratio estimator, slightly biased,
    far less variable than IPS when weights are large, and always within the reward range.

    Normal interval by the delta method: se = sd(d)/√n with influence terms
    d_i = w_i·(r_i − V)/mean(w). Bootstrap resamples (w_i·r_i, w_i) pairs and recomputes
    the ratio. No Bernstein bound. NaN value if no sample is matched (Σw = 0)."""
    alpha, ci = _start(alpha, ci)
    data = check_logged(rewards, logged_p, target_p)
    if ci == "bernstein":
        raise no_bernstein("snips")
    s = check_sample_weight(sample_weight, data.n)
    w, n = (data.weights, data.n) if s is None else (data.weights * s, data.n)
    total = float(w.sum())
    value = float(np.dot(w, data.rewards)) / total if total > 0 else math.nan
    se = math.nan
    lower = upper = math.nan
    params: dict[str, Any] = {}
    if total > 0:
        influence = w * (data.rewards - value) / (total / n)
        se = standard_error(influence)
        if ci == "normal":
            lower, upper = normal_interval(value, se, alpha)
        else:
            lower, upper = bootstrap_ci(w * data.rewards, alpha, denominator=w, n_boot=n_boot, rng=rng)
    if ci == "bootstrap":
        params["n_boot"] = n_boot
    if s is not None:
        params["represented"] = represented(s, n)
    return Estimate(
        value=value, lower=lower, upper=upper, alpha=alpha, method="snips", ci=ci, n=n, se=se,
        ess=kish_ess(w), max_weight=float(w.max()), matched=data.matched, params=params,
    )


def dm(
    target_pmf: ArrayLike,
    reward_hat: ArrayLike,
    *,
    alpha: float = 0.05,
    ci: str = "normal",
    n_boot: int = N_BOOT,
    rng: RngLike = None,
    sample_weight: ArrayLike | None = None,
) -> Estimate:
    """Direct method, V = (1/n) Σ_i Σ_a π(a|x_i)·r̂(x_i, a): trusts the reward model.

    Low variance, biased exactly as much as the model is wrong; the interval only
    reflects the sampling of contexts, never the model's error. No logged actions are
    read, so ``max_weight`` and ``matched`` are None and ``ess`` is n."""
    alpha, ci = _start(alpha, ci)
    pmf = np.asarray(target_pmf, dtype=float)
    if pmf.ndim != 2 or pmf.shape[0] == 0:
        raise ValueError(f"target_pmf must be a non-empty (n, K) array, got shape {pmf.shape}")
    n = pmf.shape[0]
    _, _, terms = check_model(n, None, pmf, reward_hat)
    s = check_sample_weight(sample_weight, n)
    return _estimate("dm", terms, alpha=alpha, ci=ci, weights=None, matched=None, n_boot=n_boot, rng=rng,
                     sample_weight=s)


def dr(
    rewards: ArrayLike,
    logged_p: ArrayLike,
    actions: ArrayLike,
    target_pmf: ArrayLike,
    reward_hat: ArrayLike,
    *,
    alpha: float = 0.05,
    ci: str = "normal",
    clip: float | None = None,
    n_boot: int = N_BOOT,
    rng: RngLike = None,
    sample_weight: ArrayLike | None = None,
) -> Estimate:
    """Doubly robust (Dudík, Langford & Li 2011),
    V = (1/n) Σ_i [ Σ_a π(a|x_i)·r̂(x_i, a) + w_i·(r_i − r̂(x_i, a_i)) ]:
    the model's prediction, corrected by the importance-weighted residual on the logged
    action. Unbiased if either the propensities or the model are right.
    target_p is read from ``target_pmf[i, actions[i]]``.

    ``clip=M`` is clipped DR: weights min(w_i, M) in the correction, trading a bias that
    vanishes as the model improves for bounded variance."""
    alpha, ci = _start(alpha, ci)
    data, rhat_logged, dm_terms = check_with_model(rewards, logged_p, actions, target_pmf, reward_hat)
    clip = check_positive(clip, "clip")
    weights = data.weights if clip is None else np.minimum(data.weights, clip)
    terms = dm_terms + weights * (data.rewards - rhat_logged)
    return _estimate(
        "dr", terms, alpha=alpha, ci=ci, weights=weights, matched=data.matched, n_boot=n_boot, rng=rng,
        params={} if clip is None else {"clip": clip}, sample_weight=check_sample_weight(sample_weight, data.n),
    )


def switch_dr(
    rewards: ArrayLike,
    logged_p: ArrayLike,
    actions: ArrayLike,
    target_pmf: ArrayLike,
    reward_hat: ArrayLike,
    *,
    tau: float,
    alpha: float = 0.05,
    ci: str = "normal",
    n_boot: int = N_BOOT,
    rng: RngLike = None,
    sample_weight: ArrayLike | None = None,
) -> Estimate:
    """Switch-DR (Wang, Agarwal & Dudík 2017),
    V = (1/n) Σ_i [ Σ_a π(a|x_i)·r̂(x_i, a) + 1{w_i ≤ τ}·w_i·(r_i − r̂(x_i, a_i)) ]:
    the DR term where the weight is at most ``tau``, the DM term where it exceeds it.

    Variant: the per-sample switch on the logged action's weight w_i (the only weight
    the log gives). For switch-DR this equals the paper's per-action definition: there
    the DM parts over {a: w(a) ≤ τ} and {a: w(a) > τ} add up to the full DM term, and
    only the logged action's residual is weighted. ``tau=inf`` is DR; ``tau=0`` is DM.
    ``ess``/``max_weight`` describe the weights kept (switched samples count as 0)."""
    alpha, ci = _start(alpha, ci)
    data, rhat_logged, dm_terms = check_with_model(rewards, logged_p, actions, target_pmf, reward_hat)
    if tau is None:
        raise ValueError("tau must be a number >= 0 (inf gives plain DR), got None")
    tau = check_positive(tau, "tau", allow_zero=True)
    weights = np.where(data.weights <= tau, data.weights, 0.0)
    terms = dm_terms + weights * (data.rewards - rhat_logged)
    return _estimate(
        "switch_dr", terms, alpha=alpha, ci=ci, weights=weights, matched=data.matched, n_boot=n_boot, rng=rng,
        params={"tau": tau, "switched": float(np.mean(data.weights > tau))},
        sample_weight=check_sample_weight(sample_weight, data.n),
    )


def estimate_all(
    rewards: ArrayLike,
    logged_p: ArrayLike,
    actions: ArrayLike,
    target_pmf: ArrayLike,
    reward_hat: ArrayLike,
    *,
    alpha: float = 0.05,
    ci: str = "normal",
    tau: float = DEFAULT_TAU,
    n_boot: int = N_BOOT,
    rng: RngLike = None,
    sample_weight: ArrayLike | None = None,
) -> dict[str, Estimate]:
    """ips, snips, dm, dr and switch_dr (threshold ``tau``, default 10) side by side, with
    target_p = target_pmf[i, actions[i]]. Agreement between them is itself a diagnostic.
    An int ``rng`` gives every estimator the same bootstrap resamples. No "bernstein":
    only ips supports it."""
    alpha, ci = _start(alpha, ci)
    if ci == "bernstein":
        raise no_bernstein("estimate_all")
    r = as_terms(rewards, "rewards")
    target_p, _, _ = check_model(r.size, actions, target_pmf, reward_hat)
    common: dict[str, Any] = {"alpha": alpha, "ci": ci, "n_boot": n_boot, "rng": rng,
                              "sample_weight": sample_weight}
    model_args = (r, logged_p, actions, target_pmf, reward_hat)
    return {
        "ips": ips(r, logged_p, target_p, **common),
        "snips": snips(r, logged_p, target_p, **common),
        "dm": dm(target_pmf, reward_hat, **common),
        "dr": dr(*model_args, **common),
        "switch_dr": switch_dr(*model_args, tau=tau, **common),
    }


def difference_of_means(a: ArrayLike, b: ArrayLike, alpha: float = 0.05) -> Estimate:
    """mean(a) − mean(b) with Welch's normal interval, se = √(s_a²/n_a + s_b²/n_b)
    (ddof=1): e.g. a treatment's lift over the control group, the two samples independent
    and of any sizes. ``n`` is n_a + n_b; the weight diagnostics are None."""
    alpha = check_alpha(alpha)
    first, second = as_terms(a, "a"), as_terms(b, "b")
    se = math.hypot(standard_error(first), standard_error(second))
    value = float(first.mean() - second.mean())
    lower, upper = normal_interval(value, se, alpha)
    return Estimate(
        value=value, lower=lower, upper=upper, alpha=alpha, method="difference_of_means", ci="normal",
        n=first.size + second.size, se=se, ess=None, max_weight=None, matched=None,
        params={"n_a": first.size, "n_b": second.size},
    )
