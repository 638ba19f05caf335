"""The event every reader yields, and the field conversions the readers share."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec
import orjson

from replay.validate import UNPARSEABLE, Defect, clip

DEFAULT_CHUNK_SIZE = 10_000

Progress = Callable[[int, int], None]
"""Called now and then with (bytes read so far, bytes in all), for a progress bar."""


class SlotOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One slot of a multi-slot (VW CCB) decision: what was shown there, with which
    probability, and what it earned. ``actions`` and ``pmf`` are the slot's logged
    ``_a`` and ``_p``: the actions still available in this slot (all but those shown in
    earlier slots), the shown one first, each with the probability it had *given the
    earlier slots*; actions left out had probability 0."""

    slot: int                           # 1-based position
    id: str | None                      # the outcome's _id (VW matches outcomes to slots by order)
    chosen: int                         # the shown action, 0-based into the event's actions (_a[0])
    probability: float                  # its logged probability in this slot (_p[0])
    actions: list[int]                  # _a: 0-based action indices, shown first
    pmf: list[float]                    # _p, in the order of ``actions``
    reward: float                       # -_label_cost of this slot
    features: dict[str, Any] = {}       # the slot's object in c._slots (its "_id", slot features)


class LoggedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One logged decision, whatever the source: what off-policy replay needs.

    ``actions``, ``pmf`` and ``action_ids`` are in the same order (the candidates'
    order at decision time); ``chosen`` indexes them, 0-based.

    A multi-slot (CCB) event has ``slots``; then ``chosen``, ``probability`` and ``pmf``
    are slot 1's (over all actions) and ``reward`` is the sum of the slots' rewards, so
    code that knows only single-slot events sees the first slot and the slate's reward."""

    event_id: str
    timestamp: str | None
    shared: dict[str, Any]              # shared (context) features: VW JSON namespaces
    actions: list[dict[str, Any]]       # each candidate's features (DSJSON c._multi)
    action_ids: list[str] | None        # offer ids (service logs: _nb.offers)
    chosen: int                         # the served action, 0-based into actions
    probability: float                  # its logged propensity
    pmf: list[float] | None             # the logged PMF over actions, when the log has it
    reward: float                       # DSJSON: -_label_cost
    skip_learn: bool = False            # DSJSON _skipLearn: a dropped (never activated) event
    policy: str | None = None           # "model" or "control" (service logs)
    extra: dict[str, Any] = {}          # the rest of the service's _nb (stream id, kind, ...)
    slots: list[SlotOutcome] | None = None   # multi-slot (CCB) events only: the slots in order
    tag: str | None = None              # VW's example tag (DSJSON c._tag): the caller's own id, for joins
    pdrop: float = 0.0                  # DSJSON pdrop: the share of such events the logger dropped by
    #                                     sub-sampling; this one stands for 1/(1 - pdrop) events

    @property
    def sample_weight(self) -> float:
        """How many logged events this one stands for: 1/(1 − pdrop) (VW weights its
        example so too); replay's estimators weight it so (docs/replay.md, "Sub-sampled logs")."""
        return 1.0 / (1.0 - self.pdrop)


def slate_fields(slots: list[SlotOutcome], n: int) -> tuple[int, float, list[float] | None, float]:
    """A multi-slot event's single-slot view: slot 1's shown action, probability and PMF
    in action order (None when its ``_a`` is no set of valid indices: the checks report
    it), and the slate's reward (the sum over slots, as ``_nb.reward``). Both readers
    use it, so an event reads the same from a line and from its table rows."""
    first = slots[0]
    pmf: list[float] | None = None
    if len(first.actions) == len(first.pmf) and len(set(first.actions)) == len(first.actions) \
            and all(0 <= a < n for a in first.actions):
        pmf = [0.0] * n
        for action, probability in zip(first.actions, first.pmf):
            pmf[action] = probability
    return first.chosen, first.probability, pmf, 0.0 + sum(slot.reward for slot in slots)


def chunked(events: Iterable[LoggedEvent], size: int) -> Iterator[list[LoggedEvent]]:
    """Lists of at most ``size`` events: bounded memory whatever the source's size.

    The cyclic garbage collector is paused while a chunk is built (and only then: the
    caller's code runs with it as it was): parsing allocates many containers, none in
    a cycle, and the collector's passes over them took half the reading time."""
    if size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {size}")
    iterator = iter(events)
    while True:
        enabled = gc.isenabled()
        gc.disable()
        try:
            chunk = list(itertools.islice(iterator, size))
        finally:
            if enabled:
                gc.enable()
        if not chunk:
            return
        yield chunk


def number(value: Any, kind: str, name: str) -> float:
    """A JSON number (not a boolean) as a float; else the defect ``kind``."""
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    if value is None:
        raise Defect(kind, f"no {name}")
    raise Defect(kind, f"{name} is {clip(repr(value), 40)}, not a number")


def integer(value: Any, kind: str, name: str) -> int:
    if type(value) is int:
        return value
    if value is None:
        raise Defect(kind, f"no {name}")
    raise Defect(kind, f"{name} is {clip(repr(value), 40)}, not an integer")


def parse_json(text: str | bytes, name: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Defect(UNPARSEABLE, f"{name}: not JSON: {exc}") from None


# The list checks compare the set of item types (a pass at C speed): bool is not int here.

def objects(value: Any, kind: str, name: str) -> list[dict[str, Any]]:
    """A list of JSON objects (the actions' features)."""
    if type(value) is not list or not set(map(type, value)) <= {dict}:
        raise Defect(kind, f"{name} is not a list of objects: {clip(repr(value), 60)}")
    return value


def strings(value: Any, kind: str, name: str) -> list[str]:
    if type(value) is not list or not set(map(type, value)) <= {str}:
        raise Defect(kind, f"{name} is not a list of strings: {clip(repr(value), 60)}")
    return value


def numbers(value: Any, kind: str, name: str) -> list[float]:
    if type(value) is list:
        types = set(map(type, value))
        if types <= {float}:
            return value
        if types <= {float, int}:
            return list(map(float, value))
    raise Defect(kind, f"{name} is not a list of numbers: {clip(repr(value), 60)}")
