"""Anytime-valid confidence sequences by betting, for off-policy values.

The construction of Karampatziakis, Mineiro & Ramdas, "Off-policy confidence sequences"
(ICML 2021), as VW's ``estimators`` package implements it in
``estimators/bandits/cs.py`` (github.com/VowpalWabbit/estimators): a gambler bets on the
observations X_t ≥ 0 against a candidate mean m, with a predictable centring
X̂_t = (Σ_{j<t} X_j + ½)/(t + 1) and a gamma-exponential mixture over the bet size
(ρ = 1), whose log-wealth has the closed form

    log W(s, v) = s + v + ρ·ln ρ − (v + ρ)·ln(s + v + ρ) + ln γ(v + ρ, s + v + ρ) − ln γ(ρ, ρ),

s = Σ_t (X_t − m), v = Σ_t (X_t − X̂_t)², γ the lower incomplete gamma function. The
lower confidence bound is the smallest m whose wealth stays below 1/δ (Ville's
inequality: valid at every t at once, so a data scientist may look at the running value
and stop when they like). It needs only X_t ≥ 0, not an upper bound: for IPS,
X = w·(r − r_min)/(r_max − r_min) for the lower side and w·(r_max − r)/(r_max − r_min)
for the upper (E[w] = 1), which is what makes it hold under heavy weights.

On a multi-slot log the slate's value is V = E[Σ_s W_s·r_s] (W_s the cumulative weight of
slot s, E[W_s] = 1): ``slate_ips_interval`` pads every event to the most slots S with
slots of weight 1 and reward 0 (0 within the rewards' range) and bets on
X = (Σ_s W_s·(r_s − r_min) − r_min·(S − S_i))/(S·(r_max − r_min)) ≥ 0, whose mean is
(V − S·r_min)/(S·(r_max − r_min)) ∈ [0, 1]; the upper side alike. No bound on W.

Here with numpy and the standard library only (the lower incomplete gamma by its series
and continued fraction, Numerical Recipes §6.2; the root by bisection). Each side gets
α/2, as in ``cs.py``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["betting_interval", "bounded_interval", "ips_interval", "log_lower_gamma", "slate_ips_interval"]

RHO = 1.0
_EPS = 1e-15
_MAX_TERMS = 100_000


def log_lower_gamma(a: float, x: float) -> float:
    """ln γ(a, x) = ln ∫_0^x t^(a−1) e^(−t) dt (unregularised), for a > 0, x > 0."""
    if x <= 0:
        return -math.inf
    log_prefix = -x + a * math.log(x)
    if x < a + 1.0:   # series: γ(a, x) = e^(−x) x^a Σ_k x^k / (a (a+1) ... (a+k))
        term = total = 1.0 / a
        denominator = a
        for _ in range(_MAX_TERMS):
            denominator += 1.0
            term *= x / denominator
            total += term
            if term < total * _EPS:
                break
        return log_prefix + math.log(total)
    # continued fraction for Γ(a, x) (modified Lentz), then γ = Γ(a) − Γ(a, x)
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    log_upper = log_prefix + math.log(h)                       # ln Γ(a, x)
    log_gamma = math.lgamma(a)
    return log_gamma + math.log1p(-math.exp(min(0.0, log_upper - log_gamma)))


def _log_wealth(s: float, v: float) -> float:
    x = s + v + RHO
    return (s + v + RHO * math.log(RHO) - (v + RHO) * math.log(x) + log_lower_gamma(v + RHO, x)
            - log_lower_gamma(RHO, RHO))


def _lower(x: np.ndarray, delta: float) -> float:
    """The lower confidence bound (in [0, min(1, mean)]) for the mean of X_t ≥ 0 whose
    mean is at most 1, at level 1 − delta: ``cs.py``'s ``_lblogwealth``."""
    t = x.size
    centre = (np.concatenate([[0.0], np.cumsum(x)[:-1]]) + 0.5) / (np.arange(t) + 1.0)
    v = float(np.sum((x - centre) ** 2))
    total = float(x.sum())
    threshold = -math.log(delta)
    if _log_wealth(total, v) <= threshold:
        return 0.0
    high = min(1.0, total / t)
    if _log_wealth(total - t * high, v) >= threshold:
        return high
    low = 0.0
    for _ in range(100):   # wealth falls as m rises: bisect on [low, high]
        middle = 0.5 * (low + high)
        if _log_wealth(total - t * middle, v) > threshold:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return low


def betting_interval(low_side: np.ndarray, high_side: np.ndarray, alpha: float) -> tuple[float, float]:
    """(l, u) in [0, 1]: l bounds the mean of ``low_side`` (≥ 0, mean ≤ 1) from below, u is
    1 − the lower bound of the mean of ``high_side``; α/2 each."""
    return _lower(low_side, alpha / 2.0), 1.0 - _lower(high_side, alpha / 2.0)


def ips_interval(weights: np.ndarray, rewards: np.ndarray, bounds: tuple[float, float],
                 alpha: float) -> tuple[float, float]:
    """The IPS confidence sequence of ``cs.py`` at the last event: rewards in ``bounds``
    = (r_min, r_max), any weights ≥ 0 with E[w] = 1."""
    r_min, r_max = bounds
    width = r_max - r_min
    if width <= 0:
        return r_min, r_max
    low, high = betting_interval(weights * (rewards - r_min) / width, weights * (r_max - rewards) / width, alpha)
    return r_min + low * width, r_min + high * width


def bounded_interval(terms: np.ndarray, bounds: tuple[float, float], alpha: float) -> tuple[float, float]:
    """The same confidence sequence for terms known a priori to lie in ``bounds`` = [L, U]
    (DR's terms: ``replay.finite``), rescaled to [0, 1]."""
    low_bound, high_bound = bounds
    width = high_bound - low_bound
    if width <= 0:
        return low_bound, high_bound
    scaled = np.clip((terms - low_bound) / width, 0.0, 1.0)
    low, high = betting_interval(scaled, 1.0 - scaled, alpha)
    return low_bound + low * width, low_bound + high * width


def slate_ips_interval(weights: np.ndarray, rewards: np.ndarray, event_of: np.ndarray, events: int,
                       bounds: tuple[float, float], alpha: float) -> tuple[float, float]:
    """The confidence sequence for a slate's value E[Σ_s W_s·r_s] (module docstring) from
    its (event, slot) rows: cumulative ``weights`` W_s ≥ 0, ``rewards`` in ``bounds``,
    ``event_of`` each row's event among ``events``. When events have different numbers
    of slots, ``bounds`` must contain 0 (the padding slots' reward)."""
    r_min, r_max = bounds
    counts = np.bincount(event_of, minlength=events)
    most = int(counts.max())
    pad = most - counts
    if np.any(pad > 0) and not r_min <= 0.0 <= r_max:
        raise ValueError(f"bounds {bounds!r} must contain 0 when events have different numbers of slots")
    width = most * (r_max - r_min)
    if width <= 0:
        return most * r_min, most * r_max
    low_side = (np.bincount(event_of, weights * (rewards - r_min), events) - r_min * pad) / width
    high_side = (np.bincount(event_of, weights * (r_max - rewards), events) + r_max * pad) / width
    low, high = betting_interval(low_side, high_side, alpha)
    return most * r_min + low * width, most * r_min + high * width
