"""What can be wrong with a logged event, and the report of a read.

Readers parse a line or row into a ``LoggedEvent`` (raising ``Defect`` for what they
cannot parse) and hand it to a ``Checker``, which applies the checks every source
shares. A bad event is skipped and counted in the ``ValidationReport`` (with a few
examples, so an operator can find the lines), or with ``strict`` ends the read with a
``LogError`` naming the file and line. Replay estimates weight rewards by
1/probability: one bad propensity can swing an estimate, so nothing doubtful passes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from replay.readers.event import LoggedEvent

UNPARSEABLE = "unparseable"
UNREADABLE = "unreadable"
MALFORMED = "malformed"
MISSING_PROBABILITY = "missing_probability"
PROBABILITY_ABOVE_ONE = "probability_above_one"
BAD_PMF = "bad_pmf"
CHOSEN_OUT_OF_RANGE = "chosen_out_of_range"
DUPLICATE_EVENT_ID = "duplicate_event_id"
MISSING_REWARD = "missing_reward"
NO_ACTIONS = "no_actions"
BAD_SLOTS = "bad_slots"
BAD_PDROP = "bad_pdrop"

KINDS: dict[str, str] = {
    UNPARSEABLE: "not a JSON object: bad JSON, binary junk, a JSON array, a torn last line, a bad CSV record",
    UNREADABLE: "a file, or the rest of it, cannot be read: not gzip, truncated gzip, an I/O error",
    MALFORMED: "a field missing or of the wrong type: event id, served action, features, offer ids",
    MISSING_PROBABILITY: "the logged probability is missing, zero, negative or not a number",
    PROBABILITY_ABOVE_ONE: "the logged probability is above 1",
    BAD_PMF: "the logged PMF is no distribution over the actions: |sum - 1| > 1e-3, a negative entry, "
             "another length, or not the logged probability at the served action",
    CHOSEN_OUT_OF_RANGE: "the served action is not among the candidates (index out of range)",
    DUPLICATE_EVENT_ID: "an event id seen before in this read (the first is kept)",
    MISSING_REWARD: "the reward (DSJSON: _label_cost) is missing or not a finite number",
    NO_ACTIONS: "no candidate actions",
    BAD_SLOTS: "a multi-slot (CCB) event whose slots do not fit: no slots, outcomes and slots differing in "
               "number or _id, a slot's _a empty, repeating an action or showing one an earlier slot showed",
    BAD_PDROP: "pdrop (the share of events the logger dropped by sub-sampling) is not a number in [0, 1)",
}

PMF_TOLERANCE = 1e-3
"""How far a logged PMF may sum from 1 (float32 scores, rounding in other systems)."""
PROBABILITY_TOLERANCE = 1e-6
"""How far the logged probability may be from the PMF at the served action."""
MAX_EXAMPLES = 5
SNIPPET_CHARS = 160


class Defect(Exception):
    """One event's defect, raised by the parsing and checking code, caught by the reader."""

    def __init__(self, kind: str, reason: str, snippet: str = "") -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.snippet = snippet   # the offending text, when the reader has no line of its own to show


class LogError(Exception):
    """A source that cannot be read at all (no such path, an unknown format, a table
    without a required column), or, with ``strict``, the first defect: says where."""

    def __init__(self, reason: str, file: str | None = None, line: int | None = None,
                 kind: str | None = None, unit: str = "line") -> None:
        super().__init__(f"{where(file, line, unit)}: {reason}" if file is not None else reason)
        self.reason = reason
        self.file = file
        self.line = line
        self.kind = kind
        self.unit = unit


def where(file: str | None, line: int | None, unit: str = "line") -> str:
    """``file:line`` for lines (DSJSON, CSV); ``file:row N`` for Parquet rows."""
    if line is None:
        return str(file)
    return f"{file}:{line}" if unit == "line" else f"{file}:{unit} {line}"


@dataclass(frozen=True)
class Example:
    where: str
    reason: str
    snippet: str


@dataclass
class ValidationReport:
    """Counts of good events and of each defect kind, with the first few examples."""

    good: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[Example]] = field(default_factory=dict)
    per_slot: list[int] = field(default_factory=list)   # good multi-slot events with a slot s (index s - 1)
    multi_slot: int = 0                                 # good multi-slot (CCB) events, of ``good``

    @property
    def slots(self) -> int:
        """Slots in all good multi-slot events."""
        return sum(self.per_slot)

    @property
    def defects(self) -> int:
        return sum(self.counts.values())

    def add(self, kind: str, example: Example) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(example)

    def count_slots(self, slots: int) -> None:
        self.multi_slot += 1
        if len(self.per_slot) < slots:
            self.per_slot.extend([0] * (slots - len(self.per_slot)))
        for index in range(slots):
            self.per_slot[index] += 1

    def to_json(self) -> dict[str, Any]:
        slots = {"slots": {"events": self.multi_slot, "slots": self.slots, "per_slot": self.per_slot,
                           "single_slot_events": self.good - self.multi_slot}} if self.multi_slot else {}
        return {
            "good": self.good, "defects": self.defects, **slots,
            "kinds": {kind: {"count": count, "meaning": KINDS[kind],
                             "examples": [vars(e) for e in self.examples.get(kind, [])]}
                      for kind, count in sorted(self.counts.items())},
        }


def clip(data: bytes | str, limit: int = SNIPPET_CHARS) -> str:
    """A printable, short excerpt of a bad line, safe to show in a terminal."""
    text = data[: limit * 4].decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text[: limit + 1].rstrip("\r\n"))
    return text if len(text) <= limit else text[:limit] + "…"


def check(event: LoggedEvent) -> None:
    """The checks every source shares; raises the first ``Defect`` found."""
    n = len(event.actions)
    if n == 0:
        raise Defect(NO_ACTIONS, "no candidate actions")
    if not 0 <= event.chosen < n:
        raise Defect(CHOSEN_OUT_OF_RANGE, f"served action index {event.chosen}, but {n} candidate action(s)")
    if event.slots is not None:
        check_slots(event, n)
    p = event.probability
    if not p > 0:   # also NaN
        raise Defect(MISSING_PROBABILITY, f"probability {p!r}: replay divides by it")
    if p > 1:
        raise Defect(PROBABILITY_ABOVE_ONE, f"probability {p!r} > 1")
    if not math.isfinite(event.reward):
        raise Defect(MISSING_REWARD, f"reward {event.reward!r} is not a finite number")
    if not 0.0 <= event.pdrop < 1.0:   # also NaN
        raise Defect(BAD_PDROP, f"pdrop {event.pdrop!r} is not in [0, 1): a kept event stands for 1/(1 - pdrop)")
    if event.action_ids is not None and len(event.action_ids) != n:
        raise Defect(MALFORMED, f"{len(event.action_ids)} offer id(s) for {n} action(s)")
    if event.pmf is not None and event.slots is None:   # (a slate's slot 1 PMF is checked with its slot)
        _check_pmf(event.pmf, n, event.chosen, p)


def check_slots(event: LoggedEvent, n: int) -> None:
    """A multi-slot event's slots, in order: each slot's ``_a`` names valid actions, none
    twice and none shown in an earlier slot (VW's CCB removes a shown action from later
    slots); ``_p`` is a distribution over them whose first entry, the shown action's
    probability, is in (0, 1]; the cost is a finite number."""
    if not event.slots:
        raise Defect(BAD_SLOTS, "no slots")
    shown: dict[int, int] = {}
    for slot in event.slots:
        name = f"slot {slot.slot}"
        for action in slot.actions:
            if not 0 <= action < n:
                raise Defect(CHOSEN_OUT_OF_RANGE, f"{name}: action index {action} in _a, but {n} candidate action(s)")
            if action in shown:
                raise Defect(BAD_SLOTS, f"{name}: _a lists action {action}, shown in slot {shown[action]}")
        if len(set(slot.actions)) != len(slot.actions):
            raise Defect(BAD_SLOTS, f"{name}: _a repeats an action: {clip(repr(slot.actions), 60)}")
        if len(slot.pmf) != len(slot.actions):
            raise Defect(BAD_PMF, f"{name}: _a lists {len(slot.actions)} action(s), _p {len(slot.pmf)} probabilities")
        p = slot.probability
        if not p > 0:
            raise Defect(MISSING_PROBABILITY, f"{name}: probability {p!r} of the shown action: replay divides by it")
        if p > 1:
            raise Defect(PROBABILITY_ABOVE_ONE, f"{name}: probability {p!r} > 1")
        total = math.fsum(slot.pmf)
        if not abs(total - 1.0) <= PMF_TOLERANCE:
            raise Defect(BAD_PMF, f"{name}: _p sums to {total!r}, not 1")
        if not abs(slot.pmf[0] - p) <= PROBABILITY_TOLERANCE:   # (a table's row: its PMF and probability)
            raise Defect(BAD_PMF, f"{name}: PMF gives the shown action {slot.pmf[0]!r}, the log says probability {p!r}")
        if min(slot.pmf) < 0:
            raise Defect(BAD_PMF, f"{name}: _p with a negative entry: {clip(repr(slot.pmf), 80)}")
        if not math.isfinite(slot.reward):
            raise Defect(MISSING_REWARD, f"{name}: reward {slot.reward!r} is not a finite number")
        shown[slot.chosen] = slot.slot


def _check_pmf(pmf: list[float], n: int, chosen: int, probability: float) -> None:
    if len(pmf) != n:
        raise Defect(BAD_PMF, f"PMF of {len(pmf)} entries for {n} action(s)")
    total = math.fsum(pmf)
    if not abs(total - 1.0) <= PMF_TOLERANCE:   # also NaN
        raise Defect(BAD_PMF, f"PMF sums to {total!r}, not 1")
    if min(pmf) < 0:
        raise Defect(BAD_PMF, f"PMF with a negative entry: {clip(repr(pmf), 80)}")
    if not abs(pmf[chosen] - probability) <= PROBABILITY_TOLERANCE:
        raise Defect(BAD_PMF, f"PMF gives the served action {pmf[chosen]!r}, the log says probability {probability!r}")


class Checker:
    """One read's validation: the shared checks, duplicate ids, the report, ``strict``.

    Duplicates are found by a set of 16-byte blake2b digests of the ids seen (about
    100 bytes an event with the set's overhead), not the ids themselves, which can be
    long; a collision is out of reach at 2^-64 for billions of events."""

    def __init__(self, report: ValidationReport, strict: bool) -> None:
        self.report = report
        self.strict = strict
        self._seen: set[bytes] = set()

    def admit(self, event: LoggedEvent) -> None:
        """Accept a parsed event, or raise its ``Defect`` (the first id of a duplicate stays)."""
        check(event)
        digest = hashlib.blake2b(event.event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if digest in self._seen:
            raise Defect(DUPLICATE_EVENT_ID, f"event id {clip(event.event_id, 60)!r} seen before")
        self._seen.add(digest)
        self.report.good += 1
        if event.slots is not None:
            self.report.count_slots(len(event.slots))

    def reject(self, defect: Defect, file: str, line: int | None, snippet: bytes | str, unit: str = "line") -> None:
        """Count a defect (or, strict, raise it as a ``LogError``)."""
        if self.strict:
            raise LogError(defect.reason, file, line, defect.kind, unit)
        self.report.add(defect.kind, Example(where(file, line, unit), defect.reason, clip(snippet)))
