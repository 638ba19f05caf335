"""What a simulated run shows: each policy's slate value on the same contacts.

Every decision serves a slate (slot 1 pitched first; one slot on a service without
slots). The service's learned policy and its control group are *live* (their slates
were served and the answers posted back). Uniform random (a random slate over the
eligible offers), the static business priority (the most valuable eligible offers, in
that order) and the oracle (the best slate under the truth) are evaluated on the very
same contacts, eligible offers and number of slots, with the true acceptance
probabilities and the position effect (``simulator.slate``): expected values, not
draws, so their comparison carries no sampling noise of its own. Lift over control
uses what was actually observed. With one slot every figure is the single offer's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from replay.estimators import difference_of_means
from simulator.drive import Outcome
from simulator.slate import best_slate, random_slate_value, slate_value

POLICIES = ("learned", "control", "random", "priority", "oracle")
LABELS = {"learned": "learned (the service)", "control": "control group (live)", "random": "uniform random",
          "priority": "business priority", "oracle": "oracle (knows the truth)"}
LAST_SHARE = 0.2   # gap_closed is measured over the last 20% of the run


def choices(outcome: Outcome, offer_values: dict[str, float]) -> dict[str, list[int]]:
    """The slate (indices into outcome.offers, slot 1 first) each counterfactual policy
    would serve, as many slots as the service served."""
    values = [offer_values.get(o, 0.0) for o in outcome.offers]
    return {"priority": best_slate(values, outcome.slots), "oracle": best_slate(outcome.value, outcome.slots)}


def policy_values(outcomes: Sequence[Outcome], offer_values: dict[str, float]) -> dict[str, np.ndarray]:
    """Per decision: expected acceptances and value of each policy's slate (NaN where a
    live policy did not serve that contact)."""
    n = len(outcomes)
    out = {f"{p}_{m}": np.full(n, np.nan) for p in POLICIES for m in ("accept", "value")}
    for row, o in enumerate(outcomes):
        weights, served = o.attention, list(range(o.slots))
        live = "learned" if o.policy == "model" else "control"
        out[f"{live}_accept"][row] = slate_value(weights, o.accept, served)
        out[f"{live}_value"][row] = slate_value(weights, o.value, served)
        out["random_accept"][row] = random_slate_value(weights, o.accept)
        out["random_value"][row] = random_slate_value(weights, o.value)
        for name, slate in choices(o, offer_values).items():
            out[f"{name}_accept"][row] = slate_value(weights, o.accept, slate)
            out[f"{name}_value"][row] = slate_value(weights, o.value, slate)
    return out


def observed(outcome: Outcome, offer_values: dict[str, float]) -> tuple[int, float]:
    """What the subscriber did with the served slate: offers taken and their value."""
    taken = [o for o, yes in zip(outcome.offers, outcome.accepted) if yes]
    return len(taken), float(sum(offer_values.get(o, 0.0) for o in taken))


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
    seen = np.array([observed(o, offer_values) for o in decided], dtype=float)
    for name, rows in (("learned", model), ("control", ~model)):
        policies[name]["observed_acceptances_per_decision"] = _mean(seen[rows, 0])
        policies[name]["observed_value_per_decision"] = _mean(seen[rows, 1])
    learned, random, oracle = (np.nanmean(table[f"{p}_value"][last & model]) for p in ("learned", "random", "oracle"))
    regret = np.where(model, table["oracle_value"] - table["learned_value"], 0.0)
    slots = np.array([o.slots for o in decided])
    return {
        "contacts": len(outcomes), "decisions": len(decided), "no_eligible_offer": len(outcomes) - len(decided),
        "slots_served": int(slots.sum()), "slots_per_decision": float(slots.mean()),
        "answered_decisions": sum(any(a in ("accept", "decline") for a in o.answers) for o in decided),
        "policies": policies,
        "gap_closed": float((learned - random) / (oracle - random)) if oracle > random else None,
        "gap_window": {"from_decision": int(np.argmax(last)), "to_decision": len(decided)},
        "regret": {"total": float(regret.sum()), "per_model_decision": float(regret.sum() / max(1, model.sum()))},
        "lift_over_control": _lift(seen, model, alpha),
        "per_slot": _per_slot(decided, model, offer_values),
        "per_offer": _per_offer(decided, model),
        "per_channel": _per_channel(decided, table),
        "rewards": _reward_counts(decided),
    }


def _policy(table: dict[str, np.ndarray], name: str, rows: np.ndarray, last: np.ndarray) -> dict[str, Any]:
    accept, value = table[f"{name}_accept"][rows], table[f"{name}_value"][rows]
    return {"decisions": int(rows.sum()), "acceptances_per_decision": _mean(accept),
            "value_per_decision": _mean(value),
            "value_per_decision_last": _mean(table[f"{name}_value"][rows & last])}


def _lift(seen: np.ndarray, model: np.ndarray, alpha: float) -> dict[str, Any] | None:
    """Observed model − control per decision (offers taken, their value), with a
    (1 − alpha) interval: what a business reports."""
    if model.all() or not model.any() or model.sum() < 2 or (~model).sum() < 2:
        return None
    out: dict[str, Any] = {"alpha": alpha}
    for metric, x in (("acceptances_per_decision", seen[:, 0]), ("value_per_decision", seen[:, 1])):
        diff = difference_of_means(x[model], x[~model], alpha=alpha)
        base = float(x[~model].mean())
        out[metric] = {"model": float(x[model].mean()), "control": base, "difference": diff.value,
                       "lower": diff.lower, "upper": diff.upper,
                       "relative": diff.value / base if base else None}
    return out


def _per_slot(decided: Sequence[Outcome], model: np.ndarray, offer_values: dict[str, float]) -> list[dict[str, Any]]:
    """The learned policy slot by slot: how often each slot is heard, taken (true and
    observed), and what it is worth (true, with the position effect)."""
    rows: list[dict[str, Any]] = []
    for s in range(max((o.slots for o in decided), default=0)):
        here = [o for o, is_model in zip(decided, model) if is_model and o.slots > s]
        rows.append({"slot": s + 1, "decisions": len(here), "attention": _mean([o.attention[s] for o in here]),
                     "acceptance": _mean([o.attention[s] * o.accept[s] for o in here]),
                     "observed_acceptance": _mean([o.accepted[s] for o in here]),
                     "value_per_decision": _mean([o.attention[s] * o.value[s] for o in here]),
                     "observed_value_per_decision": _mean(
                         [offer_values.get(o.offers[s], 0.0) * o.accepted[s] for o in here])})
    return rows


def _per_offer(decided: Sequence[Outcome], model: np.ndarray) -> dict[str, dict[str, Any]]:
    """The offers the learned policy served, in any slot: take rate against the truth
    (attention × P(accept) in the slot it had)."""
    served: dict[str, list[tuple[Outcome, int]]] = defaultdict(list)
    for o, is_model in zip(decided, model):
        if is_model:
            for s in range(o.slots):
                served[o.offers[s]].append((o, s))
    return {offer: {"served": len(rows), "first_slot": sum(s == 0 for _, s in rows),
                    "accepted": sum(o.accepted[s] for o, s in rows),
                    "take_rate": _mean([o.accepted[s] for o, s in rows]),
                    "true_acceptance": _mean([o.attention[s] * o.accept[s] for o, s in rows])}
            for offer, rows in sorted(served.items(), key=lambda kv: -len(kv[1]))}


def _per_channel(decided: Sequence[Outcome], table: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    channels = np.array([o.channel for o in decided])
    slots = np.array([o.slots for o in decided])
    return {channel: {"decisions": int((channels == channel).sum()),
                      "slots_per_decision": _mean(slots[channels == channel]),
                      **{f"{p}_value_per_decision": _mean(table[f"{p}_value"][channels == channel]) for p in POLICIES}}
            for channel in sorted(set(channels.tolist()))}


def _reward_counts(decided: Sequence[Outcome]) -> dict[str, int]:
    """Answers by kind, one per slot served."""
    counts: dict[str, int] = defaultdict(int)
    for o in decided:
        for answer in o.answers:
            counts[answer] += 1
    return dict(counts)


def _mean(xs: Any) -> float | None:
    values = np.asarray(xs, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def curves(outcomes: Sequence[Outcome], offer_values: dict[str, float], points: int = 50) -> dict[str, Any]:
    """Learning curves over the run: each policy's slate value per decision in consecutive
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


def num3(x: float | None) -> str:
    """Offers taken per decision: a small number, three places."""
    return "–" if x is None else f"{x:.3f}"
