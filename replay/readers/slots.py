"""Multi-slot (VW CCB, ``--ccb_explore_adf``) DSJSON lines: ``c._slots`` and ``_outcomes``.

A deployment whose channels show several offers logs every event as one CCB line: the
candidates in ``c._multi``, one object per slot in ``c._slots``, and per slot an outcome
with its cost, ``_a`` (0-based indices into ``c._multi``, the shown action first) and
``_p`` (each one's probability given the earlier slots). Here the fields are read and
their types checked; whether they fit together (ranges, disjoint slots, sums) is
``replay.validate.check``'s business, so table rows get the very same checks.
"""

from __future__ import annotations

from typing import Any

from replay.readers.event import SlotOutcome, number, numbers, objects
from replay.validate import (
    BAD_SLOTS,
    MALFORMED,
    MISSING_PROBABILITY,
    MISSING_REWARD,
    Defect,
    clip,
)


def is_slate(doc: dict[str, Any], features: dict[str, Any]) -> bool:
    """A CCB line: it has outcomes or slots (a plain cb line has neither)."""
    return "_outcomes" in doc or "_slots" in features


def parse_slots(doc: dict[str, Any], features: dict[str, Any]) -> list[SlotOutcome]:
    """The slots of a CCB line, in order; ``Defect`` for a missing or mistyped field."""
    outcomes, slots = doc.get("_outcomes"), features.get("_slots")
    if outcomes is None:
        raise Defect(MALFORMED, "'c._slots' without '_outcomes': the slots' shown actions and costs are unknown")
    if slots is None:
        raise Defect(MALFORMED, "'_outcomes' without 'c._slots'")
    outcomes = objects(outcomes, MALFORMED, "_outcomes")
    slots = objects(slots, MALFORMED, "c._slots")
    if not outcomes:
        raise Defect(BAD_SLOTS, "no slots: '_outcomes' is empty")
    if len(outcomes) != len(slots):
        raise Defect(BAD_SLOTS, f"{len(outcomes)} outcome(s) for {len(slots)} slot(s)")
    return [_slot(index + 1, outcome, slot) for index, (outcome, slot) in enumerate(zip(outcomes, slots))]


def _slot(position: int, outcome: dict[str, Any], slot: dict[str, Any]) -> SlotOutcome:
    name = f"slot {position}"
    outcome_id, slot_id = outcome.get("_id"), slot.get("_id")
    for value, field in ((outcome_id, "_outcomes"), (slot_id, "c._slots")):
        if value is not None and not isinstance(value, str):
            raise Defect(MALFORMED, f"{name}: {field} _id {clip(repr(value), 40)} is not a string")
    if outcome_id is not None and slot_id is not None and outcome_id != slot_id:
        raise Defect(BAD_SLOTS, f"{name}: outcome _id {clip(outcome_id, 40)!r} but slot _id {clip(slot_id, 40)!r}")
    actions = outcome.get("_a")
    if type(actions) is int:   # VW also writes a lone action as a number
        actions = [actions]
    if type(actions) is not list or not set(map(type, actions)) <= {int}:
        raise Defect(MALFORMED, f"{name}: _a is not a list of action indices: {clip(repr(actions), 60)}"
                     if actions is not None else f"{name}: no _a: the shown action is unknown")
    if not actions:
        raise Defect(BAD_SLOTS, f"{name}: _a is empty: no shown action")
    p = outcome.get("_p")
    if p is None:
        raise Defect(MISSING_PROBABILITY, f"{name}: no _p")
    pmf = [number(p, MISSING_PROBABILITY, f"{name}: _p")] if not isinstance(p, list) else \
        numbers(p, MISSING_PROBABILITY, f"{name}: _p")
    if not pmf:
        raise Defect(MISSING_PROBABILITY, f"{name}: _p is empty")
    cost = number(outcome.get("_label_cost"), MISSING_REWARD, f"{name}: _label_cost")
    return SlotOutcome(slot=position, id=outcome_id, chosen=actions[0], probability=pmf[0], actions=actions,
                       pmf=pmf, reward=0.0 - cost, features=slot)
