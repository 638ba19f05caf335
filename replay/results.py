"""What ``replay.evaluate`` returns: each policy's estimates (``PolicyResult``), its
running estimate over the log (``Curve``), the single offers' values (``OfferValue``)
and the whole run (``EvaluationResult``), each with ``to_json()``; and how policies are
ranked (``ranked``: by the lower bound of the headline interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from replay.inputs import Estimate, plain
from replay.intervals import N_BOOT, bernstein_ci, bootstrap_ci, normal_ci, standard_error, z_value
from replay.logs import ValidationReport
from replay.sequences import bounded_interval
from replay.support import DEFAULT_RULE, Support, SupportRule
from replay.weighting import check_sample_weight, hajek_terms, represented, widened

__all__ = ["CALIBRATION_BINS", "CURVE_POINTS", "SEED", "Calibration", "Curve", "EvaluationResult", "OfferValue",
           "PolicyResult", "calibration", "mean_estimate", "ranked", "ranked_offers", "running_curve"]

CURVE_POINTS = 200
CALIBRATION_BINS = 10
SEED = 0                 # bootstrap resamples: the same numbers whatever the worker count


@dataclass(frozen=True)
class Curve:
    """A running estimate over events (cumulative mean of per-event terms) with its
    pointwise normal interval, at up to ``CURVE_POINTS`` event counts."""

    events: list[int]
    value: list[float]
    lower: list[float]
    upper: list[float]

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "value": plain(self.value), "lower": plain(self.lower),
                "upper": plain(self.upper)}


@dataclass(frozen=True)
class PolicyResult:
    """One policy's estimates. ``kind`` is "candidate" or "baseline"; ``headline`` names
    the estimate that ranks it ("dr", or "on_policy" for the logging policy)."""

    name: str
    kind: str
    estimates: dict[str, Estimate]
    headline: str = "dr"
    args: str | None = None
    description: str = ""
    seconds: float | None = None
    curve: Curve | None = None
    terms: np.ndarray | None = field(default=None, repr=False, compare=False)   # per-event headline terms
    slots: list[dict[str, Estimate]] | None = None   # multi-slot logs: per slot position, its estimates
    support: Support | None = None   # replay.support: the target's support in the log (None: on-policy)
    slot_support: list[Support] | None = None   # multi-slot logs: per slot position (``support`` is the worst)
    # per-event target PMFs (n×K, the rows replay scored), with evaluate(keep_targets=True)
    target: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> Estimate:
        return self.estimates[self.headline]

    @property
    def flagged(self) -> bool:
        """The estimate rests on poorly explored actions: shown, never picked as best."""
        return self.support is not None and self.support.flagged

    @property
    def events_per_second(self) -> float | None:
        return self.value.n / self.seconds if self.seconds else None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "args": self.args, "description": self.description,
                "headline": self.headline, "estimates": {k: e.to_json() for k, e in self.estimates.items()},
                "seconds": self.seconds, "events_per_second": self.events_per_second,
                "curve": self.curve.to_json() if self.curve else None,
                "support": self.support.to_json() if self.support else None, "flagged": self.flagged,
                **({"slots": [{k: e.to_json() for k, e in slot.items()} for slot in self.slots]}
                   if self.slots is not None else {}),
                **({"slot_support": [s.to_json() for s in self.slot_support]} if self.slot_support else {})}


@dataclass(frozen=True)
class OfferValue:
    """Always serving ``offer``, on the ``events`` where it was a candidate."""

    offer: str
    events: int
    served: int            # how often the log served it
    estimates: dict[str, Estimate]
    support: Support | None = None

    @property
    def flagged(self) -> bool:
        return self.support is not None and self.support.flagged

    def to_json(self) -> dict[str, Any]:
        return {"offer": self.offer, "events": self.events, "served": self.served,
                "estimates": {k: e.to_json() for k, e in self.estimates.items()},
                "support": self.support.to_json() if self.support else None, "flagged": self.flagged}


@dataclass(frozen=True)
class Calibration:
    """The reward model on the served actions: predicted against observed reward, in
    ``CALIBRATION_BINS`` bins of equal counts by prediction. Every prediction is
    progressive (made before the model learned that event), so this is out-of-sample."""

    events: int
    predicted: float                 # mean prediction for the served action
    observed: float                  # mean observed reward
    bins: list[dict[str, float]]     # per bin: events, predicted, observed, lower, upper (normal CI of observed)

    def to_json(self) -> dict[str, Any]:
        return plain({"events": self.events, "predicted": self.predicted, "observed": self.observed,
                      "bins": self.bins})


@dataclass(frozen=True)
class PerEvent:
    """``evaluate(..., per_event=True)``: per scored event (in log order, skip_learn ones
    left out) the served action, its reward, logged probability and reward-model
    prediction, each candidate's target probability of it (by name), and the event's id
    and ``_tag`` (the result's ``event_ids`` and ``tags``, the same lists). Kept only when
    asked: n floats per candidate. As a DataFrame: ``replay.frames.to_frame(result)``."""

    chosen: np.ndarray
    rewards: np.ndarray
    logged_p: np.ndarray
    reward_hat: np.ndarray
    target_p: dict[str, np.ndarray]
    event_ids: list[str] = field(default_factory=list)
    tags: list[str | None] = field(default_factory=list)   # VW's _tag, None where absent


@dataclass(frozen=True)
class EvaluationResult:
    source: str
    events: int                      # events scored (skip_learn ones are not)
    skipped: int                     # skip_learn events
    report: ValidationReport         # defective events the readers skipped
    alpha: float
    ci: str
    reward_model: str
    candidates: list[PolicyResult]
    baselines: list[PolicyResult]
    offers: list[OfferValue]         # best first, by DR
    workers: int
    seconds: float
    slot_events: list[int] | None = None   # multi-slot logs: scored events with a slot s (index s - 1)
    calibration: Calibration | None = None   # the reward model, predicted vs observed
    support_rule: SupportRule = DEFAULT_RULE
    propensity_floor: float = 0.0    # the floor applied to the candidates' PMFs (not the baselines')
    propensity_floor_source: str = "given"   # where it came from: the checkpoint, an option, the default
    # per scored event, in the order of every policy's ``terms`` and ``target``, to join results
    # back: kept only by evaluate(..., per_event=True) (about 100 bytes an event), else empty
    event_ids: list[str] = field(default_factory=list, repr=False, compare=False)
    tags: list[str | None] = field(default_factory=list, repr=False, compare=False)   # VW's _tag (None: absent)
    represented: float | None = None   # Σ 1/(1 − pdrop) over the scored events (None: no pdrop in the log)
    per_event: PerEvent | None = None        # evaluate(..., per_event=True) on a single-slot log only

    @property
    def slates(self) -> bool:
        """A multi-slot (CCB) evaluation: values are the slate's (the sum over slots)."""
        return self.slot_events is not None

    @property
    def best(self) -> PolicyResult | None:
        """The candidate with the highest DR lower bound among those not flagged for poor
        support: the safest bet to deploy. None when every candidate is flagged."""
        order = [c for c in ranked(self.candidates) if not c.flagged]
        return order[0] if order else None

    def per_event_terms(self) -> dict[str, list[Any]]:
        """Columns, one row per scored event in log order: ``event_id``, ``tag`` (VW's
        ``_tag``), then each policy's per-event headline term (``<name>``: DR terms, the
        logged reward for the logging policy; linearised with pdrop, so each column's
        mean is the policy's value). For a data frame or a table: join on event_id. Needs
        the ids, which only ``evaluate(..., per_event=True)`` keeps (else ValueError)."""
        if len(self.event_ids) != self.events:
            raise ValueError("this result has no event ids: evaluate(..., per_event=True) keeps them")
        columns: dict[str, list[Any]] = {"event_id": list(self.event_ids), "tag": list(self.tags)}
        for policy in [*self.candidates, *self.baselines]:
            if policy.terms is not None and policy.terms.size == len(self.event_ids):
                columns[policy.name] = policy.terms.tolist()
        return columns

    def baseline(self, name: str) -> PolicyResult | None:
        return next((b for b in self.baselines if b.name == name or b.name.startswith(name + " (")), None)

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {"source": self.source, "events": self.events, "skipped_learn": self.skipped,
                "validation": self.report.to_json(), "alpha": self.alpha, "ci": self.ci,
                "reward_model": self.reward_model, "best": best.name if best else None,
                "candidates": [c.to_json() for c in self.candidates],
                "baselines": [b.to_json() for b in self.baselines],
                "offers": [o.to_json() for o in self.offers], "workers": self.workers, "seconds": self.seconds,
                "calibration": self.calibration.to_json() if self.calibration else None,
                "support_rule": {"threshold": self.support_rule.threshold, "max_share": self.support_rule.max_share,
                                 "min_ess": self.support_rule.min_ess},
                "propensity_floor": self.propensity_floor, "propensity_floor_source": self.propensity_floor_source,
                **({"represented": self.represented} if self.represented is not None else {}),
                **({"slot_events": self.slot_events} if self.slot_events is not None else {})}


def running_curve(terms: np.ndarray, alpha: float, points: int = CURVE_POINTS,
                  sample_weight: np.ndarray | None = None) -> Curve:
    """The running mean of per-event terms with a normal band; with ``sample_weight`` s
    (pdrop) the running Hájek mean Σs·t/Σs and its delta-method band (``replay.weighting``)."""
    n = terms.size
    at = np.unique(np.linspace(1, n, min(points, n)).round().astype(np.int64))
    if sample_weight is not None:
        s = sample_weight
        weight, total = np.cumsum(s)[at - 1], np.cumsum(s * terms)[at - 1]
        s2, s2t, s2tt = (np.cumsum(s * s * x)[at - 1] for x in (1.0, terms, terms * terms))
        mean = total / weight
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = np.maximum(s2tt - 2.0 * mean * s2t + mean * mean * s2, 0.0)
            half = z_value(alpha) * np.where(at > 1, np.sqrt(spread * at / (weight * weight * (at - 1))), np.nan)
        return Curve(at.tolist(), mean.tolist(), (mean - half).tolist(), (mean + half).tolist())
    total, squares = np.cumsum(terms)[at - 1], np.cumsum(terms * terms)[at - 1]
    mean = total / at
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(at > 1, (squares - at * mean * mean) / (at - 1), np.nan)
        half = z_value(alpha) * np.sqrt(np.maximum(variance, 0.0) / at)
    return Curve(at.tolist(), mean.tolist(), (mean - half).tolist(), (mean + half).tolist())


def ranked(results: Sequence[PolicyResult]) -> list[PolicyResult]:
    """Best first by the headline's lower bound (then its value): a noisy estimate
    does not win on luck alone. Estimates flagged for poor support come after every
    unflagged one, whatever their bounds: they cannot be trusted to be ranked."""
    def key(result: PolicyResult) -> tuple[bool, float, float]:
        value = result.value
        return (not result.flagged, value.lower if math.isfinite(value.lower) else -math.inf,
                value.value if math.isfinite(value.value) else -math.inf)
    return sorted(results, key=key, reverse=True)


def ranked_offers(offers: Sequence[OfferValue]) -> list[OfferValue]:
    """The single offers as ``ranked`` orders policies: unflagged first, by DR lower bound."""
    def key(offer: OfferValue) -> tuple[bool, float, float]:
        value = offer.estimates["dr"]
        return (not offer.flagged, value.lower if math.isfinite(value.lower) else -math.inf,
                value.value if math.isfinite(value.value) else -math.inf)
    return sorted(offers, key=key, reverse=True)


def calibration(pairs: tuple[np.ndarray, np.ndarray], bins: int = CALIBRATION_BINS,
                alpha: float = 0.05) -> Calibration:
    """``Calibration`` of (predictions, observed rewards), bins of equal counts by prediction."""
    predicted, observed = (np.asarray(a, dtype=float) for a in pairs)
    order = np.argsort(predicted, kind="stable")
    rows = []
    for part in np.array_split(order, min(bins, predicted.size)):
        if part.size == 0:
            continue
        seen = observed[part]
        lower, upper = normal_ci(seen, alpha) if part.size > 1 else (math.nan, math.nan)
        rows.append({"events": int(part.size), "predicted": float(predicted[part].mean()),
                     "observed": float(seen.mean()), "lower": lower, "upper": upper})
    return Calibration(int(predicted.size), float(predicted.mean()), float(observed.mean()), rows)


def logging_policy_parts(names: Sequence[str], codes: np.ndarray, rewards: np.ndarray, alpha: float, ci: str,
                         what: str = "reward", sample_weight: np.ndarray | None = None) -> list[PolicyResult]:
    """When the log holds several logging policies (model, control): each one's own mean
    logged ``what``, on the events it served."""
    if len([name for name in names if name]) <= 1:
        return []
    results = []
    for code, label in enumerate(names):
        if label:
            served = rewards[codes == code]
            weights = None if sample_weight is None else sample_weight[codes == code]
            results.append(PolicyResult(
                name=f"logging policy ({label})", kind="baseline", headline="on_policy",
                estimates={"on_policy": mean_estimate(served, "on_policy", alpha, ci, sample_weight=weights)},
                description=f"mean logged {what} of the {served.size:,} events the {label} policy served"))
    return results


def mean_estimate(terms: np.ndarray, method: str, alpha: float, ci: str,
                  bounds: tuple[float, float] | None = None, sample_weight: np.ndarray | None = None) -> Estimate:
    """The mean of per-event terms with its interval: an on-policy value, or a paired
    difference between two policies' DR terms on the same events. The finite-sample
    kinds ("bernstein", "cs") need the terms' ``bounds``; without them the interval is
    normal (and ``ci`` says so). ``sample_weight`` (pdrop): the Hájek mean, its interval
    on the linearised terms within the widened bounds (``replay.weighting``)."""
    terms = np.asarray(terms, dtype=float)
    s = check_sample_weight(sample_weight, terms.size)
    value = float(terms.mean()) if s is None else float(s @ terms) / float(s.sum())
    terms = hajek_terms(terms, s)
    if bounds is not None:
        bounds = widened(bounds, s)
    if ci in ("bernstein", "cs") and bounds is None:
        ci = "normal"
    if ci == "bootstrap":
        lower, upper = bootstrap_ci(terms, alpha, rng=SEED)
    elif ci == "bernstein":
        lower, upper = bernstein_ci(terms, alpha, bounds=bounds)
    elif ci == "cs":
        lower, upper = bounded_interval(terms, bounds, alpha)
    else:
        lower, upper = normal_ci(terms, alpha)
    params: dict[str, Any] = {"n_boot": N_BOOT} if ci == "bootstrap" else {}
    if s is not None:
        params["represented"] = represented(s, terms.size)
    return Estimate(value=value, lower=lower, upper=upper, alpha=alpha, method=method, ci=ci,
                    n=terms.size, se=standard_error(terms), ess=None, max_weight=None, matched=None, params=params)
