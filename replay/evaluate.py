"""Counterfactual evaluation: what would candidate VW policies have earned on the logged
traffic, next to the logging policy, uniform random and the best single offer?

Each candidate (VW arguments for ``--cb_explore_adf``) is replayed by progressive
validation over the log in log order: its PMF for an event is what it would have served
having learned from every earlier event. The result is the value of *deploying that
learner from scratch* on this traffic, exploration and learning curve included. A
reward model (``--cb_adf --cb_type mtr``, the log's shared×action interactions), also
trained progressively, gives DM and DR; every estimator of ``replay.estimators`` is
reported, the headline is DR. The result types and the ranking: ``replay.results``.

One process per pass (``workers``, all cores by default; one process for a log under
8 MiB); each streams the log itself.
Memory in the parent: the reward model's predictions and the logged PMFs as n×K
float32 (views of the passes' flat arrays when every event has K actions), the candidate
being estimated as n×K float64, the estimators' n×K temporaries, plus n floats per
candidate (docs/replay.md, "Cost: time and memory"; bench/replay_memory.py measures it).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from replay.candidates import (
    EvaluationError,
    LogFacts,
    Pass,
    PassResult,
    PolicyArgsError,
    check_args,
    init_worker,
    log_namespaces,
    pad_to_mask,
    policy_args,
    reward_model_args,
    run_pass,
)
from replay.estimators import Estimate, estimate_all
from replay.finite import FINITE_KINDS, finite_estimates, weight_limits
from replay.intervals import check_alpha
from replay.logs import log_directory
from replay.weighting import check_sample_weight, hajek_terms
from replay.results import (  # noqa: F401 (re-exported: replay.evaluate is where callers import them from)
    CURVE_POINTS,
    SEED,
    Curve,
    EvaluationResult,
    OfferValue,
    PerEvent,
    PolicyResult,
    logging_policy_parts,
    calibration,
    mean_estimate,
    ranked,
    ranked_offers,
    running_curve,
)
from replay.slate_estimates import SlateLog, slate_baselines, slate_candidate
from replay.slate_passes import SlateFacts
from replay.support import DEFAULT_RULE, Support, SupportRule, support

__all__ = ["CI_KINDS", "Curve", "EvaluationError", "EvaluationResult", "OfferValue", "PolicyArgsError",
           "PolicyResult", "Progress", "evaluate", "mean_estimate", "ranked", "running_curve"]

Progress = Callable[[float, int], None]
"""Called now and then with (share of all passes' reading done, events processed over all passes)."""
CI_KINDS = ("normal", "bootstrap", "bernstein", "cs")
DEFAULT_CI = "cs"        # docs/replay.md, "Intervals that hold": chosen by measured coverage on the simulator
MIN_OFFER_SHARE = 0.01   # the best single offer is chosen among offers present in >= 1% of events
SMALL_LOG = 8 << 20      # below (about 12,000 service events), workers=None runs in one process


def evaluate(source: str | Path | Any, candidates: Sequence[str], *, alpha: float = 0.05, ci: str = DEFAULT_CI,
             baselines: bool = True, workers: int | None = None, progress: Progress | None = None,
             format: str = "auto", reward_model: str | None = None, slates: bool | None = None,
             support_rule: SupportRule = DEFAULT_RULE, keep_targets: bool = False,
             propensity_floor: float = 0.0, per_event: bool = False) -> EvaluationResult:
    """Estimate each candidate's value on the log at ``source`` (any ``read_logs`` source,
    or a pandas DataFrame with the export table's columns: ``replay.frames``; its bad
    rows are skipped and counted in the result's ``report``).

    ``candidates``: VW arguments for ``--cb_explore_adf`` (added when missing, with
    ``--quiet``), e.g. ``"--epsilon 0.05 --interactions CO -l 0.5"``. ``reward_model``:
    VW ``--cb_adf`` arguments replacing the default. Raises ``EvaluationError`` (or its
    ``PolicyArgsError``) with one line for bad arguments and unreadable or empty logs.

    ``slates``: evaluate a multi-slot (CCB) log (``replay.slate_estimates``): candidates
    become ``--ccb_explore_adf`` learners, values are per slot and for the slate. None
    (the default): when some event among the log's first 10,000 is multi-slot.

    ``ci``: "normal", "bootstrap", or the finite-sample "bernstein" and "cs" (the betting
    confidence sequence, ``replay.finite``) for IPS and DR. ``support_rule``: when an
    estimate is flagged as resting on poorly explored actions (``replay.support``); a
    flagged candidate or offer is never ``best``. ``keep_targets``: keep each policy's
    per-event target PMFs (n×K, ``PolicyResult.target``), e.g. for
    ``simulator.log_truth``.

    ``propensity_floor``: each candidate's PMFs floored as the service floors its own
    (``policies.exploration.apply_floor``), so that candidates compare with a deployed
    policy that had one (``replay.deployed``); the baselines are left as they are.

    ``per_event``: keep each scored event's id and ``_tag`` (``result.event_ids``,
    ``result.tags``, ``result.per_event_terms()``; about 100 bytes an event, so empty
    lists unless asked) and, on a single-slot log, the served action, its reward, logged
    probability and reward-model prediction and each candidate's target probability of
    it (``result.per_event``; n floats per candidate; None on a multi-slot log, whose
    values are per slot), e.g. as a DataFrame: ``replay.frames.to_frame(result)``."""
    if type(source).__name__ == "DataFrame":
        from replay.frames import evaluate_frame

        return evaluate_frame(source, candidates, alpha=alpha, ci=ci, baselines=baselines, workers=workers,
                               progress=progress, reward_model=reward_model, slates=slates,
                               support_rule=support_rule, keep_targets=keep_targets,
                               propensity_floor=propensity_floor, per_event=per_event)
    started = time.perf_counter()
    source = str(source)
    try:
        alpha = check_alpha(alpha)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    if ci not in CI_KINDS:
        raise EvaluationError(f"ci must be one of {', '.join(CI_KINDS)}, got {ci!r}")
    if not 0.0 <= propensity_floor <= 1.0:
        raise EvaluationError(f"propensity_floor must be within [0, 1], got {propensity_floor!r}")
    if not candidates and not baselines:
        raise EvaluationError("nothing to evaluate: no candidate and no baselines")
    namespaces = log_namespaces(source, format)
    slates = namespaces.slates if slates is None else slates
    args = [policy_args(a, slates=slates) for a in candidates]
    names = _unique([" ".join(a.split()) or "(VW defaults)" for a in candidates])
    model = reward_model_args(namespaces.pairs)
    if reward_model is not None:
        model = reward_model if "--quiet" in reward_model.split() else f"{reward_model} --quiet"
        check_args(model, kind="reward model", shown=reward_model)
    jobs = [Pass(0, "reward", model, source, format, slates, ids=per_event)]
    jobs += [Pass(i + 1, "policy", a, source, format, slates, propensity_floor) for i, a in enumerate(args)]
    if workers is None and _bytes(source) < SMALL_LOG:
        workers = 1   # starting processes (about a second each) would cost more than it saves
    collected = _Collector(names, args, alpha, ci, support_rule, keep_targets, per_event)
    used = run_passes(jobs, workers, progress, collected)
    log = collected.log
    assert log is not None   # the reward pass ran, or run_passes raised
    if isinstance(log, SlateLog):
        offers, shown = [], slate_baselines(log, alpha, ci, support_rule) if baselines else []
    else:
        offers = _offer_values(log, alpha, ci, support_rule) if baselines else []
        shown = _baselines(log, offers, alpha, ci, support_rule, keep_targets) if baselines else []
    return EvaluationResult(
        source=source, events=log.n, skipped=log.facts.skipped, report=log.facts.report, alpha=alpha, ci=ci,
        reward_model=model, candidates=[collected.done[i] for i in range(len(args))], baselines=shown,
        offers=offers, workers=used, seconds=time.perf_counter() - started,
        slot_events=log.slot_events if isinstance(log, SlateLog) else None,
        calibration=calibration(log.calibration_pairs()), support_rule=support_rule,
        propensity_floor=float(propensity_floor), event_ids=log.facts.event_ids, tags=log.facts.tags,
        represented=log.represented,
        per_event=collected.per_event(log) if per_event and isinstance(log, _Log) else None)


class _Collector:
    """Estimates each candidate as its pass arrives, then keeps only the estimates: the
    flat PMFs are dropped. Passes that arrive before the reward model's wait for it."""

    def __init__(self, names: list[str], args: list[str], alpha: float, ci: str, rule: SupportRule,
                 keep: bool, keep_per_event: bool = False) -> None:
        self.names, self.args, self.alpha, self.ci, self.rule, self.keep = names, args, alpha, ci, rule, keep
        self.log: _Log | SlateLog | None = None
        self.waiting: list[PassResult] = []
        self.done: dict[int, PolicyResult] = {}
        self.keep_per_event = keep_per_event
        self.target_p: dict[int, np.ndarray] = {}   # per_event: each candidate's target probability of the served action

    def per_event(self, log: _Log) -> PerEvent:
        f = log.facts
        return PerEvent(chosen=f.chosen, rewards=f.rewards, logged_p=f.logged_p,
                        reward_hat=log.reward_hat[log.rows, f.chosen],
                        target_p={self.names[i]: self.target_p[i] for i in sorted(self.target_p)},
                        event_ids=f.event_ids, tags=f.tags)

    def __call__(self, result: PassResult) -> None:
        if result.facts is not None:
            slates = isinstance(result.facts, SlateFacts)
            self.log = (SlateLog if slates else _Log)(result.facts, result.values)
            waiting, self.waiting = self.waiting, []
            for early in waiting:
                self(early)
        elif self.log is None:
            self.waiting.append(result)
        else:
            i = result.index - 1
            score = slate_candidate if isinstance(self.log, SlateLog) else _candidate
            scored = score(self.names[i], self.args[i], result, self.log, self.alpha, self.ci, self.rule)
            if self.keep_per_event and isinstance(self.log, _Log) and scored.target is not None:
                self.target_p[i] = scored.target[self.log.rows, self.log.facts.chosen]
            self.done[i] = scored if self.keep else replace(scored, target=None)


# ----------------------------------------------------------------- running the passes


def run_passes(jobs: list[Pass], workers: int | None, progress: Progress | None,
               consume: Callable[[PassResult], None]) -> int:
    """Run the passes on ``workers`` processes (default: every core; never more than the
    passes), handing each result to ``consume`` as it arrives. Returns the worker count.
    One worker runs them in this process. "spawn" processes: forking a process with
    threads (a server, a test loop) can deadlock."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    last = [0.0]

    def tick(slots: Any, force: bool = False) -> None:
        now = time.monotonic()
        if progress is not None and (force or now - last[0] >= 0.1):
            last[0] = now
            progress(min(1.0, sum(slots[0::2]) / len(jobs)), int(sum(slots[1::2])))

    if workers == 1:
        slots: Any = [0.0] * (2 * len(jobs))
        init_worker(slots, lambda: tick(slots))
        try:
            for job in jobs:
                consume(run_pass(job))
        finally:
            init_worker(None)
        tick(slots, force=True)
        return 1
    context = multiprocessing.get_context("spawn")
    shared = context.Array("d", 2 * len(jobs), lock=False)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(shared,))
    ok = False
    try:
        pending = {pool.submit(run_pass, job) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                consume(future.result())
            tick(shared, force=not pending)
        ok = True
    except BrokenProcessPool:
        raise EvaluationError("a worker process died (out of memory, or killed): try fewer --workers") from None
    finally:
        if not ok:   # an error or an interrupt: stop the other passes now, not when they end
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
    return workers


# ----------------------------------------------------------------- estimation


class _Log:
    """The logged facts with the reward model's predictions as n×K, padded with zeros."""

    def __init__(self, facts: LogFacts, reward_hat: np.ndarray) -> None:
        if facts.rewards.size == 0:
            raise EvaluationError("no events to evaluate: every good event is skip_learn"
                                  if facts.skipped else "no events to evaluate")
        if not np.all(np.isfinite(reward_hat)):
            raise EvaluationError("the reward model's predictions are not finite (it diverged): try a smaller "
                                  "learning rate in its arguments")
        self.facts, self.n = facts, facts.rewards.size
        self.mask = np.arange(int(facts.counts.max())) < facts.counts[:, None]
        self.reward_hat_flat = reward_hat
        self.reward_hat = self.pad(reward_hat)
        self.logged = self.pad(facts.logged_pmf)
        self.rows = np.arange(self.n)
        self.bounds = (float(facts.rewards.min()), float(facts.rewards.max()))
        # 1/(1 − pdrop) per event, None without pdrop (every estimate then the plain one)
        self.s = check_sample_weight(facts.sample_weight, self.n) if facts.sample_weight.size else None

    @property
    def represented(self) -> float | None:
        """Σ 1/(1 − pdrop) over the scored events; None without pdrop."""
        return None if self.s is None else float(self.s.sum())

    def weight(self, rows: np.ndarray) -> np.ndarray | None:
        """The sample weights of some events (None without pdrop)."""
        return None if self.s is None else self.s[rows]

    def pad(self, flat: np.ndarray) -> np.ndarray:
        return pad_to_mask(flat, self.mask, copy=False)

    def estimates(self, target: np.ndarray, alpha: float, ci: str,
                  rule: SupportRule = DEFAULT_RULE) -> tuple[dict[str, Estimate], np.ndarray, Support]:
        """estimate_all (IPS's and DR's intervals finite-sample for "bernstein" and "cs"),
        the per-event DR terms (for the running curve and paired differences; their mean
        is the DR value: with pdrop, the linearised terms) and the target's support in the log."""
        f = self.facts
        estimates = estimate_all(f.rewards, f.logged_p, f.chosen, target, self.reward_hat,
                                 alpha=alpha, ci="normal" if ci in FINITE_KINDS else ci, rng=SEED,
                                 sample_weight=self.s)
        weights = target[self.rows, f.chosen] / f.logged_p
        terms = (target * self.reward_hat).sum(axis=1) + weights * (f.rewards - self.reward_hat[self.rows, f.chosen])
        if ci in FINITE_KINDS:
            limits = weight_limits(target, self.logged, self.mask, f.chosen, f.logged_p, self.reward_hat, self.bounds)
            estimates = finite_estimates(
                estimates, ci, alpha, rewards=f.rewards, weights_logged=weights, dr_terms=terms, weights=None,
                target=target, reward_hat=self.reward_hat, mask=self.mask, bounds=self.bounds,
                sample_weight=self.s, limits=limits)
        return estimates, terms, support(target, self.logged, self.mask, rule, sample_weight=self.s)

    def curve_and_terms(self, terms: np.ndarray, alpha: float) -> dict[str, Any]:
        """A policy's running curve and its per-event terms (linearised with pdrop, so that
        paired differences and the per-event columns are Hájek too)."""
        return {"curve": running_curve(terms, alpha, sample_weight=self.s), "terms": hajek_terms(terms, self.s)}

    def calibration_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The reward model's prediction for each served action, and the reward observed."""
        return self.reward_hat[self.rows, self.facts.chosen], self.facts.rewards


def _candidate(name: str, args: str, result: PassResult, log: _Log, alpha: float, ci: str,
               rule: SupportRule = DEFAULT_RULE) -> PolicyResult:
    target = log.pad(result.values).astype(np.float64)   # (a copy: the flat values may be its view)
    target /= target.sum(axis=1, keepdims=True)   # VW's float32 scores: exact sums for the estimators
    estimates, terms, found = log.estimates(target, alpha, ci, rule)
    return PolicyResult(name=name, kind="candidate", estimates=estimates, args=args, seconds=result.seconds,
                        description="progressive validation: predict each event, then learn from it",
                        **log.curve_and_terms(terms, alpha), support=found, target=target)


def _baselines(log: _Log, offers: list[OfferValue], alpha: float, ci: str, rule: SupportRule = DEFAULT_RULE,
               keep: bool = False) -> list[PolicyResult]:
    f = log.facts
    logged = mean_estimate(f.rewards, "on_policy", alpha, ci, bounds=log.bounds, sample_weight=log.s)
    results = [PolicyResult(name="logging policy", kind="baseline", estimates={"on_policy": logged},
                            headline="on_policy", description="what the log earned: mean logged reward (on-policy)",
                            **log.curve_and_terms(f.rewards, alpha))]
    results += logging_policy_parts(f.policy_names, f.policy_codes, f.rewards, alpha, ci, "reward", log.s)
    uniform = log.mask / f.counts[:, None]
    estimates, terms, found = log.estimates(uniform, alpha, ci, rule)
    results.append(PolicyResult(name="uniform random", kind="baseline", estimates=estimates,
                                description="each event's candidates alike", **log.curve_and_terms(terms, alpha),
                                support=found, target=uniform if keep else None))
    floor = max(2, math.ceil(MIN_OFFER_SHARE * log.n))
    eligible = [o for o in offers if o.events >= floor and not (o.support and o.support.flagged)]
    if eligible:
        best = ranked_offers(eligible)[0]
        results.append(PolicyResult(
            name=f"best single offer ({best.offer})", kind="baseline", estimates=best.estimates,
            support=best.support,
            description=f"always serve {best.offer}, on the {best.events:,} events ({best.events / log.n:.0%}) "
                        f"where it was a candidate; the best by DR lower bound of the offers present in >= "
                        f"{MIN_OFFER_SHARE:.0%} of events and not flagged for poor support"))
    return results


def _offer_values(log: _Log, alpha: float, ci: str, rule: SupportRule = DEFAULT_RULE) -> list[OfferValue]:
    """Per offer, the deterministic policy that serves it, on the events where it is a
    candidate. Written as a two-column problem (the offer; the logged action) so that
    estimate_all applies as is: target [1, 0], reward model [r̂(offer), r̂(logged)]."""
    f = log.facts
    event_of = np.repeat(np.arange(log.n, dtype=np.int32), f.counts)
    start = np.cumsum(f.counts) - f.counts   # each event's first place in the flat arrays
    logged_hat = log.reward_hat[log.rows, f.chosen]
    values = []
    for code in range(len(f.offer_names)):
        # one offer at a time (never a sort of all n×K places): its places, the first in each event
        places = np.flatnonzero(f.offer_codes == code)
        e = event_of[places]
        first_in_event = np.empty(e.size, dtype=bool)
        first_in_event[:1] = True
        np.not_equal(e[1:], e[:-1], out=first_in_event[1:])   # (places are in event order)
        places, e = places[first_in_event], e[first_in_event]
        pos = places - start[e]
        served = f.chosen[e] == pos
        target = np.zeros((e.size, 2))
        target[:, 0] = 1.0
        model = np.column_stack([log.reward_hat_flat[places], logged_hat[e]])
        actions = np.where(served, 0, 1)
        estimates = estimate_all(f.rewards[e], f.logged_p[e], actions, target, model,
                                 alpha=alpha, ci="normal" if ci in FINITE_KINDS else ci, rng=SEED,
                                 sample_weight=log.weight(e))
        # the two columns' logged chances: the offer's, and the served action's when it is another
        mu = np.column_stack([f.logged_pmf[places], np.where(served, 1.0, f.logged_p[e])])
        both = np.ones((e.size, 2), dtype=bool)
        if ci in FINITE_KINDS:
            weights = target[np.arange(e.size), actions] / f.logged_p[e]
            terms = model[:, 0] + weights * (f.rewards[e] - model[np.arange(e.size), actions])
            estimates = finite_estimates(
                estimates, ci, alpha, rewards=f.rewards[e], weights_logged=weights, dr_terms=terms, weights=None,
                target=target, reward_hat=model, mask=both, bounds=log.bounds,
                sample_weight=check_sample_weight(log.weight(e), e.size),
                limits=weight_limits(target, mu, both, actions, f.logged_p[e], model, log.bounds))
        found = support(target, mu, both, rule, sample_weight=log.weight(e))
        values.append(OfferValue(f.offer_names[code], int(e.size), int(served.sum()), estimates, found))
    return ranked_offers(values)


def _bytes(source: str) -> int:
    path = log_directory(source)
    try:
        files = [p for p in path.iterdir() if p.is_file()] if path.is_dir() else [path]
        return sum(p.stat().st_size for p in files)
    except OSError:
        return SMALL_LOG


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out

