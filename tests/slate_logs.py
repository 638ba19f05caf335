"""Synthetic multi-slot (VW CCB) decision logs with a known truth, in the line format the
service writes for channels that show several offers (docs/log-format.md), and the exact
value of any slate policy in that world (by enumerating every slate).

The world: a segment (``Context``) sets each offer's base rate; slot s multiplies it by
``POSITION[s]``; a slot's reward is Bernoulli. The logging policy draws slot by slot
without replacement, with fixed preferences per segment, so every action keeps a
positive probability in every slot."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

OFFER_IDS = ["roaming_pack", "intl_pack", "data_pack", "family"]
VALUES = [1.0, 1.0, 2.0, 1.5]
RATES = {"roaming": [0.7, 0.4, 0.2, 0.1], "family": [0.1, 0.2, 0.3, 0.8]}
POSITION = [1.0, 0.6, 0.3]
PREFERENCE = {"roaming": [4.0, 3.0, 2.0, 1.0], "family": [1.0, 2.0, 2.0, 3.0]}

SlotPolicy = Callable[[str, int, list[int]], dict[int, float]]
"""(segment, slot 1-based, available actions) -> {action: probability}."""


def logging_policy(segment: str, slot: int, available: list[int]) -> dict[int, float]:
    weights = {a: PREFERENCE[segment][a] for a in available}
    total = sum(weights.values())
    return {a: w / total for a, w in weights.items()}


def uniform_policy(segment: str, slot: int, available: list[int]) -> dict[int, float]:
    return {a: 1.0 / len(available) for a in available}


def priority_policy(segment: str, slot: int, available: list[int]) -> dict[int, float]:
    """Highest business value first (ties: the first offer), as the priority baseline."""
    return {max(available, key=lambda a: (VALUES[a], -a)): 1.0}


def true_value(policy: SlotPolicy, slots: int = 3, per_slot: bool = False) -> Any:
    """The exact expected slate reward (sum over slots) of ``policy``, segments alike."""
    values = [0.0] * slots
    for segment in RATES:
        for slate in itertools.permutations(range(len(OFFER_IDS)), slots):
            chance, available = 1.0, list(range(len(OFFER_IDS)))
            for s, action in enumerate(slate):
                chance *= policy(segment, s + 1, available).get(action, 0.0)
                available.remove(action)
            for s, action in enumerate(slate):
                values[s] += 0.5 * chance * RATES[segment][action] * POSITION[s]
    return values if per_slot else sum(values)


def slate_doc(i: int, rng: random.Random, *, slots: int = 3, nb: bool = True,
              dropped: bool = False) -> dict[str, Any]:
    """One CCB line as the service writes it (``_nb`` optional, as from other systems)."""
    segment = rng.choice(sorted(RATES))
    available = list(range(len(OFFER_IDS)))
    outcomes, shown = [], []
    for s in range(slots):
        pmf = logging_policy(segment, s + 1, available)
        action = rng.choices(list(pmf), weights=list(pmf.values()))[0]
        rest = sorted((a for a in available if a != action), key=lambda a: (-pmf[a], a))
        reward = 0.0 if dropped else float(rng.random() < RATES[segment][action] * POSITION[s])
        order = [action, *rest]
        outcomes.append({"_id": str(s + 1), "_label_cost": 0.0 - reward, "_a": order, "_p": [pmf[a] for a in order]})
        shown.append((action, reward))
        available.remove(action)
    doc: dict[str, Any] = {
        "Timestamp": f"2026-12-07T10:00:{i % 60:02d}.000Z", "Version": "1", "EventId": f"slate-{i}",
        "c": {"Context": {f"reason={segment}": 1, "channel=contact_center": 1},
              "_multi": [{"Offer": {f"id={o}": 1, "price": 1.0 + j}} for j, o in enumerate(OFFER_IDS)],
              "_slots": [{"_id": str(s + 1)} for s in range(slots)]},
        "_outcomes": outcomes, "VWState": {"m": "3.1200"}}
    if dropped:
        doc["_skipLearn"] = True
    if nb:
        doc["_nb"] = {"stream_id": f"{1765100000000 + i}-0", "kind": "dropped" if dropped else "joined",
                      "reward": sum(r for _, r in shown), "policy": "model", "catalog": 4,
                      "rewards": sum(r > 0 for _, r in shown), "channel": "contact_center", "subscriber": None,
                      "offers": OFFER_IDS, "values": VALUES, "model": "3.1200", "deferred": False,
                      "decided_ms": 1765100000000 + i, "joined_ms": 1765100001000 + i,
                      "slots": [{"slot": s + 1, "offer": OFFER_IDS[a], "reward": r, "rewards": int(r > 0)}
                                for s, (a, r) in enumerate(shown)]}
    return doc


def slate_line(i: int, rng: random.Random | None = None, **options: Any) -> bytes:
    return orjson.dumps(slate_doc(i, rng or random.Random(i), **options)) + b"\n"


def write_slate_log(path: Path, n: int, seed: int = 11, dropped: float = 0.0) -> Path:
    rng = random.Random(seed)
    path.write_bytes(b"".join(slate_line(i, rng, dropped=rng.random() < dropped) for i in range(n)))
    return path
