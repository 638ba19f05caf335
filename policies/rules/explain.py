"""Printing rules and values for people: canonical source text (``to_source``), the
names a rule reads, and short renderings of values (``explain``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .nodes import _And, _Call, _Compare, _Literal, _Name, _Neg, _Node, _Not, _Or
from .values import _is_number

_PRECEDENCE = {_Or: 1, _And: 2, _Not: 3, _Compare: 4, _Neg: 5}


def _precedence(node: _Node) -> int:
    value = getattr(node, "value", None)
    if _is_number(value) and (value < 0 or (isinstance(value, float) and math.copysign(1.0, value) < 0)):
        return 5                                # printed with a leading '-'
    return _PRECEDENCE.get(type(node), 6)


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch < " " or ch == "\x7f" or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _literal_source(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_literal_source(v) for v in value) + "]"
    return repr(value)


def _to_source(node: _Node) -> str:
    def wrap(child: _Node, minimum: int) -> str:
        text = _to_source(child)
        return text if _precedence(child) >= minimum else f"({text})"

    if isinstance(node, _Literal):
        return _literal_source(node.value)
    if isinstance(node, _Name):
        return ".".join(node.path)
    if isinstance(node, _Neg):
        return "-" + wrap(node.operand, 5)
    if isinstance(node, _Not):
        return "not " + wrap(node.operand, 5)      # `not (a == b)` reads better than `not a == b`
    if isinstance(node, _And):
        return " and ".join(wrap(o, 3) for o in node.operands)
    if isinstance(node, _Or):
        return " or ".join(wrap(o, 2) for o in node.operands)
    if isinstance(node, _Compare):
        return f"{wrap(node.left, 5)} {node.op} {wrap(node.right, 5)}"
    if isinstance(node, _Call):
        return f"{node.func}({', '.join(_to_source(a) for a in node.args)})"
    raise TypeError(f"not a rule node: {node!r}")


def _walk(node: _Node) -> list[_Node]:
    nodes = [node]
    for child in (getattr(node, "operand", None), getattr(node, "left", None), getattr(node, "right", None)):
        if child is not None:
            nodes.extend(_walk(child))
    for child in getattr(node, "operands", ()) + getattr(node, "args", ()):
        nodes.extend(_walk(child))
    return nodes


def _read_paths(node: _Node) -> list[tuple[str, ...]]:
    """The names a node reads, in order of appearance, without repeats."""
    paths: dict[tuple[str, ...], None] = {}
    for n in _walk(node):
        if isinstance(n, _Name):
            paths[n.path] = None
        elif isinstance(n, _Call) and n.func == "has_service":
            paths[("services",)] = None
    return list(paths)


def _show_value(value: Any, budget: int = 60) -> str:
    try:
        text = _show(value, 0)
    except Exception:  # noqa: BLE001 (an unprintable object: say what it is)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= budget else text[:budget - 1] + "…"


def _show(value: Any, depth: int) -> str:
    if value is None or isinstance(value, (bool, str)):
        return _literal_source(value)
    if _is_number(value):
        return repr(value) if not isinstance(value, int) or abs(value) < 10 ** 30 else "<large integer>"
    if depth > 3:
        return "…"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v, depth + 1) for v in value[:10]) + (", …" if len(value) > 10 else "") + "]"
    if isinstance(value, (set, frozenset)):
        return "[" + ", ".join(sorted(_show(v, depth + 1) for v in value)) + "]"
    if isinstance(value, Mapping):
        items = list(value.items())
        return ("{" + ", ".join(f"{_show(k, depth + 1)}: {_show(v, depth + 1)}" for k, v in items[:10])
                + (", …" if len(items) > 10 else "") + "}")
    return f"<{type(value).__name__}>"
