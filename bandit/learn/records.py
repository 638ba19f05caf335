"""The decision record's candidate features as the learner and the decision log use them.

Most of a record's bytes are the candidate offers' encoded features (``actions``), and
the same few offers come back in every record. They are left as raw JSON
(``msgspec.Raw``, see ``bandit.decide.record``): the learner turns each into its VW line
once per distinct offer (a cache keyed by the raw bytes), and the log splices the bytes
into its DSJSON line unchanged (``orjson.Fragment``). Decoding and re-encoding them per
event was ~10 % of the background work per event (bench/NOTES.md).
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
import orjson

from policies.vwtext import action_line


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
