"""What a simulated run shows: each policy's acceptance and value on the same contacts.

The service's learned policy and its control group are *live* (their offers were
served and the answers posted back). Uniform random, the static business priority
(always the most valuable eligible offer) and the oracle (the truth's best expected
value) are evaluated on the very same contacts and eligible offers, with the true
acceptance probabilities: expected values, not draws, so their comparison carries no
sampling noise of its own. Lift over control uses what was actually observed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from replay.estimators import difference_of_means
from simulator.drive import Outcome

POLICIES = ("learned", "control", "random", "priority", "oracle")
LABELS = {"learned": "learned (the service)", "control": "control group (live)", "random": "uniform random",
          "priority": "business priority", "oracle": "oracle (knows the truth)"}
LAST_SHARE = 0.2   # gap_closed is measured over the last 20% of the run


def choices(outcome: Outcome, offer_values: dict[str, float]) -> dict[str, int]:
    """Index (into outcome.offers) each counterfactual policy would serve."""
    values = [offer_values.get(o, 0.0) for o in outcome.offers]
    return {"priority": max(range(len(values)), key=lambda i: (values[i], -i)),
            "oracle": max(range(len(outcome.value)), key=lambda i: (outcome.value[i], -i))}


def policy_values(outcomes: Sequence[Outcome], offer_values: dict[str, float]) -> dict[str, np.ndarray]:
    """Per decision: expected acceptance and value of each policy's choice (NaN where a
    live policy did not serve that contact)."""
    n = len(outcomes)
    out = {f"{p}_{m}": np.full(n, np.nan) for p in POLICIES for m in ("accept", "value")}
    for row, o in enumerate(outcomes):
        live = "learned" if o.policy == "model" else "control"
        out[f"{live}_accept"][row], out[f"{live}_value"][row] = o.accept[0], o.value[0]
        out["random_accept"][row], out["random_value"][row] = float(np.mean(o.accept)), float(np.mean(o.value))
        for name, i in choices(o, offer_values).items():
            out[f"{name}_accept"][row], out[f"{name}_value"][row] = o.accept[i], o.value[i]
    return out


def summarize(outcomes: Sequence[Outcome], offer_values: dict[str, float], alpha: float = 0.05) -> dict[str, Any]:
    decided = [o for o in outcomes if o.offers]
    if not decided:
        raise ValueError("no contact had an eligible offer: nothing to compare")
    table = policy_values(decided, offer_values)
    model = np.array([o.policy == "model" for o in decided])
    last = np.arange(len(decided)) >= int(len(decided) * (1 - LAST_SHARE))
    policies: dict[str, Any] = {}
    for name in POLICIES:
        rows = model if name == "learned" else ~model if name == "control" else np.ones(len(decided), bool)
        policies[name] = _policy(table, name, rows, last)
    for name, rows in (("learned", model), ("control", ~model)):
        observed = [o for o, r in zip(decided, rows) if r]
        policies[name]["observed_acceptance_rate"] = _mean([o.accepted for o in observed])
        policies[name]["observed_value_per_decision"] = _mean(
            [offer_values.get(o.offers[0], 0.0) * o.accepted for o in observed])
    learned, random, oracle = (np.nanmean(table[f"{p}_value"][last & model]) for p in ("learned", "random", "oracle"))
    regret = np.where(model, table["oracle_value"] - table["learned_value"], 0.0)
    return {
        "contacts": len(outcomes), "decisions": len(decided), "no_eligible_offer": len(outcomes) - len(decided),
        "policies": policies,
        "gap_closed": float((learned - random) / (oracle - random)) if oracle > random else None,
        "gap_window": {"from_decision": int(np.argmax(last)), "to_decision": len(decided)},
        "regret": {"total": float(regret.sum()), "per_model_decision": float(regret.sum() / max(1, model.sum()))},
        "lift_over_control": _lift(decided, model, offer_values, alpha),
        "per_offer": _per_offer(decided, model),
        "per_channel": _per_channel(decided, table),
        "rewards": _reward_counts(decided),
    }


def _policy(table: dict[str, np.ndarray], name: str, rows: np.ndarray, last: np.ndarray) -> dict[str, Any]:
    accept, value = table[f"{name}_accept"][rows], table[f"{name}_value"][rows]
    return {"decisions": int(rows.sum()), "acceptance_rate": _mean(accept), "value_per_decision": _mean(value),
            "value_per_decision_last": _mean(table[f"{name}_value"][rows & last])}


def _lift(decided: Sequence[Outcome], model: np.ndarray, offer_values: dict[str, float],
          alpha: float) -> dict[str, Any] | None:
    """Observed model − control, with a (1 − alpha) interval: what a business reports."""
    if model.all() or not model.any() or model.sum() < 2 or (~model).sum() < 2:
        return None
    accepted = np.array([o.accepted for o in decided], dtype=float)
    value = np.array([offer_values.get(o.offers[0], 0.0) * o.accepted for o in decided])
    out: dict[str, Any] = {"alpha": alpha}
    for metric, x in (("acceptance_rate", accepted), ("value_per_decision", value)):
        diff = difference_of_means(x[model], x[~model], alpha=alpha)
        base = float(x[~model].mean())
        out[metric] = {"model": float(x[model].mean()), "control": base, "difference": diff.value,
                       "lower": diff.lower, "upper": diff.upper,
                       "relative": diff.value / base if base else None}
    return out


def _per_offer(decided: Sequence[Outcome], model: np.ndarray) -> dict[str, dict[str, Any]]:
    served: dict[str, list[Outcome]] = defaultdict(list)
    for o, is_model in zip(decided, model):
        if is_model:
            served[o.served].append(o)
    return {offer: {"served": len(rows), "accepted": sum(o.accepted for o in rows),
                    "take_rate": _mean([o.accepted for o in rows]),
                    "true_acceptance": _mean([o.accept[0] for o in rows])}
            for offer, rows in sorted(served.items(), key=lambda kv: -len(kv[1]))}


def _per_channel(decided: Sequence[Outcome], table: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    channels = np.array([o.channel for o in decided])
    return {channel: {"decisions": int((channels == channel).sum()),
                      **{f"{p}_value_per_decision": _mean(table[f"{p}_value"][channels == channel]) for p in POLICIES}}
            for channel in sorted(set(channels.tolist()))}


def _reward_counts(decided: Sequence[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for o in decided:
        counts[o.reward] += 1
    return dict(counts)


def _mean(xs: Any) -> float | None:
    values = np.asarray(xs, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def curves(outcomes: Sequence[Outcome], offer_values: dict[str, float], points: int = 50) -> dict[str, Any]:
    """Learning curves over the run: each policy's value per decision in consecutive
    windows, and the learned policy's cumulative regret against the oracle."""
    decided = [o for o in outcomes if o.offers]
    table = policy_values(decided, offer_values)
    edges = np.linspace(0, len(decided), min(points, len(decided)) + 1).astype(int)
    windows = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    value = {p: [_mean(table[f"{p}_value"][a:b]) for a, b in windows] for p in POLICIES}
    regret = np.nan_to_num(table["oracle_value"] - table["learned_value"], nan=0.0).cumsum()
    return {"x": [int(b) for _, b in windows], "value": value, "regret_x": list(range(1, len(decided) + 1)),
            "regret": regret.tolist()}


def pct(x: float | None) -> str:
    """A share for people (tables, reports); a dash when there is none."""
    return "–" if x is None else f"{x:.1%}"


def num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"
