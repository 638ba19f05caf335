"""The public API: :func:`parse_rule` and the compiled :class:`Rule` it returns."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .compiler import _compile_bool, _getter
from .errors import RuleError
from .explain import _read_paths, _show_value, _to_source
from .lexer import _tokenize
from .nodes import _And, _Node
from .parser import _Parser
from .values import Env

MAX_LENGTH = 4000        # characters in one rule


@dataclass(frozen=True)
class Rule:
    """A parsed, compiled eligibility rule. Build one with :func:`parse_rule`."""

    source: str
    names: frozenset[str]                   # top-level names the rule reads
    _ast: _Node | None = field(default=None, repr=False, compare=False)
    _fn: Callable[[Env], bool] | None = field(default=None, repr=False, compare=False)
    _conjuncts: tuple[tuple[_Node, Callable[[Env], bool]], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._fn is None:                # Rule(source, names) written by hand: compile it
            parsed = parse_rule(self.source)
            if frozenset(self.names) != parsed.names:
                raise ValueError(f"names of {self.source!r} are {sorted(parsed.names)}, not {sorted(self.names)}")
            for name in ("names", "_ast", "_fn", "_conjuncts"):
                object.__setattr__(self, name, getattr(parsed, name))

    def __reduce__(self) -> tuple[Any, ...]:
        return (parse_rule, (self.source,))

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """Whether the rule holds for ``env``. Never raises: anything unexpected in
        ``env`` makes the rule false."""
        try:
            return self._fn(env) is True    # type: ignore[misc]
        except Exception:  # noqa: BLE001 (documented: never raises; a broken environment denies)
            return False

    def explain(self, env: Mapping[str, Any]) -> str:
        """A short reason, for people: the first false conjunct of a top-level ``and``
        (or the whole rule) with the values of the names it reads, e.g.
        ``tariff in ["super", "smart"] is false (tariff = "basic")``."""
        try:
            if self.evaluate(env):
                return f"{_one_line(self.source)} is true"
            node = self._ast
            for conjunct, fn in self._conjuncts:
                try:
                    holds = fn(env) is True
                except Exception:  # noqa: BLE001 (as in evaluate)
                    holds = False
                if not holds:
                    node = conjunct
                    break
            assert node is not None
            values = ", ".join(f"{'.'.join(p)} = {_show_value(_getter(p)(env))}" for p in _read_paths(node))
            text = _one_line(self.source[node.start:node.end])
            return f"{text} is false ({values})" if values else f"{text} is false"
        except Exception:  # noqa: BLE001 (explaining must not fail a decision)
            return "rule is false"

    def to_source(self) -> str:
        """The rule in canonical form: single spaces, double quotes, minimal parentheses.
        ``parse_rule(rule.to_source())`` is the same rule."""
        assert self._ast is not None
        return _to_source(self._ast)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines())


def parse_rule(source: str) -> Rule:
    """Parse and compile a rule; a :class:`RuleError` says what is wrong and where."""
    if not isinstance(source, str):
        raise TypeError(f"a rule is a string, not {type(source).__name__}")
    return _parse(source)


@functools.lru_cache(maxsize=1024)
def _parse(source: str) -> Rule:
    if len(source) > MAX_LENGTH:
        raise RuleError(f"rule is too long ({len(source)} characters; at most {MAX_LENGTH})", source, MAX_LENGTH)
    ast = _Parser(source, _tokenize(source)).parse()
    names = frozenset(p[0] for p in _read_paths(ast))
    conjuncts = ast.operands if isinstance(ast, _And) else (ast,)
    return Rule(source, names, ast, _compile_bool(ast),
                tuple((c, _compile_bool(c)) for c in conjuncts))
