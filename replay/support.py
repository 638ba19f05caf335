"""Support diagnostics: does the log explore where a target policy goes?

An off-policy estimate can only be as good as the log's coverage of the target's
actions. The weight diagnostics of ``replay.estimators`` (Kish's ESS, the largest weight)
are computed from the weights that *happened* to be observed: a target that puts a third
of its mass on actions the logging policy chose with probability 0.001 gets a handsome
ESS from the few thousand events where it agreed with the log, and a confident, wrong
interval. Here everything is computed from the *full* logged PMF μ(·|x_i) of each event
and the target's PMF π(·|x_i), so what the log did not draw is seen too:

- ``poor_share``: mean over events of Σ_{a: 0 < μ(a) < threshold} π(a), the target's
  mass on actions the log gave less than ``threshold`` (default 0.01);
- ``unsupported_share``: mean of Σ_{a: μ(a) = 0} π(a), mass the log never gave a chance
  (IPS and DR are biased there whatever n is);
- ``ess``: the expected effective sample size n / mean_i Σ_{a: μ(a) > 0} π(a)²/μ(a),
  i.e. n·(E_μ[w])²/E_μ[w²] with the expectations over each event's logged action
  (Σ_a μ·(π/μ)² = Σ_a π²/μ): Kish's ESS in expectation, whatever was drawn;
- ``max_weight``: max over events and actions of π(a)/μ(a) (μ > 0): the largest weight
  the log *could* have produced.

An estimate is ``flagged`` (and so never picked as "best", see ``replay.results``) when
the poor and unsupported mass together exceed ``max_share``, when any mass is
unsupported, or when the expected ESS is below ``min_ess``; ``reasons`` say which.
Events logged without a PMF (only the served action's probability) are left out of the
diagnostics and counted (``events`` is those with one).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from replay.inputs import plain

__all__ = ["DEFAULT_RULE", "Support", "SupportRule", "combine", "support"]

UNSUPPORTED_TOLERANCE = 1e-6   # unsupported mass below this is rounding, not a flag


@dataclass(frozen=True)
class SupportRule:
    """When an estimate rests on poorly explored regions (see the module docstring)."""

    threshold: float = 0.01   # a logged probability below this explores poorly
    max_share: float = 0.05   # flag when more of the target's mass than this is on such actions
    min_ess: float = 100.0    # flag when the expected ESS is below this

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"support threshold must be in (0, 1), got {self.threshold!r}")
        if not 0.0 <= self.max_share < 1.0:
            raise ValueError(f"support max_share must be in [0, 1), got {self.max_share!r}")
        if not self.min_ess >= 0.0:
            raise ValueError(f"support min_ess must be >= 0, got {self.min_ess!r}")


DEFAULT_RULE = SupportRule()


@dataclass(frozen=True)
class Support:
    threshold: float
    events: int                # events with a logged PMF (the diagnostics are over these)
    poor_share: float          # target mass on actions with 0 < μ < threshold
    unsupported_share: float   # target mass on actions with μ = 0
    ess: float                 # expected ESS from the full PMFs
    max_weight: float          # the largest possible weight π/μ
    flagged: bool
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return plain(asdict(self))


def support(target: np.ndarray, logged: np.ndarray, mask: np.ndarray, rule: SupportRule = DEFAULT_RULE,
            before: np.ndarray | None = None, sample_weight: np.ndarray | None = None) -> Support:
    """The diagnostics of ``target`` (n×K PMFs) against the ``logged`` PMFs (n×K; NaN
    where unknown) over the actions in ``mask``. ``before`` (n,): a multi-slot log's
    cumulative weight of the earlier slots, which multiplies this slot's (the expected
    ESS of slot s is then n / mean(W_{s−1}²·Σ π_s²/μ_s)). ``sample_weight`` (n,; pdrop's
    1/(1 − pdrop), None without): the shares are s-weighted means, the expected ESS
    (Σs)²/Σ s²·W²·Σπ²/μ (``replay.weighting``). Computed by blocks of rows, so its
    temporaries are a block's, not n×K."""
    n, weight, poor, unsupported, second, max_weight = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    for start in range(0, target.shape[0], BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        parts = _block(target[rows], logged[rows], mask[rows], rule.threshold,
                       None if before is None else before[rows],
                       None if sample_weight is None else sample_weight[rows])
        n, weight = n + parts[0], weight + parts[1]
        poor, unsupported, second = poor + parts[2], unsupported + parts[3], second + parts[4]
        max_weight = max(max_weight, parts[5])
    if n == 0:
        return Support(rule.threshold, 0, math.nan, math.nan, math.nan, math.nan, True,
                       ["the log has no PMF (a/p) for any event: support cannot be checked"])
    poor, unsupported = poor / weight, unsupported / weight
    ess = weight * weight / second if second > 0 else 0.0   # (without pdrop: n / mean second moment)
    known_size = target.shape[0]
    reasons = []
    if unsupported > UNSUPPORTED_TOLERANCE:
        reasons.append(f"{unsupported:.1%} of the target's probability is on actions the log never gave a chance")
    if poor + unsupported > rule.max_share:
        reasons.append(f"{poor + unsupported:.1%} of the target's probability is on actions logged with "
                       f"p < {rule.threshold:g} (more than {rule.max_share:.0%})")
    if ess < rule.min_ess:
        reasons.append(f"expected ESS {ess:,.1f} is below {rule.min_ess:,.0f}")
    if n < known_size:
        reasons.append(f"{known_size - n:,} events without a logged PMF are not checked")
    flagged = any(not r.endswith("are not checked") for r in reasons)
    return Support(rule.threshold, n, poor, unsupported, ess, max_weight, flagged, reasons)


BLOCK_ROWS = 65_536


def _block(target: np.ndarray, logged: np.ndarray, mask: np.ndarray, threshold: float,
           before: np.ndarray | None,
           sample_weight: np.ndarray | None = None) -> tuple[int, float, float, float, float, float]:
    """One block's (events with a logged PMF, Σ s, Σ s·poor share, Σ s·unsupported share,
    Σ s²·second moment, max weight), s the sample weights (1 without): sums over rows,
    so blocks add up to the whole."""
    known = ~np.any(np.isnan(np.where(mask, logged, 0.0)), axis=1)
    pi, mu, used = target[known], np.nan_to_num(logged[known]), mask[known]
    n = int(known.sum())
    if n == 0:
        return 0, 0.0, 0.0, 0.0, 0.0, 0.0
    scale = np.ones(n) if before is None else before[known]
    positive = used & (mu > 0)
    s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[known]
    total = (lambda rows: float(rows.sum())) if s is None else (lambda rows: float(s @ rows))
    poor = total((np.where(positive & (mu < threshold), pi, 0.0)).sum(axis=1))
    unsupported = total((np.where(used & (mu <= 0), pi, 0.0)).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(positive, pi / np.where(positive, mu, 1.0), 0.0)
    rows = (scale**2) * (ratio * pi).sum(axis=1)
    second = float(rows.sum()) if s is None else float((s * s) @ rows)
    max_weight = float((scale[:, None] * ratio).max()) if ratio.size else 0.0
    return n, float(n) if s is None else float(s.sum()), poor, unsupported, second, max_weight


def combine(parts: list[Support]) -> Support:
    """A slate's support from its slots': the worst of each (a slate is as poorly
    supported as its worst slot)."""
    reasons = [f"slot {s + 1}: {reason}" for s, part in enumerate(parts) for reason in part.reasons]
    return Support(parts[0].threshold, max(p.events for p in parts), max(p.poor_share for p in parts),
                   max(p.unsupported_share for p in parts), min(p.ess for p in parts),
                   max(p.max_weight for p in parts), any(p.flagged for p in parts), reasons)
