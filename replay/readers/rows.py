"""Table rows ⇄ events, both directions here so they round-trip: ``row_event`` and
``slate_event`` read rows (Parquet values, or CSV cells as bytes), ``event_columns``
writes them. A single-slot event is one row; a multi-slot (CCB) event one row per slot,
its own columns repeated on each (docs/replay.md, "The table").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from replay.readers.event import (
    LoggedEvent,
    SlotOutcome,
    numbers,
    objects,
    parse_json,
    slate_fields,
    strings,
)
from replay.validate import (
    BAD_PMF,
    BAD_SLOTS,
    CHOSEN_OUT_OF_RANGE,
    BAD_PDROP,
    MALFORMED,
    MISSING_PROBABILITY,
    MISSING_REWARD,
    NO_ACTIONS,
    UNPARSEABLE,
    Defect,
    clip,
)

REQUIRED = ("event_id", "timestamp", "context", "actions", "chosen", "probability", "reward")
OPTIONAL = ("pmf", "action_ids", "skip_learn", "policy", "extra", "offer", "slot", "slot_id", "slot_actions",
            "slot_features", "tag", "pdrop", "features_json")
SLOT_COLUMNS = ("slot", "slot_id", "slot_actions", "slot_features")
"""A multi-slot event is one row per slot, in slot order; these say which slot (empty
in a single-slot event's row). docs/replay.md, "The table"."""
COLUMNS = REQUIRED + OPTIONAL
NESTED = ("context", "actions", "pmf", "action_ids", "slot_actions")
"""Columns an export writes as nested Arrow types (``replay.export.table_schema``); JSON
text in CSV and in older exports, which read the same."""


def row_event(row: dict[str, Any]) -> LoggedEvent:
    """One table row (Parquet values, or CSV cells as bytes) as an event."""
    event_id = _text(row["event_id"], "event_id")
    if not event_id:
        raise Defect(MALFORMED, "no event_id")
    context, actions = _json(row["context"], "context"), _json(row["actions"], "actions")
    if context is None and actions is None and row.get("features_json") is not None:
        context, actions = _features_json(row["features_json"])
    if not isinstance(context, dict):
        raise Defect(MALFORMED, "no context" if context is None else "context is not a JSON object")
    if not actions:
        raise Defect(NO_ACTIONS, "no candidate actions: 'actions' is empty")
    pmf, ids, extra = (_json(row.get(name), name) for name in ("pmf", "action_ids", "extra"))
    if extra is not None and not isinstance(extra, dict):
        raise Defect(MALFORMED, "extra is not a JSON object")
    return LoggedEvent(
        event_id=event_id, timestamp=_text(row["timestamp"], "timestamp"), shared=context,
        actions=objects(actions, MALFORMED, "actions"),
        action_ids=None if ids is None else strings(ids, MALFORMED, "action_ids"),
        chosen=_int(row["chosen"], "chosen"),
        probability=_float(row["probability"], MISSING_PROBABILITY, "probability"),
        pmf=None if pmf is None else numbers(pmf, BAD_PMF, "pmf"),
        reward=_float(row["reward"], MISSING_REWARD, "reward"),
        skip_learn=_bool(row.get("skip_learn"), "skip_learn"), policy=_text(row.get("policy"), "policy"),
        extra=extra or {}, tag=_text(row.get("tag"), "tag"),
        pdrop=0.0 if row.get("pdrop") is None else _float(row["pdrop"], BAD_PDROP, "pdrop"),
    )


def event_columns(events: list[LoggedEvent], *, nested: bool = False) -> dict[str, list[Any]]:
    """The table's columns for these events: rows that ``read_table`` reads back as the
    very events. A multi-slot event becomes one row per slot: its own columns repeated,
    the slot's shown action, probability, reward and PMF (over all actions, 0 for those
    not in its ``_a``), and the slot columns.

    ``nested``: the ``NESTED`` columns as Python lists and dicts (for the nested Arrow
    types of an export) instead of JSON text. Features fit the nested type only as
    namespace → {token: number}; an event with other features (strings, arrays, a
    feature outside a namespace) gets null ``context`` and ``actions`` and both in
    ``features_json`` instead, so every event still round-trips."""
    rows: list[tuple[LoggedEvent, SlotOutcome | None]] = []
    for event in events:
        rows.extend([(event, slot) for slot in event.slots] if event.slots is not None else [(event, None)])
    fits = [nested and _numeric(e.shared) and all(_numeric(a) for a in e.actions) for e, _ in rows]

    def text(values: Any) -> list[str | None]:
        return [None if value is None else orjson.dumps(value).decode() for value in values]

    dump = (lambda values: list(values)) if nested else text

    def features(field: str) -> list[Any]:
        if not nested:
            return text(getattr(e, field) for e, _ in rows)
        return [getattr(e, field) if fit else None for (e, _), fit in zip(rows, fits)]

    def pick(event: LoggedEvent, slot: SlotOutcome | None, field: str) -> Any:
        return getattr(event if slot is None else slot, field)

    def offer(event: LoggedEvent, slot: SlotOutcome | None) -> str | None:
        chosen = pick(event, slot, "chosen")
        return event.action_ids[chosen] if event.action_ids is not None else None

    return {"event_id": [e.event_id for e, _ in rows], "timestamp": [e.timestamp for e, _ in rows],
            "context": features("shared"), "actions": features("actions"),
            "chosen": [pick(e, s, "chosen") for e, s in rows],
            "probability": [pick(e, s, "probability") for e, s in rows],
            "reward": [pick(e, s, "reward") for e, s in rows],
            "pmf": dump(e.pmf if s is None else _slot_pmf(s, len(e.actions)) for e, s in rows),
            "action_ids": dump(e.action_ids for e, _ in rows), "skip_learn": [e.skip_learn for e, _ in rows],
            "policy": [e.policy for e, _ in rows], "extra": text(e.extra for e, _ in rows),
            "offer": [offer(e, s) for e, s in rows], "slot": [None if s is None else s.slot for _, s in rows],
            "slot_id": [None if s is None else s.id for _, s in rows],
            "slot_actions": dump(None if s is None else s.actions for _, s in rows),
            "slot_features": text(None if s is None else s.features for _, s in rows),
            "tag": [e.tag for e, _ in rows], "pdrop": [e.pdrop for e, _ in rows],
            "features_json": [None if fit or not nested else orjson.dumps({"context": e.shared, "actions": e.actions})
                              .decode() for (e, _), fit in zip(rows, fits)]}


def _numeric(features: dict[str, Any]) -> bool:
    """Namespace → {token: number} (no booleans): what map<string, map<string, double>> holds
    without changing the features VW reads."""
    return all(type(group) is dict and set(map(type, group.values())) <= {int, float} for group in features.values())


def _features_json(value: Any) -> tuple[Any, Any]:
    """(context, actions) of a ``features_json`` cell: features the nested columns cannot hold."""
    both = parse_json(value, "features_json")
    if not isinstance(both, dict):
        raise Defect(MALFORMED, "features_json is not a JSON object")
    return both.get("context"), both.get("actions")


def _slot_pmf(slot: SlotOutcome, n: int) -> list[float]:
    pmf = [0.0] * n
    for action, probability in zip(slot.actions, slot.pmf):
        pmf[action] = probability
    return pmf


def slate_event(rows: list[tuple[int, dict[str, Any]]]) -> LoggedEvent:
    """A multi-slot event from its slot rows (the event's own columns from the first);
    a ``Defect`` names the row it is about (its ``row``: number and cells)."""
    number, first = rows[0]
    event = row_event(first)
    slots = []
    for index, (number, row) in enumerate(rows):
        try:
            slots.append(_row_slot(row, index + 1, len(event.actions)))
        except Defect as defect:
            defect.row = (number, row)   # type: ignore[attr-defined]
            raise
    chosen, probability, pmf, reward = slate_fields(slots, len(event.actions))
    return msgspec.structs.replace(event, chosen=chosen, probability=probability, pmf=pmf, reward=reward,
                                   slots=slots)


def _row_slot(row: dict[str, Any], expected: int, n: int) -> SlotOutcome:
    position = _int(row["slot"], "slot")
    if position != expected:
        raise Defect(BAD_SLOTS, f"slot {position} where slot {expected} was expected: an event's slot rows "
                     f"come together, in slot order, from slot 1" if expected > 1 else
                     f"the event's rows start at slot {position}, not 1 (its first rows are missing or apart)")
    name = f"slot {position}"
    actions = _json(row.get("slot_actions"), "slot_actions")
    if actions is None:
        raise Defect(MALFORMED, f"{name}: no slot_actions")
    if type(actions) is not list or not set(map(type, actions)) <= {int} or not actions:
        raise Defect(MALFORMED, f"{name}: slot_actions is not a list of action indices: {clip(repr(actions), 60)}")
    pmf = _json(row.get("pmf"), "pmf")
    if pmf is None:
        raise Defect(BAD_PMF, f"{name}: no pmf: a slot row needs the slot's PMF")
    pmf = numbers(pmf, BAD_PMF, "pmf")
    if len(pmf) != n:
        raise Defect(BAD_PMF, f"{name}: PMF of {len(pmf)} entries for {n} action(s)")
    if not all(0 <= a < n for a in actions):
        raise Defect(CHOSEN_OUT_OF_RANGE, f"{name}: slot_actions {clip(repr(actions), 60)} beyond the {n} action(s)")
    chosen = _int(row["chosen"], "chosen")
    if chosen != actions[0]:
        raise Defect(BAD_SLOTS, f"{name}: chosen {chosen}, but slot_actions starts with {actions[0]}")
    features = _json(row.get("slot_features"), "slot_features")
    if features is not None and not isinstance(features, dict):
        raise Defect(MALFORMED, f"{name}: slot_features is not a JSON object")
    return SlotOutcome(slot=position, id=_text(row.get("slot_id"), "slot_id"), chosen=chosen,
                       probability=_float(row["probability"], MISSING_PROBABILITY, "probability"),
                       actions=actions, pmf=[pmf[a] for a in actions],
                       reward=_float(row["reward"], MISSING_REWARD, "reward"), features=features or {})


def _text(value: Any, name: str) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise Defect(UNPARSEABLE, f"{name} is not UTF-8 text") from None
    if isinstance(value, int):   # a Parquet integer event_id
        return str(value)
    return value


def _json(value: Any, name: str) -> Any:
    """A JSON text cell parsed; a nested Parquet value (already lists and dicts) as it is."""
    if value is None or not isinstance(value, (str, bytes)):
        return value
    return parse_json(value, name)


def _convert(value: Any, kind: str, name: str, to: Callable[[Any], Any]) -> Any:
    """A Parquet number, or a CSV cell (bytes) read as one; else the defect ``kind``."""
    if value is None:
        raise Defect(kind, f"no {name}")
    try:
        return to(value)
    except ValueError:
        raise Defect(kind, f"{name} {_shown(value)} is not {'an integer' if to is int else 'a number'}") from None


def _float(value: Any, kind: str, name: str) -> float:
    return _convert(value, kind, name, float)


def _int(value: Any, name: str) -> int:
    return _convert(value, MALFORMED, name, int)


def _bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    spelled = {b"true": True, b"1": True, b"false": False, b"0": False}.get(value.strip().lower())
    if spelled is None:
        raise Defect(MALFORMED, f"{name} {_shown(value)} is not true or false")
    return spelled


def _shown(value: Any) -> str:
    """A cell as it reads in the file (CSV cells are bytes here)."""
    return clip(repr(value.decode("utf-8", "replace") if isinstance(value, bytes) else value), 40)
