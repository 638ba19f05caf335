"""The decision record: one typed, versioned value that the decider writes, the Lua
scripts store as bytes, the joined stream carries, and the learner, the log and the
analytics read. Nothing reads it by string keys.

Version 2 (this release) has ``slots``: what each slot showed and the PMF it was drawn
from, given the slots before it. Version 1 (the release before) had one ``chosen`` and
one ``pmf``; such a record, still pending in Redis at an upgrade, reads as a one-slot
version 2 record, so it is joined, learned and logged as before.

The candidates' encoded features (``actions``) stay raw JSON (``msgspec.Raw``): the same
few offers come back in every record, and the learner caches their VW lines by these
bytes while the log splices them into DSJSON unchanged (``bandit.learn.records``).
"""

from __future__ import annotations

from typing import Any

import msgspec

RECORD_VERSION = 2


class SlotChoice(msgspec.Struct, frozen=True):
    """One slot: the candidate shown (an index into ``offers``) and the PMF it was drawn
    from, over every candidate, zero on those shown in earlier slots."""

    chosen: int
    pmf: list[float]

    @property
    def probability(self) -> float:
        return self.pmf[self.chosen]


class DecisionRecord(msgspec.Struct, omit_defaults=True):
    ts: int                                  # decided at, ms since the epoch (the process's clock)
    channel: str
    offers: list[str]                        # candidate ids, in the order the model saw them
    actions: list[msgspec.Raw]               # each candidate's encoded features (JSON)
    shared: dict[str, dict[str, Any]]        # the encoded shared features, by namespace
    model: str                               # the model state that predicted (version.learned)
    id: str = ""                             # the event id (the joined stream carries it too)
    values: list[float] = []                 # each candidate's business value
    slots: list[SlotChoice] = []
    v: int = RECORD_VERSION
    sid: str | None = None                   # keyed hash of the subscriber id
    policy: str = "model"                    # model | control
    k: int = 1                               # length of the deprecated ``ranking`` alias
    defer: bool = False
    catalog: int | None = None
    known: bool | None = None                # the subscriber had a profile (None: no subscriber id)
    chosen: int | None = None                # version 1 only: the one slot's offer
    pmf: list[float] | None = None           # version 1 only: its PMF

    def __post_init__(self) -> None:
        if not self.slots:
            if self.chosen is None or self.pmf is None:
                raise msgspec.ValidationError("a decision record needs `slots` (or, version 1, `chosen` and `pmf`)")
            self.slots = [SlotChoice(self.chosen, self.pmf)]
            self.chosen = self.pmf = None
        for slot in self.slots:
            if not 0 <= slot.chosen < len(self.offers) or len(slot.pmf) != len(self.offers):
                raise msgspec.ValidationError("a slot's offer or PMF does not match the candidates")

    @property
    def shown(self) -> list[str]:
        """The offers shown, slot by slot."""
        return [self.offers[slot.chosen] for slot in self.slots]


class _SlotBrief(msgspec.Struct):
    chosen: int


class DecisionBrief(msgspec.Struct):
    """The few fields the dashboard's counting needs: decoding only these skips the
    features and PMFs, most of a record's bytes and objects."""

    channel: str
    offers: list[str]
    ts: int = 0
    policy: str = "model"
    slots: list[_SlotBrief] = []
    chosen: int | None = None    # version 1

    @property
    def first_offer(self) -> str:
        """Slot 1's offer: the one the dashboard counts an event under."""
        return self.offers[self.slots[0].chosen if self.slots else self.chosen]   # type: ignore[index]


_decoder = msgspec.json.Decoder(DecisionRecord)
_brief_decoder = msgspec.json.Decoder(DecisionBrief)
_encoder = msgspec.json.Encoder()


def read_record(raw: bytes) -> DecisionRecord:
    """Raises ValueError (msgspec's errors are ValueErrors) on a malformed record: the
    duties skip such an entry with an error in the service log."""
    return _decoder.decode(raw)


def read_brief(raw: bytes) -> DecisionBrief | None:
    """None for a malformed record (the counting skips it with a warning)."""
    try:
        return _brief_decoder.decode(raw)
    except msgspec.MsgspecError:
        return None


def encode_record(record: DecisionRecord) -> bytes:
    return _encoder.encode(record)
