"""Off-policy estimates on a multi-slot (VW CCB) log: per slot and for the whole slate.

The logging policy chose a slate slot by slot: slot s's action a_s with probability
μ_s(a_s | x, a_1..a_{s-1}), from the actions not shown yet. A target policy π that
chooses the same way has the slate probability Π_s π_s(a_s | x, a_<s) (the conditional,
CCB factorisation), so its expected reward in slot s is estimated without bias by
weighting slot s's reward with the *cumulative* ratio

    W_s = Π_{t≤s} π_t(a_t | x, a_<t) / μ_t(a_t | x, a_<t),

where π_t is the target's PMF for slot t *given the logged earlier slots* (what the
passes of ``replay.slate_passes`` compute). The slate's value is the sum over slots.
Estimators, all from ``replay.estimators`` on the right weights:

- ``ips`` and ``snips``: slot s with weights W_s (``ips(r_s, Πμ, Ππ)``); the slate's
  IPS is the mean of Σ_s W_s·r_s per event, its SNIPS the sum of the slots' SNIPS
  (normal interval by the delta method on the per-event sum of their influence terms).
- ``dr``: per-decision doubly robust, slot s's term W_{s-1}·(Σ_a π_s(a)·r̂_s(a) +
  w_s·(r_s − r̂_s(a_s))), which is ``dr`` on rewards and predictions scaled by W_{s-1}.
  The headline.
- ``ips_independent``: slot s weighted by its own ratio w_s only. It assumes the slots
  are independent (slot s's reward and availability unaffected by what the target would
  have shown before); biased when they are not. Reported for comparison, never ranked.

Weights multiply over slots, so deep slots of a target far from the logging policy get
few effective samples: look at ``ess`` per slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from replay.candidates import (
    EvaluationError,
    Pass,
    PassResult,
    log_namespaces,
    pad_to_mask,
    reward_model_args,
    run_pass,
)
from replay.estimators import Estimate, dr, ips, snips
from replay.finite import FINITE_KINDS
from replay.inputs import kish_ess
from replay.intervals import normal_interval, standard_error
from replay.results import SEED, PolicyResult, logging_policy_parts, mean_estimate, running_curve
from replay.slate_intervals import SlateTerms, slate_finite
from replay.slate_passes import SlateFacts
from replay.support import DEFAULT_RULE, Support, SupportRule, combine, support
from replay.weighting import check_sample_weight, hajek_terms

INDEPENDENT = "ips_independent"
INDEPENDENT_NOTE = "weights each slot by its own ratio only: assumes the slots are independent"


@dataclass(frozen=True)
class SlateEstimates:
    slate: dict[str, Estimate]          # the slate's value (sum over slots)
    slots: list[dict[str, Estimate]]    # per slot position
    terms: np.ndarray                   # per event: the slate's DR terms (their mean is its DR value)
    support: Support | None = None      # the worst slot's (replay.support.combine)
    slot_support: list[Support] | None = None   # per slot position


class SlateLog:
    """The logged facts of a multi-slot log, with the reward model's predictions per
    (event, slot) as an m×A matrix (A: the most actions available in one slot)."""

    def __init__(self, facts: SlateFacts, reward_hat: np.ndarray) -> None:
        if facts.events == 0:
            raise EvaluationError("no events to evaluate: every good event is skip_learn"
                                  if facts.skipped else "no events to evaluate")
        if not np.all(np.isfinite(reward_hat)):
            raise EvaluationError("the reward model's predictions are not finite (it diverged): try a smaller "
                                  "learning rate in its arguments")
        self.facts, self.n, self.m = facts, facts.events, facts.rewards.size
        self.mask = np.arange(int(facts.counts.max())) < facts.counts[:, None]
        self.reward_hat = self.pad(reward_hat)
        self.rows = np.arange(self.m)
        self.by_slot = [np.flatnonzero(facts.slot == s) for s in range(1, int(facts.slot.max()) + 1)]
        self.slot_events = [int(rows.size) for rows in self.by_slot]
        self.event_rewards = np.bincount(facts.event_of, facts.rewards, self.n)
        self.logged = self.pad(facts.logged_pmf)
        # 1/(1 − pdrop) per event and per (event, slot) row; None without pdrop
        self.s = check_sample_weight(facts.sample_weight, self.n) if facts.sample_weight.size else None
        self.s_rows = None if self.s is None else self.s[facts.event_of]

    @property
    def represented(self) -> float | None:
        """Σ 1/(1 − pdrop) over the scored events; None without pdrop."""
        return None if self.s is None else float(self.s.sum())

    def row_weight(self, rows: np.ndarray) -> np.ndarray | None:
        return None if self.s_rows is None else self.s_rows[rows]

    def curve_and_terms(self, terms: np.ndarray, alpha: float) -> dict[str, Any]:
        """A policy's running curve and per-event terms (linearised with pdrop)."""
        return {"curve": running_curve(terms, alpha, sample_weight=self.s), "terms": hajek_terms(terms, self.s)}

    def calibration_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The reward model's prediction for each (event, slot)'s shown action, and its reward."""
        return self.reward_hat[self.rows, self.facts.chosen], self.facts.rewards

    def pad(self, flat: np.ndarray) -> np.ndarray:
        return pad_to_mask(flat, self.mask)

    def cumulative(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per (event, slot) row: the product of ``values`` over the event's slots before
        it, and up to and including it."""
        before, upto, current = np.empty(self.m), np.empty(self.m), np.ones(self.n)
        for rows in self.by_slot:   # slot 1, 2, ...: an event's slot s comes after its slot s - 1
            events = self.facts.event_of[rows]
            before[rows] = current[events]
            current[events] = current[events] * values[rows]
            upto[rows] = current[events]
        return before, upto

    def estimates(self, target: np.ndarray, alpha: float, ci: str, rule: SupportRule = DEFAULT_RULE) -> SlateEstimates:
        """Per-slot and slate estimates of the target whose per-slot PMFs (given the
        logged earlier slots) are the rows of ``target`` (m×A, over available actions)."""
        f, n = self.facts, self.n
        r, mu, shown, hat = f.rewards, f.logged_p, f.chosen, self.reward_hat
        pi = target[self.rows, shown]
        w = pi / mu
        w_before, w_upto = self.cumulative(w)
        _, mu_upto = self.cumulative(mu)
        _, pi_upto = self.cumulative(pi)
        finite = ci if ci in FINITE_KINDS else None
        ci = "normal" if finite else ci
        options = {"alpha": alpha, "ci": ci, "rng": SEED}
        slots = []
        parts = [support(target[rows], self.logged[rows], self.mask[rows], rule, before=w_before[rows],
                         sample_weight=self.row_weight(rows)) for rows in self.by_slot]
        for rows in self.by_slot:
            scale, s = w_before[rows], self.row_weight(rows)
            options["sample_weight"] = s
            doubly = dr(r[rows] * scale, mu[rows], shown[rows], target[rows], hat[rows] * scale[:, None], **options)
            weights = w_upto[rows] if s is None else w_upto[rows] * s
            alone = ips(r[rows], mu[rows], pi[rows], **options)
            slots.append({
                "ips": ips(r[rows], mu_upto[rows], pi_upto[rows], **options),
                "snips": snips(r[rows], mu_upto[rows], pi_upto[rows], **options),
                "dr": replace(doubly, ess=kish_ess(weights), max_weight=float(weights.max()),
                              matched=float(np.mean(weights > 0))),
                INDEPENDENT: replace(alone, params={**alone.params, "note": INDEPENDENT_NOTE}),
            })
        per_event = lambda values: np.bincount(f.event_of, values, n)
        dr_rows = w_before * (target * hat).sum(axis=1) + w_upto * (r - hat[self.rows, shown])
        dr_terms = per_event(dr_rows)
        unmatched = per_event((w_upto <= 0).astype(float))
        diagnostics = {"ess": min(s["ips"].ess for s in slots), "max_weight": float(w_upto.max()),
                       "matched": float(np.mean(unmatched == 0))}
        s = self.s
        slate = {
            "ips": replace(mean_estimate(per_event(w_upto * r), "ips", alpha, ci, sample_weight=s), **diagnostics),
            "snips": self._snips(slots, w_upto if s is None else w_upto * self.s_rows, r, alpha, diagnostics),
            "dr": replace(mean_estimate(dr_terms, "dr", alpha, ci, sample_weight=s), **diagnostics),
            INDEPENDENT: replace(mean_estimate(per_event(w * r), INDEPENDENT, alpha, ci, sample_weight=s),
                                 params={"note": INDEPENDENT_NOTE}),
        }
        if finite:
            slots, slate = slate_finite(slots, slate, SlateTerms(
                rewards=r, w_before=w_before, w_upto=w_upto, dr_rows=dr_rows, target=target, reward_hat=hat,
                logged=self.logged, mask=self.mask, chosen=shown, logged_p=mu, event_of=f.event_of, events=n,
                by_slot=self.by_slot, cumulative=self.cumulative, sample_weight=self.s), finite, alpha)
        return SlateEstimates(slate, slots, dr_terms, combine(parts), parts)

    def _snips(self, slots: list[dict[str, Estimate]], weights: np.ndarray, r: np.ndarray, alpha: float,
               diagnostics: dict[str, float]) -> Estimate:
        """The sum of the slots' SNIPS; normal interval by the delta method (the per-event
        sum of each slot's influence terms), whatever ``ci``."""
        value = math.fsum(s["snips"].value for s in slots)
        influence = np.zeros(self.n)
        for rows, slot in zip(self.by_slot, slots):
            total = float(weights[rows].sum())
            if total > 0:
                np.add.at(influence, self.facts.event_of[rows], weights[rows] * (r[rows] - slot["snips"].value)
                          / (total / self.n))
        se = standard_error(influence) if math.isfinite(value) else math.nan
        lower, upper = normal_interval(value, se, alpha) if math.isfinite(se) else (math.nan, math.nan)
        return Estimate(value=value, lower=lower, upper=upper, alpha=alpha, method="snips", ci="normal", n=self.n,
                        se=se, params={"note": "sum of the slots' SNIPS, delta-method interval"}, **diagnostics)

    # ------------------------------------------------------------- targets

    def logged_target(self) -> np.ndarray:
        return self.pad(self.facts.logged_pmf)

    def uniform_target(self) -> np.ndarray:
        return self.mask / self.facts.counts[:, None]

    def priority_target(self) -> np.ndarray | None:
        """Each slot shows its highest-value available action (the first of equals);
        None when some event has no values (``_nb.values``)."""
        values = self.pad(self.facts.values)
        if np.isnan(values[self.mask]).any():
            return None
        values[~self.mask] = -np.inf
        target = np.zeros(self.mask.shape)
        target[self.rows, np.argmax(values, axis=1)] = 1.0
        return target


def slate_log(source: str, *, format: str = "auto", reward_model: str | None = None) -> SlateLog:
    """A multi-slot log's facts and reward model (the reward pass ``evaluate`` runs), for
    scoring targets of one's own with ``SlateLog.estimates`` (``simulator.slate_truth``)."""
    model = reward_model or reward_model_args(log_namespaces(source, format).pairs)
    result = run_pass(Pass(0, "reward", model, source, format, True))
    assert isinstance(result.facts, SlateFacts)
    return SlateLog(result.facts, result.values)


def slate_candidate(name: str, args: str, result: PassResult, log: SlateLog, alpha: float, ci: str,
                    rule: SupportRule = DEFAULT_RULE) -> PolicyResult:
    target = log.pad(result.values)
    target /= target.sum(axis=1, keepdims=True)   # VW's float32 scores: exact sums for the estimators
    found = log.estimates(target, alpha, ci, rule)
    return PolicyResult(name=name, kind="candidate", estimates=found.slate, args=args, seconds=result.seconds,
                        description="progressive validation, slot by slot given the logged earlier slots: "
                                    "predict each event, then learn from it",
                        **log.curve_and_terms(found.terms, alpha), slots=found.slots,
                        support=found.support, slot_support=found.slot_support, target=target)


def slate_baselines(log: SlateLog, alpha: float, ci: str, rule: SupportRule = DEFAULT_RULE) -> list[PolicyResult]:
    """The logging policy (on-policy, with its own PMFs replayed through the estimators:
    the IPS must equal the on-policy mean), per ``_nb.policy``, uniform and priority."""
    f = log.facts
    replayed = log.estimates(log.logged_target(), alpha, ci)
    observed = lambda values: (float(values.min()), float(values.max()))   # as the one-slot on-policy bounds
    on_policy = mean_estimate(log.event_rewards, "on_policy", alpha, ci, bounds=observed(log.event_rewards),
                              sample_weight=log.s)
    per_slot = [{"on_policy": mean_estimate(f.rewards[rows], "on_policy", alpha, ci, bounds=observed(f.rewards[rows]),
                                            sample_weight=log.row_weight(rows)),
                 "ips": replayed.slots[s]["ips"], "dr": replayed.slots[s]["dr"]} for s, rows in enumerate(log.by_slot)]
    results = [PolicyResult(
        name="logging policy", kind="baseline", headline="on_policy",
        estimates={"on_policy": on_policy, "ips": replayed.slate["ips"], "dr": replayed.slate["dr"]},
        description="what the log earned: mean logged slate reward (on-policy); ips and dr replay the logged "
                    "PMFs as the target (a check: ips equals the mean)",
        **log.curve_and_terms(log.event_rewards, alpha), slots=per_slot)]
    results += logging_policy_parts(f.policy_names, f.policy_codes, log.event_rewards, alpha, ci, "slate reward",
                                    log.s)
    targets = [("uniform random", log.uniform_target(), "each slot's available actions alike"),
               ("priority by value", log.priority_target(),
                "each slot shows the highest-value offer (_nb.values) not shown yet")]
    for name, target, description in targets:
        if target is None:
            continue
        found = log.estimates(target, alpha, ci, rule)
        results.append(PolicyResult(name=name, kind="baseline", estimates=found.slate, description=description,
                                    **log.curve_and_terms(found.terms, alpha), slots=found.slots,
                                    support=found.support, slot_support=found.slot_support))
    return results
