"""Off-policy estimates over logs too big to hold: the estimators of ``replay.estimators``
fed chunk by chunk, keeping only sufficient statistics.

The batch API needs every per-event term at once (n floats, n×K for the target and the
reward model); here each ``update`` folds a chunk into a few numbers and drops it, so
memory is bounded by the chunk, whatever n is. ``result(alpha)`` gives the same
``Estimate`` as the batch call with ``ci="normal"`` on all the data (to rounding,
~1e-15 relative): same value, standard error, interval, ESS, max weight and matched share.

    ests = StreamingAll(tau=10.0)
    for chunk in chunks:                       # e.g. a million events at a time
        ests.update(chunk.rewards, chunk.logged_p, chunk.actions, chunk.target_pmf, chunk.reward_hat)
    ests.result(alpha=0.05)                    # {"ips": Estimate, "snips": ..., "dm", "dr", "switch_dr"}

One class per method (``StreamingIPS``, ``StreamingSNIPS``, ``StreamingDM``, ``StreamingDR``,
``StreamingSwitchDR``), with the batch function's arguments split in two: options in the
constructor, data in ``update``. Inputs are checked by the batch API's own checks
(``replay.inputs``), so a bad chunk raises the same ``ValueError`` (and leaves the
estimator unchanged); an empty chunk is a no-op. ``merge`` combines estimators fed with
different parts of the data (workers). Feed ~10,000 events per ``update``: about 7 M
events per CPU-second for all five, twice the rate of 1 M-event calls
(bench/evaluation.py, docs/benchmarks.md "Replay").

What is kept
------------
* Means of per-sample terms (IPS, DM, DR, switch-DR): count, mean and M2 = Σ(x − mean)²
  (``replay.moments.RunningMoments``), each chunk's computed with numpy and combined by
  Chan, Golub & LeVeque's pairwise update, on values shifted by the first chunk's mean.
  The shift keeps large-mean, small-variance terms exact: for 10⁶ values of mean 10⁸ and
  sd 10⁻³ in 1000 chunks, the naive Σx² − n·mean² loses every digit, Chan's update
  without the shift by 5e-8 relative (each chunk's mean is rounded to the ulp of 10⁸),
  with it by 1e-15 (numpy's two-pass batch variance: 7e-12).
* SNIPS: V = Σw·r/Σw is the w-weighted mean of rewards (weighted Chan update), and the
  delta-method variance needs Σw²(r − V)² = M2_w² + Σw²·(U − V)², U and M2_w² the
  w²-weighted mean and M2 of the rewards (so V need not be known in advance).
* Weights: Σw and Σw² (Neumaier-compensated) for Kish's ESS, max weight, matched count.
* IPS also keeps min/max reward and term for the empirical Bernstein bound (n, mean,
  variance and the range are all it needs).

Sub-sampled logs: every ``update`` takes ``sample_weight`` (s_i = 1/(1 − pdrop_i)), as the
batch functions do (``replay.weighting``): the means become s-weighted (weighted Chan
update), their variance the delta method's Σs²(t − V)² (kept as SNIPS keeps its own, from
the s²-weighted moments), SNIPS's weights w·s. The same ``Estimate`` as the batch call.

Not streamable: ``ci="bootstrap"`` resamples the n terms, so it needs all of them; use the
batch API (on the data or a sample of it). It raises ``ValueError`` here.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from replay.estimators import DEFAULT_TAU
from replay.inputs import (
    Estimate,
    Logged,
    check_logged,
    check_model,
    check_positive,
    check_with_model,
    ips_term_bounds,
    no_bernstein,
)
from replay.intervals import bernstein_interval, check_alpha, check_bounds, check_ci, normal_interval
from replay.moments import RunningMoments, WeightStats
from replay.weighting import check_sample_weight

__all__ = ["RunningMoments", "StreamingAll", "StreamingDM", "StreamingDR", "StreamingEstimator", "StreamingIPS",
           "StreamingSNIPS", "StreamingSwitchDR"]


def _empty(*arrays: ArrayLike) -> bool:
    return all(np.size(a) == 0 for a in arrays)


def _no_bootstrap() -> ValueError:
    return ValueError("ci='bootstrap' is not streamable (it resamples all n terms): use replay.estimators "
                      "on the data or a sample; streaming supports 'normal' (and 'bernstein' for ips)")


class StreamingEstimator:
    """Base: a mean of per-sample terms (every method but SNIPS) with weight diagnostics."""

    method: ClassVar[str] = ""
    bernstein: ClassVar[bool] = False

    def __init__(self) -> None:
        self.n = 0
        self._terms = RunningMoments()     # s-weighted (unit weights without pdrop)
        self._weights = WeightStats()
        self._squares: RunningMoments | None = None   # s²-weighted: kept from the first sample weight on
        self._s_max = 1.0

    def _fold(self, terms: np.ndarray, weights: np.ndarray | None, target_p: np.ndarray | None,
              s: np.ndarray | None = None) -> None:
        self.n += terms.size
        if s is None:
            self._terms.add(terms)
            if self._squares is not None:
                self._squares.add(terms)
        else:
            if self._squares is None:   # the chunks so far had s = 1: their s²-moments are their moments
                self._squares = _copy(self._terms)
            self._terms.add(terms, s)
            self._squares.add(terms, s * s)
            self._s_max = max(self._s_max, float(s.max()))
            weights = None if weights is None else weights * s
        if weights is not None and target_p is not None:
            self._weights.add(weights, target_p)

    def merge(self, other: Self) -> Self:
        """Fold in an estimator of the same kind and options fed with other data."""
        if type(other) is not type(self) or other._options() != self._options():
            raise ValueError(f"cannot merge {type(other).__name__}{other._options()} into "
                             f"{type(self).__name__}{self._options()}")
        self.n += other.n
        if self._squares is not None or other._squares is not None:
            mine = self._squares if self._squares is not None else _copy(self._terms)
            mine.merge(other._squares if other._squares is not None else other._terms)
            self._squares = mine
            self._s_max = max(self._s_max, other._s_max)
        self._terms.merge(other._terms)
        self._weights.merge(other._weights)
        self._merge_extra(other)
        return self

    def _merge_extra(self, other: Self) -> None:
        pass

    def _options(self) -> dict[str, Any]:
        return {}

    def _params(self) -> dict[str, Any]:
        return self._options()

    def _check(self, alpha: float, ci: str) -> tuple[float, str]:
        alpha, ci = check_alpha(alpha), check_ci(ci)
        if ci == "bootstrap":
            raise _no_bootstrap()
        if ci == "bernstein" and not self.bernstein:
            raise no_bernstein(self.method)
        if self.n == 0:
            raise ValueError(f"{self.method}: no samples yet (every chunk was empty)")
        return alpha, ci

    def se(self) -> float:
        """sd(terms, ddof=1)/√n, as ``replay.intervals.standard_error``; with sample
        weights, that of the linearised terms (``replay.weighting``)."""
        if self.n < 2:
            return math.nan
        if self._squares is None:
            return math.sqrt(self._terms.m2 / (self.n - 1)) / math.sqrt(self.n)
        return _weighted_se(self._terms, self._squares, self.n)

    def result(self, alpha: float = 0.05, ci: str = "normal") -> Estimate:
        """The estimate over everything fed so far, with its normal interval."""
        alpha, ci = self._check(alpha, ci)
        value, se = self._terms.value, self.se()
        params = self._params()
        if ci == "bernstein":
            lower, upper = self._bernstein(alpha, params)
        else:
            lower, upper = normal_interval(value, se, alpha)
        weighted = self.method != "dm"
        if self._squares is not None:
            params["represented"] = self._terms.weight
        design_ess = float(self.n) if self._squares is None else self._terms.weight ** 2 / self._squares.weight
        return Estimate(
            value=value, lower=lower, upper=upper, alpha=alpha, method=self.method, ci=ci, n=self.n, se=se,
            ess=self._weights.ess if weighted else design_ess,
            max_weight=self._weights.max if weighted else None,
            matched=self._weights.matched / self.n if weighted else None, params=params,
        )

    def _bernstein(self, alpha: float, params: dict[str, Any]) -> tuple[float, float]:
        raise no_bernstein(self.method)


def _copy(moments: RunningMoments) -> RunningMoments:
    out = RunningMoments()
    out.shift, out.weight, out.mean, out.m2 = moments.shift, moments.weight, moments.mean, moments.m2
    return out


def _weighted_se(terms: RunningMoments, squares: RunningMoments, n: int) -> float:
    """The linearised terms' sd/√n from the s- and s²-weighted moments: Σs²(t − V)² =
    M2_s² + Σs²·(U − V)² (as SNIPS's), times n/((Σs)²(n − 1))."""
    if terms.shift is None or squares.shift is None or terms.weight <= 0:
        return math.nan
    gap = (squares.shift - terms.shift) + (squares.mean - terms.mean)
    spread = squares.m2 + gap * gap * squares.weight
    return math.sqrt(spread * n / (terms.weight ** 2 * (n - 1)))


class _FromLogged(StreamingEstimator):
    """``update(rewards, logged_p, target_p)``, checked by ``replay.inputs.check_logged``."""

    def update(self, rewards: ArrayLike, logged_p: ArrayLike, target_p: ArrayLike, *,
               sample_weight: ArrayLike | None = None) -> Self:
        if not _empty(rewards, logged_p, target_p):
            data = check_logged(rewards, logged_p, target_p)
            self._add(data, check_sample_weight(sample_weight, data.n))
        return self

    def _add(self, data: Logged, s: np.ndarray | None = None) -> None:
        raise NotImplementedError


class StreamingIPS(_FromLogged):
    """``replay.estimators.ips`` by chunks: ``update(rewards, logged_p, target_p)``."""

    method = "ips"
    bernstein = True

    def __init__(self, *, clip: float | None = None, bounds: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.clip = check_positive(clip, "clip")
        self.bounds = None if bounds is None else check_bounds(bounds, "bounds")
        self._rewards = [math.inf, -math.inf]   # observed min, max
        self._range = [math.inf, -math.inf]     # of the terms
        self._w_max = -math.inf                 # of the weights w (the diagnostics keep w·s's)

    def _add(self, data: Logged, s: np.ndarray | None = None) -> None:
        low, high = float(data.rewards.min()), float(data.rewards.max())
        if self.bounds is not None and (low < self.bounds[0] or high > self.bounds[1]):
            raise ValueError(f"bounds {self.bounds!r} do not contain every reward")
        weights = data.weights if self.clip is None else np.minimum(data.weights, self.clip)
        terms = weights * data.rewards
        self._fold(terms, weights, data.target_p, s)
        self._w_max = max(self._w_max, float(weights.max()))
        self._rewards = [min(self._rewards[0], low), max(self._rewards[1], high)]
        self._range = [min(self._range[0], float(terms.min())), max(self._range[1], float(terms.max()))]

    def _merge_extra(self, other: Self) -> None:
        self._rewards = [min(self._rewards[0], other._rewards[0]), max(self._rewards[1], other._rewards[1])]
        self._range = [min(self._range[0], other._range[0]), max(self._range[1], other._range[1])]
        self._w_max = max(self._w_max, other._w_max)

    def _options(self) -> dict[str, Any]:
        return {} if self.clip is None else {"clip": self.clip}

    def _bernstein(self, alpha: float, params: dict[str, Any]) -> tuple[float, float]:
        """``ips``'s Bernstein interval from the moments: the same bounds, checks and
        ``replay.intervals.bernstein_interval``."""
        w_max = self.clip if self.clip is not None else self._w_max
        bounds, term_bounds = ips_term_bounds(self.bounds, (self._rewards[0], self._rewards[1]), w_max, stacklevel=3)
        params["bounds"] = bounds
        if self._squares is not None:   # the linearised terms: their variance, the widened bounds
            mean_s = self._terms.weight / self.n
            spread = (self._s_max / mean_s - 1.0) * (term_bounds[1] - term_bounds[0])
            return bernstein_interval(self.n, self._terms.value, self.se() ** 2 * self.n,
                                      (term_bounds[0] - spread, term_bounds[1] + spread), alpha)
        variance = self._terms.m2 / (self.n - 1) if self.n > 1 else math.nan
        return bernstein_interval(self.n, self._terms.value, variance, term_bounds, alpha,
                                  observed=(self._range[0], self._range[1]))


class StreamingSNIPS(_FromLogged):
    """``replay.estimators.snips`` by chunks: ``update(rewards, logged_p, target_p)``.
    Normal interval by the delta method, as the batch call; NaN if nothing matched."""

    method = "snips"

    def __init__(self) -> None:
        super().__init__()
        self._ratio = RunningMoments()    # rewards weighted by w: the mean is V
        self._spread = RunningMoments()   # rewards weighted by w²: mean U, M2 about U
        self._s_total: float | None = None   # Σs, from the first sample weight on

    def _add(self, data: Logged, s: np.ndarray | None = None) -> None:
        w = data.weights if s is None else data.weights * s
        if s is not None or self._s_total is not None:
            self._s_total = (float(self.n) if self._s_total is None else self._s_total) + \
                (float(s.sum()) if s is not None else float(data.n))
        self.n += data.n
        self._weights.add(w, data.target_p)
        self._ratio.add(data.rewards, w)
        self._spread.add(data.rewards, w * w)

    def _merge_extra(self, other: Self) -> None:
        self._ratio.merge(other._ratio)
        self._spread.merge(other._spread)
        if self._s_total is not None or other._s_total is not None:
            self._s_total = (self._s_total if self._s_total is not None else float(self.n - other.n)) + \
                (other._s_total if other._s_total is not None else float(other.n))

    def se(self) -> float:
        """sd of the influence terms d_i = w_i·(r_i − V)/mean(w) over √n (their mean is 0)."""
        total = self._weights.total.value
        if self.n < 2 or total <= 0 or self._ratio.shift is None or self._spread.shift is None:
            return math.nan
        gap = (self._spread.shift - self._ratio.shift) + (self._spread.mean - self._ratio.mean)   # U − V
        squares = self._spread.m2 + gap * gap * self._spread.weight                              # Σw²(r − V)²
        variance = (self.n / total) ** 2 * squares / (self.n - 1)
        return math.sqrt(variance) / math.sqrt(self.n)

    def result(self, alpha: float = 0.05, ci: str = "normal") -> Estimate:
        alpha, ci = self._check(alpha, ci)
        matched = self._weights.total.value > 0
        value = self._ratio.value if matched else math.nan
        se = self.se() if matched else math.nan
        lower, upper = normal_interval(value, se, alpha) if matched else (math.nan, math.nan)
        params = {} if self._s_total is None else {"represented": self._s_total}
        return Estimate(value=value, lower=lower, upper=upper, alpha=alpha, method="snips", ci=ci, n=self.n, se=se,
                        ess=self._weights.ess, max_weight=self._weights.max,
                        matched=self._weights.matched / self.n, params=params)


class StreamingDM(StreamingEstimator):
    """``replay.estimators.dm`` by chunks: ``update(target_pmf, reward_hat)``."""

    method = "dm"

    def update(self, target_pmf: ArrayLike, reward_hat: ArrayLike, *,
               sample_weight: ArrayLike | None = None) -> Self:
        pmf = np.asarray(target_pmf, dtype=float)
        if pmf.size == 0 and _empty(reward_hat):
            return self
        _, _, terms = check_model(len(pmf) if pmf.ndim else 0, None, pmf, reward_hat)
        self._fold(terms, None, None, check_sample_weight(sample_weight, terms.size))
        return self


class StreamingDR(StreamingEstimator):
    """``replay.estimators.dr`` by chunks:
    ``update(rewards, logged_p, actions, target_pmf, reward_hat)``."""

    method = "dr"

    def __init__(self, *, clip: float | None = None) -> None:
        super().__init__()
        self.clip = check_positive(clip, "clip")

    def update(self, rewards: ArrayLike, logged_p: ArrayLike, actions: ArrayLike, target_pmf: ArrayLike,
               reward_hat: ArrayLike, *, sample_weight: ArrayLike | None = None) -> Self:
        if not _empty(rewards, logged_p, actions, target_pmf, reward_hat):
            data, rhat_logged, dm_terms = check_with_model(rewards, logged_p, actions, target_pmf, reward_hat)
            self._add(data, rhat_logged, dm_terms, check_sample_weight(sample_weight, data.n))
        return self

    def _weights_of(self, data: Logged) -> np.ndarray:
        return data.weights if self.clip is None else np.minimum(data.weights, self.clip)

    def _add(self, data: Logged, rhat_logged: np.ndarray, dm_terms: np.ndarray, s: np.ndarray | None = None) -> None:
        weights = self._weights_of(data)
        self._fold(dm_terms + weights * (data.rewards - rhat_logged), weights, data.target_p, s)

    def _options(self) -> dict[str, Any]:
        return {} if self.clip is None else {"clip": self.clip}


class StreamingSwitchDR(StreamingDR):
    """``replay.estimators.switch_dr`` by chunks (same ``update`` as ``StreamingDR``)."""

    method = "switch_dr"

    def __init__(self, *, tau: float) -> None:
        StreamingEstimator.__init__(self)
        if tau is None:
            raise ValueError("tau must be a number >= 0 (inf gives plain DR), got None")
        self.clip = None
        self.tau = check_positive(tau, "tau", allow_zero=True)
        self._switched = 0

    def _weights_of(self, data: Logged) -> np.ndarray:
        self._switched += int(np.count_nonzero(data.weights > self.tau))
        return np.where(data.weights <= self.tau, data.weights, 0.0)

    def _merge_extra(self, other: Self) -> None:
        self._switched += other._switched

    def _options(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def _params(self) -> dict[str, Any]:
        return {"tau": self.tau, "switched": self._switched / self.n}


class StreamingAll:
    """``replay.estimators.estimate_all`` by chunks: ips, snips, dm, dr and switch_dr fed
    the same ``update(rewards, logged_p, actions, target_pmf, reward_hat)``, the chunk
    checked once; target_p = target_pmf[i, actions[i]]."""

    def __init__(self, *, tau: float = DEFAULT_TAU) -> None:
        self.ips, self.snips, self.dm = StreamingIPS(), StreamingSNIPS(), StreamingDM()
        self.dr, self.switch_dr = StreamingDR(), StreamingSwitchDR(tau=tau)

    @property
    def estimators(self) -> dict[str, StreamingEstimator]:
        return {"ips": self.ips, "snips": self.snips, "dm": self.dm, "dr": self.dr, "switch_dr": self.switch_dr}

    @property
    def n(self) -> int:
        return self.ips.n

    def update(self, rewards: ArrayLike, logged_p: ArrayLike, actions: ArrayLike, target_pmf: ArrayLike,
               reward_hat: ArrayLike, *, sample_weight: ArrayLike | None = None) -> Self:
        if _empty(rewards, logged_p, actions, target_pmf, reward_hat):
            return self
        data, rhat_logged, dm_terms = check_with_model(rewards, logged_p, actions, target_pmf, reward_hat)
        s = check_sample_weight(sample_weight, data.n)
        self.ips._add(data, s)
        self.snips._add(data, s)
        self.dm._fold(dm_terms, None, None, s)
        self.dr._add(data, rhat_logged, dm_terms, s)
        self.switch_dr._add(data, rhat_logged, dm_terms, s)
        return self

    def merge(self, other: StreamingAll) -> Self:
        for name, estimator in self.estimators.items():
            estimator.merge(other.estimators[name])
        return self

    def result(self, alpha: float = 0.05, ci: str = "normal") -> dict[str, Estimate]:
        if check_ci(ci) == "bernstein":
            raise no_bernstein("estimate_all")
        return {name: estimator.result(alpha, ci) for name, estimator in self.estimators.items()}
