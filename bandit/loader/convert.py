"""Per-value converters, by the feature schema's declared type."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from policies.vwtext import FeatureError

_MAX_EXACT_INT = 2**53     # beyond this a number becomes a float, as in the feature schema


def _number(text: str) -> int | float:
    """A finite number written in ``text`` (an int when integral and exact); raises
    ValueError. Accepts what float() does, except NaN, infinities, underscores and
    non-ASCII digits."""
    try:
        value: int | float = int(text)
    except ValueError:
        value = float(text)
        if not math.isfinite(value) or "_" in text or not text.isascii():
            raise ValueError(text) from None
        if value.is_integer() and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return int(value)
        return value
    if "_" in text or not text.isascii():
        raise ValueError(text)
    if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
        return value
    return float(value)


_NUMBER_START = frozenset("0123456789+-. \t")


def _guess(cell: str) -> int | float | str | None:
    """An undeclared CSV cell: a number when it reads as one, else the text; None
    (left out) when empty."""
    if not cell:
        return None
    if cell[0] in _NUMBER_START:
        try:
            return _number(cell)
        except ValueError:
            pass
    return cell


def _text(name: str, value: Any) -> str | None:
    """A categorical or text value as a string (numbers as their shortest text, as the
    feature schema writes categories); None for an empty string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise FeatureError(name, "numeric values must be finite")
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    if isinstance(value, decimal.Decimal):
        return _text(name, float(value))
    if isinstance(value, (dt.date, dt.time)):   # datetime is a date
        return value.isoformat()
    raise FeatureError(name, f"expected a string or number, got {_kind(value)}")


def _numeric(name: str, value: Any) -> int | float | None:
    """A declared numeric value: a finite number (int when integral); None for NaN or
    an empty string."""
    if isinstance(value, bool):
        raise FeatureError(name, "expected a number, got a boolean")
    if isinstance(value, int):
        return value if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT else float(value)
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise FeatureError(name, "numeric values must be finite")
        return int(value) if value.is_integer() and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT else value
    if isinstance(value, str):
        if not value:
            return None
        try:
            return _number(value)
        except ValueError:
            raise FeatureError(name, f"expected a number, got {_clip(value)!r}") from None
    raise FeatureError(name, f"expected a number, got {_kind(value)}")


def _split_set(cell: str) -> list[str] | None:
    """'a; b;;c' → ['a', 'b', 'c']: split on ';', stripped, empty items dropped; None
    (left out) when no item is left."""
    return [item for item in map(str.strip, cell.split(";")) if item] or None


def _set(name: str, value: Any) -> list[str] | None:
    """A set value (a list, or one 'a;b;c' string) as a list of strings; None when empty."""
    if isinstance(value, str):
        return _split_set(value)
    if isinstance(value, (list, tuple)):
        return _list_of_text(name, value)
    raise FeatureError(name, f"expected a list or an 'a;b;c' string, got {_kind(value)}")


def _list_of_text(name: str, items: Any) -> list[str] | None:
    """List items as strings (numbers as categories), nulls and empty strings dropped;
    None when none is left."""
    out: list[str] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, (list, tuple, dict)):
            raise FeatureError(name, f"list items must be strings or numbers, got {_kind(item)}")
        if text := _text(name, item):
            out.append(text)
    return out or None


def _native(name: str, value: Any) -> Any:
    """An undeclared Parquet value as JSON can hold it; None for an empty string or NaN."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise FeatureError(name, "numeric values must be finite")
        return value
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, (list, tuple)):
        return _list_of_text(name, value)
    if isinstance(value, decimal.Decimal):
        return _native(name, float(value))
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    raise FeatureError(name, f"cannot store a {_kind(value)} in a profile")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__
