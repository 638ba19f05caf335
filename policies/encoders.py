"""The encoders of declared features, one per type and transform, under the field's
``log:`` marking (docs/features.md, "Types" and "Personal data"): what
``FeatureSchema.encode`` calls for each declared field present in a profile or context."""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from policies.text import tokenize
from policies.vwtext import Encoded, FeatureError, escape

if TYPE_CHECKING:
    from policies.schema import FeatureSpec

KeyedHash = Callable[[str], str]
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_MAX_EXACT_INT = 2**53


# (value, the namespace's tokens, the keyed hash); an encoder in clear ignores the hash
Encoder = Callable[[Any, Encoded, "KeyedHash | None"], None]


def feature_encoder(spec: FeatureSpec) -> Encoder:
    """The declared feature's encoder under its ``log:`` marking: in clear, hashed term by
    term, or checked and dropped."""
    clear = _encoder(spec)
    if spec.log == "drop":
        def dropped(value: Any, out: Encoded, keyed: KeyedHash | None) -> None:
            clear(value, {})   # a value of the wrong type is still refused
        return dropped
    if spec.log == "hash":
        terms, key = _terms(spec), escape(spec.name)
        one = 1 if spec.weight == 1 else spec.weight

        def hashed(value: Any, out: Encoded, keyed: KeyedHash | None) -> None:
            for term in terms(value):
                out[f"{key}={keyed(term)}"] = one   # type: ignore[misc]  # hex digits: nothing to escape
        return hashed
    return clear


def _terms(spec: FeatureSpec) -> Callable[[Any], Sequence[str]]:
    """The values a categorical, set or text feature makes tokens of, before escaping."""
    name = spec.name
    if spec.type == "categorical":
        return lambda value: (_category(name, value),)
    if spec.type == "set":
        return lambda value: _items(name, value)
    if spec.type == "text":
        return lambda value: tokenize(_text(name, value))
    raise AssertionError(f"{spec.type} features are not hashed")


def _encoder(spec: FeatureSpec) -> Encoder:
    """The function adding one declared feature's tokens to its namespace, in clear."""
    name, key = spec.name, escape(spec.name)
    one = 1 if spec.weight == 1 else spec.weight

    if spec.type == "categorical":
        def categorical(value: Any, out: Encoded, keyed: KeyedHash | None = None) -> None:
            out[f"{key}={escape(_category(name, value))}"] = one
        return categorical

    if spec.type == "set":
        def set_(value: Any, out: Encoded, keyed: KeyedHash | None = None) -> None:
            for item in _items(name, value):
                out[f"{key}={escape(item)}"] = one
        return set_

    if spec.type == "text":
        def text(value: Any, out: Encoded, keyed: KeyedHash | None = None) -> None:
            for term in tokenize(_text(name, value)):
                out[f"{key}={escape(term)}"] = one
        return text

    if spec.transform == "bucket":
        edges, labels = spec.buckets, _bucket_labels(spec.buckets)

        def bucket(value: Any, out: Encoded, keyed: KeyedHash | None = None) -> None:
            out[f"{key}={escape(labels[bisect.bisect_right(edges, _number(name, value))])}"] = one
        return bucket

    if spec.transform == "log":
        def log(value: Any, out: Encoded, keyed: KeyedHash | None = None) -> None:
            x = float(_number(name, value))
            out[key] = math.copysign(math.log1p(abs(x)), x) * spec.weight
        return log

    def numeric(value: Any, out: Encoded, keyed: KeyedHash | None = None) -> None:
        x = _number(name, value)
        out[key] = x if spec.weight == 1 else float(x) * spec.weight
    return numeric


def _number(name: str, value: Any) -> int | float:
    """A finite number, or a string holding one (profiles loaded from CSV or Redis
    hashes carry numbers as text). Integers beyond 2**53 become floats, as in vwtext."""
    if isinstance(value, bool):
        raise FeatureError(name, "expected a number, got bool")
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            raise FeatureError(name, f"expected a number, got the string {value[:40]!r}")
        try:
            value = int(text) if _INTEGER.fullmatch(text) else float(text)
        except ValueError:   # more digits than int() takes
            raise FeatureError(name, "number too large") from None
    if isinstance(value, int):
        if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return value
        try:
            value = float(value)
        except OverflowError:
            raise FeatureError(name, "number too large") from None
    if not isinstance(value, float):
        raise FeatureError(name, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise FeatureError(name, "numeric values must be finite")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise FeatureError(name, f"expected text (a string), got {type(value).__name__}")
    return value


def _category(name: str, value: Any) -> str:
    """A string as it is; true/false for a boolean (as vwtext); a number as its shortest
    text, integral floats without ".0" (so 3 and 3.0 are one category)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:   # more digits than str() writes
            raise FeatureError(name, "number too large") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FeatureError(name, "numeric values must be finite")
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    raise FeatureError(name, f"expected a string or number, got {type(value).__name__}")


def _items(name: str, value: Any) -> list[str]:
    """A list of strings (or numbers, as categories), or one string split on ';';
    items in first-occurrence order, each once; empty items are dropped."""
    if isinstance(value, str):
        items: Sequence[Any] = [item.strip() for item in value.split(";")]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise FeatureError(name, f"expected a list of strings or a 'a;b;c' string, got {type(value).__name__}")
    out: dict[str, None] = {}
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise FeatureError(name, f"set items must be strings, got {type(item).__name__}")
        text = _category(name, item)
        if text:
            out[text] = None
    return list(out)


def _bucket_labels(edges: tuple[float, ...]) -> list[str]:
    """Half-open ranges [lo, hi): ``..e0``, ``e0..e1``, ..., ``eN..``."""
    bounds = [_edge_text(e) for e in edges]
    return [f"..{bounds[0]}", *(f"{lo}..{hi}" for lo, hi in itertools.pairwise(bounds)), f"{bounds[-1]}.."]


def _edge_text(edge: float) -> str:
    return str(int(edge)) if float(edge).is_integer() and abs(edge) < 2**63 else repr(float(edge))
