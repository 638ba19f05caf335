"""The syntax tree the parser builds: small frozen dataclasses that remember where in
the rule text they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class _Node:
    start: int = field(default=0, compare=False, repr=False, kw_only=True)
    end: int = field(default=0, compare=False, repr=False, kw_only=True)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "list[" + ",".join(_kind(v) for v in value) + "]"
    return type(value).__name__


@dataclass(frozen=True)
class _Literal(_Node):
    value: Any                                      # str, int, float, bool, None, or a tuple of those
    kind: str = field(init=False, repr=False)       # so that `true` and `1` are different literals

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _kind(self.value))


@dataclass(frozen=True)
class _Name(_Node):
    path: tuple[str, ...]


@dataclass(frozen=True)
class _Neg(_Node):
    operand: _Node


@dataclass(frozen=True)
class _Not(_Node):
    operand: _Node


@dataclass(frozen=True)
class _And(_Node):
    operands: tuple[_Node, ...]


@dataclass(frozen=True)
class _Or(_Node):
    operands: tuple[_Node, ...]


@dataclass(frozen=True)
class _Compare(_Node):
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Call(_Node):
    func: str
    args: tuple[_Node, ...]
