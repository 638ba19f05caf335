"""A rule read against the feature schema, before it ships: a name the schema does not
declare (``balanse >= 0`` for ``balance``) makes the offer ineligible for everyone at
run time, since a missing feature is ``null``; a comparison of a feature with a literal
of the wrong kind (``tariff > 3``, ``arpu == "high"``) is false for every subscriber.
Both are refused when the catalog loads and when an offer is saved."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from .explain import _walk
from .nodes import _Compare, _Literal, _Name
from .rule import Rule

# What every decision's rule environment has besides the schema's features: the channel,
# and ``services`` (the subscriber's, with the offers accepted since; has_service reads it).
BUILTIN_TYPES = {"channel": "categorical", "services": "set"}
_ORDERING = ("<", "<=", ">", ">=")
_TEXT = ("categorical", "text")


def rule_problem(rule: Rule, types: Mapping[str, str]) -> str | None:
    """Why ``rule`` cannot work with features of these ``types`` (name → schema type:
    categorical, numeric, set, text), or None. An empty ``types`` (a schema that declares
    nothing) checks nothing: there is nothing to check against."""
    if not types:
        return None
    known = {**types, **BUILTIN_TYPES}
    assert rule._ast is not None
    for node in _walk(rule._ast):
        if isinstance(node, _Name) and _type_of(node, known) is None:
            return _unknown(node, known)
        if isinstance(node, _Compare):
            problem = _mismatch(node, known)
            if problem is not None:
                return problem
    return None


def _type_of(node: _Name, known: Mapping[str, str]) -> str | None:
    """A dotted name reads inside a nested field, or a field keyed by the whole dotted text."""
    whole = ".".join(node.path)
    if whole in known:
        return known[whole]
    return "nested" if node.path[0] in known else None


def _unknown(node: _Name, known: Mapping[str, str]) -> str:
    whole = ".".join(node.path)
    close = difflib.get_close_matches(whole, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    names = sorted(known)
    listed = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
    return (f"unknown feature {whole!r}{hint}: the feature schema declares {listed}; a feature it does "
            "not declare is null for every subscriber (declare it under features.subscriber or features.context)")


def _mismatch(node: _Compare, known: Mapping[str, str]) -> str | None:
    for name, literal in ((node.left, node.right), (node.right, node.left)):
        if not (isinstance(name, _Name) and isinstance(literal, _Literal)) or literal.value is None:
            continue
        kind, field = _type_of(name, known), ".".join(name.path)
        values = literal.value if isinstance(literal.value, tuple) else (literal.value,)
        if not values:
            continue
        if kind == "numeric" and all(isinstance(v, str) for v in values):
            return f"{field!r} is numeric: comparing it with {_shown(literal)} is false for every subscriber"
        if kind in _TEXT and all(_is_number(v) for v in values):
            return (f"{field!r} is {kind} (text): comparing it with {_shown(literal)} is false for every "
                    "subscriber; quote the value")
        if kind == "set" and node.op in _ORDERING:
            return f"{field!r} is a set: use has_service(...) or \"x\" in {field}, not {node.op!r}"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(literal: _Literal) -> str:
    value = literal.value
    if isinstance(value, tuple):
        return "[" + ", ".join(_shown(_Literal(v)) for v in value) + "]"
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else repr(value)


__all__ = ["BUILTIN_TYPES", "rule_problem"]
