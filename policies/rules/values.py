"""Value semantics: ``==``, ordering, ``in`` and truthiness as the rule language
defines them, for any values an environment may hold. Never raise for plain data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]

_NUMBER = (int, float)
_COLLECTION = (list, tuple, set, frozenset, dict)
_SIZED = (str, list, tuple, set, frozenset, dict)
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_MAX_EQ_DEPTH = 32


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and value.__class__ is not bool


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def _eq(a: Any, b: Any, depth: int = 0) -> bool:
    """``==``: equal values of the same kind; int and float compare together, booleans
    are not numbers, lists compare item by item. Never raises for plain data."""
    cls = a.__class__
    if cls is b.__class__ and cls in _SCALAR_TYPES:
        return a == b
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return False                        # (same-class None/bool handled above)
    if isinstance(a, str):
        return isinstance(b, str) and str.__eq__(a, b)
    if isinstance(a, _NUMBER):
        return isinstance(b, _NUMBER) and bool(a == b)
    if depth > _MAX_EQ_DEPTH:
        return False
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_eq(x, y, depth + 1) for x, y in zip(a, b)))
    if isinstance(a, Mapping):
        return (isinstance(b, Mapping) and len(a) == len(b)
                and all(k in b and _eq(v, b[k], depth + 1) for k, v in a.items()))
    if isinstance(a, (set, frozenset)):
        return isinstance(b, (set, frozenset)) and bool(a == b)
    return cls is b.__class__ and bool(a == b)


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _orderable(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        return isinstance(b, str)
    return _is_number(a) and _is_number(b)


def _lt(a: Any, b: Any) -> bool:
    return _orderable(a, b) and bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _orderable(a, b) and bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    return _orderable(a, b) and bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return _orderable(a, b) and bool(a >= b)


def _in(x: Any, y: Any) -> bool:
    """``x in y``: membership in a list/set/mapping (by ``==``), substring in a string,
    false for anything else."""
    if y is None:
        return False
    if isinstance(y, str):
        return isinstance(x, str) and str.__contains__(y, x)
    if isinstance(y, (list, tuple, set, frozenset, Mapping)):
        if x.__class__ is str:
            return x in y                   # a str equals only a str
        return any(_eq(x, item) for item in y)
    return False


def _not_in(x: Any, y: Any) -> bool:
    return not _in(x, y)


def _neg(value: Any) -> Any:
    return -value if _is_number(value) else None


_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "==": _eq, "!=": _ne, "<": _lt, "<=": _le, ">": _gt, ">=": _ge, "in": _in, "not in": _not_in}
