"""The compiler: a syntax tree to nested Python closures, with fast paths for the
common ``name OP constant`` comparisons."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .functions import FUNCTIONS
from .nodes import _And, _Call, _Compare, _Literal, _Name, _Neg, _Node, _Not, _Or
from .values import _BINARY, Env, Evaluator, _eq, _in, _is_number, _neg, _truthy

_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _getter(path: tuple[str, ...]) -> Evaluator:
    """A closure reading one name. A dotted name walks nested mappings; if that finds
    nothing, a flat key spelled with the dots (``"usage.minutes"``) is tried."""
    first = path[0]
    if len(path) == 1:
        return lambda env: env.get(first)
    rest = path[1:]
    flat = ".".join(path)
    missing = object()

    def get_path(env: Env) -> Any:
        value = env.get(first, missing)
        for segment in rest:
            if value.__class__ is dict or isinstance(value, Mapping):
                value = value.get(segment, missing)
            else:
                return env.get(flat)
        return env.get(flat) if value is missing else value
    return get_path


def _is_boolean(node: _Node) -> bool:
    if isinstance(node, (_Compare, _Not, _And, _Or)):
        return True
    if isinstance(node, _Call):
        return FUNCTIONS[node.func].boolean
    return isinstance(node, _Literal) and isinstance(node.value, bool)


def _compile_bool(node: _Node, optimize: bool = True) -> Callable[[Env], bool]:
    """A closure that returns exactly True or False."""
    if _is_boolean(node):
        return _compile(node, optimize)
    if isinstance(node, _Literal):
        constant = _truthy(node.value)
        return lambda env: constant
    f = _compile(node, optimize)

    def truthy(env: Env) -> bool:
        value = f(env)
        return value is not None and value is not False
    return truthy


def _compile(node: _Node, optimize: bool = True) -> Evaluator:
    if isinstance(node, _Literal):
        value = node.value
        return lambda env: value
    if isinstance(node, _Name):
        return _getter(node.path)
    if isinstance(node, _Neg):
        f = _compile(node.operand, optimize)

        def negate(env: Env) -> Any:
            value = f(env)
            cls = value.__class__
            return -value if cls is int or cls is float else _neg(value)
        return negate
    if isinstance(node, _Not):
        g = _compile_bool(node.operand, optimize)
        return lambda env: not g(env)
    if isinstance(node, (_And, _Or)):
        return _compile_junction(node, optimize)
    if isinstance(node, _Compare):
        return _compile_compare(node, optimize)
    if isinstance(node, _Call):
        spec = FUNCTIONS[node.func]
        return spec.build(tuple(_compile(a, optimize) for a in node.args), node.args)
    raise TypeError(f"not a rule node: {node!r}")


def _compile_junction(node: _And | _Or, optimize: bool) -> Evaluator:
    fs = tuple(_compile_bool(o, optimize) for o in node.operands)
    if isinstance(node, _And):
        if len(fs) == 2:
            a, b = fs
            return lambda env: a(env) and b(env)
        if len(fs) == 3:
            a, b, c = fs
            return lambda env: a(env) and b(env) and c(env)
        if len(fs) == 4:
            a, b, c, d = fs
            return lambda env: a(env) and b(env) and c(env) and d(env)

        def all_of(env: Env) -> bool:
            for f in fs:
                if not f(env):
                    return False
            return True
        return all_of
    if len(fs) == 2:
        a, b = fs
        return lambda env: a(env) or b(env)
    if len(fs) == 3:
        a, b, c = fs
        return lambda env: a(env) or b(env) or c(env)

    def any_of(env: Env) -> bool:
        for f in fs:
            if f(env):
                return True
        return False
    return any_of


def _compile_compare(node: _Compare, optimize: bool) -> Evaluator:
    op, left, right = node.op, node.left, node.right
    if optimize:
        if isinstance(left, _Literal) and isinstance(right, _Name) and op in _MIRROR:
            left, right, op = right, left, _MIRROR[op]
        if isinstance(left, _Name) and isinstance(right, _Literal):
            fast = _name_vs_constant(op, _getter(left.path), right.value)
            if fast is not None:
                return fast
        if (isinstance(left, _Literal) and isinstance(left.value, str) and isinstance(right, _Name)
                and op in ("in", "not in")):
            return _constant_in_name(op, left.value, _getter(right.path))
    fn = _BINARY[op]
    fa, fb = _compile(left, optimize), _compile(right, optimize)
    return lambda env: fn(fa(env), fb(env))


def _name_vs_constant(op: str, get: Evaluator, c: Any) -> Evaluator | None:
    """Closures for the common ``name OP constant``: exact-type fast paths, falling back
    to the general functions for anything unusual. None: no special case."""
    if op in ("==", "!="):
        if c is None or isinstance(c, bool):
            if op == "==":
                return lambda env: get(env) is c
            return lambda env: get(env) is not c
        if isinstance(c, str):
            if op == "==":
                return lambda env: get(env) == c      # a str equals only a str
            return lambda env: get(env) != c
        if _is_number(c):
            if op == "==":
                def eq_number(env: Env) -> bool:
                    v = get(env)
                    cls = v.__class__
                    return v == c if cls is int or cls is float else _eq(v, c)
                return eq_number

            def ne_number(env: Env) -> bool:
                v = get(env)
                cls = v.__class__
                return v != c if cls is int or cls is float else not _eq(v, c)
            return ne_number
        return None
    if op in ("<", "<=", ">", ">="):
        if isinstance(c, str):
            return _ordering(op, get, c, str, str)
        if _is_number(c):
            return _ordering(op, get, c, int, float)
        return lambda env: False                      # nothing orders against null, booleans or lists
    # in / not in
    if isinstance(c, tuple):
        if all(isinstance(v, str) for v in c):
            members = frozenset(c)
            if op == "in":
                return lambda env: isinstance(v := get(env), str) and v in members
            return lambda env: not (isinstance(v := get(env), str) and v in members)
        if all(_is_number(v) for v in c):
            numbers = frozenset(c)
            positive = op == "in"

            def in_numbers(env: Env) -> bool:
                v = get(env)
                cls = v.__class__
                found = v in numbers if cls is int or cls is float else _in(v, c)
                return found if positive else not found
            return in_numbers
        return None
    if isinstance(c, str):
        if op == "in":
            return lambda env: isinstance(v := get(env), str) and v in c
        return lambda env: not (isinstance(v := get(env), str) and v in c)
    constant = op == "not in"                         # nothing is in null, a number or a boolean
    return lambda env: constant


def _ordering(op: str, get: Evaluator, c: Any, t1: type, t2: type) -> Evaluator:
    slow = _BINARY[op]
    if op == "<":
        def lt(env: Env) -> bool:
            v = get(env)
            cls = v.__class__
            return v < c if cls is t1 or cls is t2 else slow(v, c)
        return lt
    if op == "<=":
        def le(env: Env) -> bool:
            v = get(env)
            cls = v.__class__
            return v <= c if cls is t1 or cls is t2 else slow(v, c)
        return le
    if op == ">":
        def gt(env: Env) -> bool:
            v = get(env)
            cls = v.__class__
            return v > c if cls is t1 or cls is t2 else slow(v, c)
        return gt

    def ge(env: Env) -> bool:
        v = get(env)
        cls = v.__class__
        return v >= c if cls is t1 or cls is t2 else slow(v, c)
    return ge


def _constant_in_name(op: str, c: str, get: Evaluator) -> Evaluator:
    """``"roaming" in recent_reasons``: a string constant in whatever the name holds."""
    positive = op == "in"

    def contains(env: Env) -> bool:
        y = get(env)
        cls = y.__class__
        if cls is list or cls is set or cls is frozenset or cls is tuple or cls is dict or cls is str:
            found = c in y
        else:
            found = _in(c, y)
        return found if positive else not found
    return contains
