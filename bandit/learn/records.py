"""The decision record as the learner and the decision log read it from the joined stream.

Most of a record's bytes are the candidate offers' encoded features (``actions``), and
the same few offers come back in every record. They are left as raw JSON
(``msgspec.Raw``): the learner turns each into its VW line once per distinct offer (a
cache keyed by the raw bytes), and the log splices the bytes into its DSJSON line
unchanged (``orjson.Fragment``). Decoding and re-encoding them per event was ~10 % of
the background work per event (docs/benchmarks.md).

Records built in memory (tests, replay) carry plain dicts: both helpers take either.
"""

from __future__ import annotations

import functools
from typing import Any, TypedDict

import msgspec
import orjson

from policies.vwtext import action_line


class _Record(TypedDict, total=False):
    """Every field ``bandit.decide.decider`` writes (a field missing here would be dropped:
    tests/test_decision_log.py checks them against a real decision)."""

    v: Any
    id: Any
    ts: Any
    channel: Any
    sid: Any
    shared: Any
    offers: Any
    actions: list[msgspec.Raw]
    values: Any
    chosen: Any
    pmf: Any
    policy: Any
    model: Any
    k: Any
    defer: Any
    catalog: Any
    known: Any


RECORD_FIELDS = frozenset(_Record.__annotations__)
_decoder = msgspec.json.Decoder(_Record)


def read_record(raw: bytes) -> dict[str, Any]:
    """Raises ValueError (msgspec's errors are ValueErrors) on a malformed record: the
    duties skip such an entry with an error in the service log."""
    return _decoder.decode(raw)   # type: ignore[return-value]


def action_lines(actions: list[Any]) -> list[str]:
    return [_raw_action_line(bytes(a)) if isinstance(a, msgspec.Raw) else action_line(a) for a in actions]


def action_json(action: Any) -> Any:
    """What orjson writes for an action: its raw JSON as it is, or the dict."""
    return orjson.Fragment(bytes(action)) if isinstance(action, msgspec.Raw) else action


@functools.lru_cache(maxsize=4096)
def _raw_action_line(raw: bytes) -> str:
    encoded = orjson.loads(raw)
    if not isinstance(encoded, dict):
        raise TypeError("an action is not a JSON object")
    return action_line(encoded)
