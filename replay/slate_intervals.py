"""Finite-sample intervals on a multi-slot (CCB) log: ``ci="cs"`` and ``ci="bernstein"``
for the per-slot and slate IPS and DR of ``replay.slate_estimates``, as ``replay.finite``
gives them on one-slot logs.

The rewards' range is the log's observed [min, max] over (event, slot) rows; for the
slate it is widened to contain 0 when events have different numbers of slots (a missing
slot counts as a slot of weight 1 and reward 0, ``replay.sequences.slate_ips_interval``).

- ``cs``: slot s's IPS interval is the betting confidence sequence of its rows with the
  cumulative weights W_s (E[W_s] = 1, no bound on W needed); the slate's, the sequence
  of the per-event sums. As on one-slot logs, DR's interval (per slot and for the
  slate) is the IPS terms' sequence: a confidence set for the value, DR's point kept.
- ``bernstein``: the terms need bounds known before the rewards. The largest weight the
  log could have produced in row (i, s) is b_{i,s} = max_a π_s(a)/μ_s(a) (``possible_weights``,
  the full logged PMF), and W_s ≤ B_s = Π_{t≤s} b_{i,t} along the logged earlier slots
  (the target's PMF is known only there). Slot s's IPS terms lie in
  [min(0, r_min)·max_i B_s, max(0, r_max)·max_i B_s]; its DR terms W_{s−1}·(DM + w·(r − r̂))
  in [min_i min(0, B_{s−1}·L_i), max_i max(0, B_{s−1}·U_i)] with [L_i, U_i] the one-slot
  row bounds (``replay.finite.dr_row_bounds``). The slate's terms (sums over slots, a
  missing slot adding 0) lie in the sums of the slots' bounds.

SNIPS and ``ips_independent`` keep their normal intervals (``ci`` says so, and
``params["interval"]`` why): SNIPS is a ratio, and ``ips_independent`` is biased whenever
the slots are not independent, so no interval can promise to cover the value.

With pdrop (``sample_weight``, per event): the sequences take the weights W·s/s̄, Bernstein
the linearised terms in the widened bounds, as on one-slot logs (``replay.weighting``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from replay.finite import dr_row_bounds, possible_weights
from replay.inputs import Estimate
from replay.intervals import bernstein_ci
from replay.sequences import ips_interval, slate_ips_interval
from replay.weighting import hajek_terms, widened

__all__ = ["NORMAL_ONLY", "SlateTerms", "slate_finite"]

NORMAL_ONLY = {"snips": "normal: SNIPS is a ratio of sums, no finite-sample interval here",
               "ips_independent": "normal: biased unless the slots are independent, no interval can promise coverage"}
CS_NOTE = "betting confidence sequence of the IPS terms"


@dataclass(frozen=True)
class SlateTerms:
    """What the slate intervals need, per (event, slot) row (m rows, A actions)."""

    rewards: np.ndarray       # (m,)
    w_before: np.ndarray      # (m,): W_{s−1}
    w_upto: np.ndarray        # (m,): W_s
    dr_rows: np.ndarray       # (m,): each row's DR term (their per-event sums are the slate's DR terms)
    target: np.ndarray        # (m, A)
    reward_hat: np.ndarray    # (m, A)
    logged: np.ndarray        # (m, A): the logged slot PMFs
    mask: np.ndarray          # (m, A): available actions
    chosen: np.ndarray        # (m,)
    logged_p: np.ndarray      # (m,)
    event_of: np.ndarray      # (m,)
    events: int               # n
    by_slot: list[np.ndarray]
    cumulative: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]   # SlateLog.cumulative
    sample_weight: np.ndarray | None = None   # (n,): 1/(1 − pdrop) per event (checked: None or not all 1)


def _bounds(rewards: np.ndarray, event_of: np.ndarray, events: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """The rows' reward range, and the slate's (with 0 when events' slot counts differ)."""
    low, high = float(rewards.min()), float(rewards.max())
    counts = np.bincount(event_of, minlength=events)
    if counts.min() != counts.max():
        return (low, high), (min(0.0, low), max(0.0, high))
    return (low, high), (low, high)


def _bernstein(terms: np.ndarray, bounds: tuple[float, float], alpha: float,
               s: np.ndarray | None = None) -> tuple[float, float]:
    """Bernstein with the a-priori bounds, widened to the observed terms (rounding); with
    sample weights ``s``, on the linearised terms in the widened bounds."""
    low, high = min(bounds[0], float(terms.min())), max(bounds[1], float(terms.max()))
    return bernstein_ci(hajek_terms(terms, s), alpha, bounds=widened((low, high), s))


def _set(estimate: Estimate, span: tuple[float, float], kind: str, /, **params: object) -> Estimate:
    return replace(estimate, lower=span[0], upper=span[1], ci=kind, params={**estimate.params, **params})


def _normal_only(found: dict[str, Estimate]) -> dict[str, Estimate]:
    return {k: replace(e, params={**e.params, "interval": NORMAL_ONLY[k]}) if k in NORMAL_ONLY else e
            for k, e in found.items()}


def slate_finite(slots: list[dict[str, Estimate]], slate: dict[str, Estimate], t: SlateTerms, kind: str,
                 alpha: float) -> tuple[list[dict[str, Estimate]], dict[str, Estimate]]:
    """``slots`` and ``slate`` with IPS's and DR's intervals replaced by ``kind``'s
    ("cs" or "bernstein"), the others noted as normal (module docstring)."""
    row_bounds, slate_bounds = _bounds(t.rewards, t.event_of, t.events)
    per_event = lambda values: np.bincount(t.event_of, values, t.events)
    ips_rows = t.w_upto * t.rewards
    s = t.sample_weight
    s_rows = None if s is None else s[t.event_of]
    sample_of = lambda rows: None if s_rows is None else s_rows[rows]
    out_slots: list[dict[str, Estimate]] = []
    if kind == "cs":
        for rows, found in zip(t.by_slot, slots):
            weights = t.w_upto[rows] if s_rows is None else t.w_upto[rows] * s_rows[rows] / s_rows[rows].mean()
            interval = ips_interval(weights, t.rewards[rows], row_bounds, alpha)
            note = {"bounds": list(row_bounds)}
            out_slots.append(_normal_only({**found, "ips": _set(found["ips"], interval, kind, **note),
                                           "dr": _set(found["dr"], interval, kind, **note, interval=CS_NOTE)}))
        weights = t.w_upto if s is None else t.w_upto * s_rows / s.mean()
        interval = slate_ips_interval(weights, t.rewards, t.event_of, t.events, slate_bounds, alpha)
        note = {"bounds": list(slate_bounds)}
        return out_slots, _normal_only({**slate, "ips": _set(slate["ips"], interval, kind, **note),
                                        "dr": _set(slate["dr"], interval, kind, **note, interval=CS_NOTE)})
    possible = possible_weights(t.target, t.logged, t.mask, t.chosen, t.logged_p)
    b_before, b_upto = t.cumulative(possible.max(axis=1))
    low_rows, high_rows = dr_row_bounds(possible, t.target, t.reward_hat, t.mask, row_bounds)
    ips_total, dr_total = [0.0, 0.0], [0.0, 0.0]
    for rows, found in zip(t.by_slot, slots):
        w_max = float(b_upto[rows].max())
        ips_bounds = (min(0.0, row_bounds[0]) * w_max, max(0.0, row_bounds[1]) * w_max)
        dr_bounds = (float(np.minimum(0.0, b_before[rows] * low_rows[rows]).min()),
                     float(np.maximum(0.0, b_before[rows] * high_rows[rows]).max()))
        for total, part in ((ips_total, ips_bounds), (dr_total, dr_bounds)):
            total[0] += part[0]
            total[1] += part[1]
        note = {"bounds": list(row_bounds), "w_max": w_max}
        out_slots.append(_normal_only({
            **found, "ips": _set(found["ips"], _bernstein(ips_rows[rows], ips_bounds, alpha, sample_of(rows)), kind,
                                 **note),
            "dr": _set(found["dr"], _bernstein(t.dr_rows[rows], dr_bounds, alpha, sample_of(rows)), kind, **note,
                       term_bounds=list(dr_bounds))}))
    note = {"bounds": list(row_bounds), "w_max": float(b_upto.max())}
    return out_slots, _normal_only({
        **slate, "ips": _set(slate["ips"], _bernstein(per_event(ips_rows), tuple(ips_total), alpha, s), kind, **note),
        "dr": _set(slate["dr"], _bernstein(per_event(t.dr_rows), tuple(dr_total), alpha, s), kind, **note,
                   term_bounds=list(dr_total))})
