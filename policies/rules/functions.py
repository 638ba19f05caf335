"""The whitelisted functions a rule may call (:data:`FUNCTIONS`), their parameter
kinds (checked on literal arguments when the rule is parsed) and implementations."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from .nodes import _Literal, _Node
from .values import _COLLECTION, _NUMBER, _SIZED, Env, Evaluator, _in


class _Function(NamedTuple):
    params: tuple[str, ...]                 # "string", "list" or "any": checked on literal arguments
    boolean: bool                           # always returns true or false
    build: Callable[[tuple[Evaluator, ...], tuple[_Node, ...]], Evaluator]
    doc: str


def _build_has_service(fns: tuple[Evaluator, ...], nodes: tuple[_Node, ...]) -> Evaluator:
    (arg,), (node,) = fns, nodes
    if isinstance(node, _Literal):
        name = node.value

        def has_service_literal(env: Env) -> bool:
            services = env.get("services")
            return isinstance(services, _COLLECTION) and name in services
        return has_service_literal

    def has_service(env: Env) -> bool:
        wanted = arg(env)
        services = env.get("services")
        return isinstance(wanted, str) and isinstance(services, _COLLECTION) and wanted in services
    return has_service


def _has_any(x: Any, values: Any) -> bool:
    if x is None or not isinstance(values, _COLLECTION):
        return False
    if isinstance(x, _COLLECTION):
        return any(_in(item, values) for item in x)
    return _in(x, values)


def _has_all(x: Any, values: Any) -> bool:
    return isinstance(x, _COLLECTION) and isinstance(values, _COLLECTION) and all(_in(v, x) for v in values)


def _length(x: Any) -> Any:
    return len(x) if isinstance(x, _SIZED) else None


def _lower(x: Any) -> Any:
    return str.lower(x) if isinstance(x, str) else None


def _starts_with(x: Any, prefix: Any) -> bool:
    return isinstance(x, str) and isinstance(prefix, str) and str.startswith(x, prefix)


_clock: Callable[[], float] = time.time     # tests replace it


def _timestamp(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _days_since(x: Any) -> Any:
    try:
        if x is None or x.__class__ is bool:
            return None
        if isinstance(x, _NUMBER):
            seconds = float(x)
        elif isinstance(x, str):
            if len(x) > 64:
                return None
            seconds = _timestamp(datetime.fromisoformat(x))
        elif isinstance(x, datetime):
            seconds = _timestamp(x)
        elif isinstance(x, date):
            seconds = _timestamp(datetime(x.year, x.month, x.day))
        else:
            return None
        return (_clock() - seconds) / 86400.0
    except (ValueError, OverflowError, OSError, TypeError):
        return None


def _unary(impl: Callable[[Any], Any]) -> Callable[[tuple[Evaluator, ...], tuple[_Node, ...]], Evaluator]:
    def build(fns: tuple[Evaluator, ...], nodes: tuple[_Node, ...]) -> Evaluator:
        (f,) = fns
        return lambda env: impl(f(env))
    return build


def _binary(impl: Callable[[Any, Any], Any]) -> Callable[[tuple[Evaluator, ...], tuple[_Node, ...]], Evaluator]:
    def build(fns: tuple[Evaluator, ...], nodes: tuple[_Node, ...]) -> Evaluator:
        f, g = fns
        return lambda env: impl(f(env), g(env))
    return build


FUNCTIONS: dict[str, _Function] = {
    "has_service": _Function(("string",), True, _build_has_service,
                             "the subscriber's `services` list contains the name"),
    "has_any": _Function(("any", "list"), True, _binary(_has_any),
                         "the value (or, for a list, one of its items) is one of the values"),
    "has_all": _Function(("any", "list"), True, _binary(_has_all),
                         "the value is a list that contains every one of the values"),
    "contains": _Function(("any", "any"), True, _binary(lambda x, y: _in(y, x)),
                          "`contains(x, y)` is `y in x`"),
    "starts_with": _Function(("string", "string"), True, _binary(_starts_with),
                             "the string starts with the prefix"),
    "len": _Function(("any",), False, _unary(_length),
                     "length of a string, list or mapping, else null"),
    "lower": _Function(("string",), False, _unary(_lower), "the string in lower case, else null"),
    "days_since": _Function(("any",), False, _unary(_days_since),
                            "days (fractional) from an ISO-8601 date/time or Unix seconds to now, else null"),
}


def _literal_fits(value: Any, param: str) -> bool:
    if param == "string":
        return isinstance(value, str)
    if param == "list":
        return isinstance(value, tuple)
    return True
