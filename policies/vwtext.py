"""Encode features for Vowpal Wabbit, once, in one way the service, the learner,
the decision log and replay all share.

A namespace's features are encoded into ``{token: value}``, which is both VW's JSON
feature form (what the DSJSON decision log stores under ``c``) and, token by token,
VW's text form (what the service parses, as it is faster). Both hash to identical
weights, so ``vw --dsjson`` on the log trains exactly the model the service trained.

VW's text format has no escape syntax: a space or tab ends a feature, ``|`` starts a
namespace, ``:`` separates a value and a newline ends the example; its JSON parser
ignores keys that start with ``_``. Names and values are therefore percent-encoded
(a bijection, so two different features never collide) for those characters, ``%``
itself, ``=`` (our name/value separator), a leading ``_``, and every other whitespace
or control character.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Union

FeatureValue = Union[str, int, float, bool, None, Sequence[str]]
Features = Mapping[str, FeatureValue]
Encoded = dict[str, float]                 # one namespace: token → value
EncodedShared = dict[str, Encoded]         # namespace → tokens

CONTEXT_NAMESPACE = "Context"
SUBSCRIBER_NAMESPACE = "Subscriber"
ACTION_NAMESPACE = "Offer"


def _escape_table() -> dict[int, str]:
    special = {ord(c) for c in "%|:= "}
    special |= set(range(0x00, 0x20)) | {0x7F}
    special |= {cp for cp in range(0x80, 0x3100) if chr(cp).isspace()}
    special |= {0xFEFF, 0x2028, 0x2029}
    return {cp: "".join(f"%{b:02X}" for b in chr(cp).encode("utf-8")) for cp in special}


_ESCAPES = _escape_table()


@functools.lru_cache(maxsize=1 << 16)
def escape(token: str) -> str:
    """Make any Unicode string safe as (part of) one VW feature name. Cached: names
    and categorical values repeat across decisions."""
    escaped = token.translate(_ESCAPES)
    return "%5F" + escaped[1:] if escaped.startswith("_") else escaped


class FeatureError(ValueError):
    """A feature value that cannot be encoded; ``name`` says which."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"feature {name!r}: {reason}")
        self.name = name
        self.reason = reason


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise FeatureError(name, "numeric values must be finite")
    return value


def _as_float(name: str, value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise FeatureError(name, "number too large") from None


def encode_features(features: Features) -> Encoded:
    """str → ``name=value``: 1; number → ``name``: value; bool → ``name=true|false``: 1;
    list of str → one ``name=item``: 1 per item (a set); None → absent."""
    encoded: Encoded = {}
    for name, value in features.items():
        key = escape(name) or "%"   # an empty name would vanish from the text form; "%" alone is never an escape
        if value is None:
            continue
        if isinstance(value, bool):
            encoded[f"{key}={'true' if value else 'false'}"] = 1
        elif isinstance(value, str):
            encoded[f"{key}={escape(value)}"] = 1
        elif isinstance(value, int):
            encoded[key] = value if -(2**53) <= value <= 2**53 else _finite(name, _as_float(name, value))
        elif isinstance(value, float):
            encoded[key] = _finite(name, value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, str):
                    raise FeatureError(name, "list items must be strings")
                encoded[f"{key}={escape(item)}"] = 1
        else:
            raise FeatureError(name, f"expected a string, number, boolean, null or list of strings, "
                                     f"got {type(value).__name__}")
    return encoded


def encode_offer(offer_id: str, features: Features) -> Encoded:
    """The offer id is always a feature, so offers with equal features are told apart."""
    return {f"id={escape(offer_id)}": 1, **encode_features(features)}


def namespace_text(namespace: str, encoded: Encoded) -> str:
    tokens = [name if value == 1 else f"{name}:{value!r}" for name, value in encoded.items()]
    return f"|{namespace} {' '.join(tokens)}" if tokens else f"|{namespace}"


def shared_line(shared: EncodedShared) -> str:
    return "shared " + " ".join(namespace_text(ns, encoded) for ns, encoded in shared.items())


def action_line(encoded_offer: Encoded) -> str:
    return namespace_text(ACTION_NAMESPACE, encoded_offer)


def adf_example(shared: str, actions: Sequence[str], label: tuple[int, float, float] | None = None) -> list[str]:
    """The multi-line example from a shared line and action lines;
    ``label`` = (chosen index, cost, probability) when learning."""
    if label is None:
        return [shared, *actions]
    chosen, cost, probability = label
    lines = [shared]
    for index, line in enumerate(actions):
        lines.append(f"0:{cost!r}:{probability!r} {line}" if index == chosen else line)
    return lines
