"""Eligibility rules: the small declarative language the offer catalog uses to say who
may get an offer, e.g. ``tariff in ["super", "smart"] and not has_service("home_cities")``.

A rule is parsed once, when the catalog loads (so a mistake is a :class:`RuleError` that
points at the line and column then, not at decision time), and compiled into nested
Python closures, so evaluating it on every decision walks no tree and never raises.

The rule text is never given to ``eval``/``exec``/``compile``/``ast``: a hand-written
tokenizer and a recursive-descent parser read it, and only the fixed set of functions
in :data:`FUNCTIONS` can be called. The language reference is ``docs/rules.md``.

Semantics in one paragraph: names are looked up in the environment (a mapping; dotted
names walk nested mappings); a missing name is ``null``. ``==``/``!=`` compare values of
the same kind (booleans are not numbers: ``true == 1`` is false). Ordering (``<`` ``<=``
``>`` ``>=``) is defined only between two numbers or two strings, and is false otherwise.
``x in y`` is membership when ``y`` is a list, set or mapping (its keys), substring when
both are strings, and false otherwise. ``and``/``or``/``not`` treat ``null`` and
``false`` as false and every other value as true.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "Rule", "RuleError", "parse_rule"]

MAX_LENGTH = 4000        # characters in one rule
MAX_DEPTH = 64           # nested parentheses, calls, `not`s and unary minuses
_SNIPPET = 100           # an error shows at most this many characters of the line

Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NUMBER = (int, float)
_COLLECTION = (list, tuple, set, frozenset, dict)
_SIZED = (str, list, tuple, set, frozenset, dict)
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_MAX_EQ_DEPTH = 32


# --------------------------------------------------------------------------- errors

class RuleError(ValueError):
    """A rule that cannot be parsed. ``position`` is the 0-based offset of the problem in
    the rule text, ``line`` and ``column`` are 1-based; ``reason`` is the message without
    the location, and ``str(error)`` quotes the line with a caret under the problem."""

    def __init__(self, reason: str, source: str, position: int) -> None:
        position = max(0, min(position, len(source)))
        line, column = _line_column(source, position)
        line_start = position - column + 1
        line_end = source.find("\n", position)
        text = source[line_start:line_end if line_end >= 0 else len(source)]
        snippet, offset = _snippet(text, column - 1)
        pad = "".join("\t" if ch == "\t" else " " for ch in snippet[:offset])
        super().__init__(f"{reason} at line {line}, column {column}:\n  {snippet}\n  {pad}^")
        self.reason = reason
        self.source = source
        self.position = position
        self.line = line
        self.column = column

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.source, self.position))


def _line_column(source: str, position: int) -> tuple[int, int]:
    """1-based line and column of a 0-based offset."""
    return source.count("\n", 0, position) + 1, position - source.rfind("\n", 0, position)


def _snippet(text: str, offset: int) -> tuple[str, int]:
    """The part of a line to quote in an error, with control characters made visible,
    and where the caret goes in it."""
    text = "".join(ch if ch.isprintable() or ch == "\t" else "\ufffd" for ch in text.rstrip("\r"))
    if len(text) <= _SNIPPET:
        return text, offset
    start = max(0, min(offset - _SNIPPET // 2, len(text) - _SNIPPET))
    end = start + _SNIPPET
    prefix = "…" if start > 0 else ""
    return prefix + text[start:end] + ("…" if end < len(text) else ""), offset - start + len(prefix)


# ------------------------------------------------------------------------ tokenizer

class _Token(NamedTuple):
    kind: str            # "num", "str", "name", "kw", "op", "eof"
    value: Any           # number, string, tuple of name segments, keyword or operator text
    start: int
    end: int


_ASCII_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_ASCII_CONTINUE = _ASCII_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_OPERATORS_2 = frozenset({"==", "!=", "<=", ">="})
_OPERATORS_1 = frozenset("<>()[],-")
_HINTS = {
    "=": "use '==' to compare",
    "!": "use '!=' or 'not'",
    "&": "use 'and'",
    "|": "use 'or'",
    ".": "a number needs a digit before '.', e.g. 0.5",
    "“": "use straight quotes \" or '", "”": "use straight quotes \" or '",
    "‘": "use straight quotes \" or '", "’": "use straight quotes \" or '",
    "«": "use straight quotes \" or '", "»": "use straight quotes \" or '",
}


def _is_start(ch: str) -> bool:
    return ch in _ASCII_START or (ch >= "\x80" and ch.isidentifier())


def _is_continue(ch: str) -> bool:
    return ch in _ASCII_CONTINUE or (ch >= "\x80" and ("a" + ch).isidentifier())


def _show_char(ch: str) -> str:
    return f"'{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def _tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
        elif ch == '"' or ch == "'":
            i = _read_string(src, i, tokens)
        elif ch in _DIGITS:
            i = _read_number(src, i, tokens)
        elif _is_start(ch):
            i = _read_name(src, i, tokens)
        elif src[i:i + 2] in _OPERATORS_2:
            tokens.append(_Token("op", src[i:i + 2], i, i + 2))
            i += 2
        elif ch in _OPERATORS_1:
            tokens.append(_Token("op", ch, i, i + 1))
            i += 1
        else:
            hint = _HINTS.get(ch)
            raise RuleError(f"unexpected character {_show_char(ch)}" + (f" ({hint})" if hint else ""), src, i)
    tokens.append(_Token("eof", None, n, n))
    return tokens


def _read_string(src: str, i: int, tokens: list[_Token]) -> int:
    quote, j, n = src[i], i + 1, len(src)
    parts: list[str] = []
    while True:
        if j >= n or src[j] == "\n":
            raise RuleError("unterminated string (strings end on the line they start; write \\n for a newline)",
                            src, i)
        ch = src[j]
        if ch == quote:
            tokens.append(_Token("str", "".join(parts), i, j + 1))
            return j + 1
        if ch != "\\":
            k = j + 1
            while k < n and src[k] not in (quote, "\\", "\n"):
                k += 1
            parts.append(src[j:k])
            j = k
            continue
        if j + 1 >= n:
            raise RuleError("unterminated string", src, i)
        esc = src[j + 1]
        if esc in _ESCAPES:
            parts.append(_ESCAPES[esc])
            j += 2
        elif esc == "u":
            code = _hex4(src, j)
            j += 6
            if 0xD800 <= code < 0xDC00 and src[j:j + 2] == "\\u":
                try:
                    low = _hex4(src, j)
                except RuleError:
                    low = 0
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    j += 6
            parts.append(chr(code))
        else:
            raise RuleError(f"invalid escape '\\{esc}'" if esc.isprintable() else "invalid escape", src, j)


def _hex4(src: str, j: int) -> int:
    digits = src[j + 2:j + 6]
    if len(digits) != 4 or not all(d in _HEX for d in digits):
        raise RuleError("invalid escape: \\u needs exactly 4 hex digits", src, j)
    return int(digits, 16)


def _read_number(src: str, i: int, tokens: list[_Token]) -> int:
    j, n = i, len(src)
    while j < n and src[j] in _DIGITS:
        j += 1
    is_float = False
    if j + 1 < n and src[j] == "." and src[j + 1] in _DIGITS:
        is_float = True
        j += 1
        while j < n and src[j] in _DIGITS:
            j += 1
    if j < n and src[j] in "eE":
        k = j + 1
        if k < n and src[k] in "+-":
            k += 1
        if k < n and src[k] in _DIGITS:
            is_float = True
            j = k
            while j < n and src[j] in _DIGITS:
                j += 1
    if j < n and (_is_continue(src[j]) or src[j] == "."):
        k = j
        while k < n and (_is_continue(src[k]) or src[k] == "."):
            k += 1
        raise RuleError(f"invalid number '{src[i:k]}'", src, i)
    text = src[i:j]
    try:
        value: int | float = float(text) if is_float else int(text)
    except ValueError:                      # more digits than int() allows
        raise RuleError("number is too long", src, i) from None
    if isinstance(value, float) and math.isinf(value):
        raise RuleError("number is out of range", src, i)
    tokens.append(_Token("num", value, i, j))
    return j


def _read_name(src: str, i: int, tokens: list[_Token]) -> int:
    n = len(src)
    segments: list[str] = []
    start = i
    while True:
        j = i + 1
        while j < n and _is_continue(src[j]):
            j += 1
        segments.append(src[i:j])
        i = j
        if segments[0] in _KEYWORDS or not (i + 1 < n and src[i] == "." and _is_start(src[i + 1])):
            break
        i += 1
    word = segments[0]
    if len(segments) == 1 and word in _KEYWORDS:
        tokens.append(_Token("kw", word, start, i))
        return i
    lower = word.lower()
    if len(segments) == 1 and lower != word and (lower in _KEYWORDS or lower == "none"):
        fix = "null" if lower == "none" else lower
        raise RuleError(f"'{word}' is not a keyword; keywords are lowercase: write '{fix}'", src, start)
    tokens.append(_Token("name", tuple(segments), start, i))
    return i


# ------------------------------------------------------------------------------ AST

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


# --------------------------------------------------------------------------- parser

class _Parser:
    """Recursive descent, one method per precedence level (low to high):
    ``or`` → ``and`` → ``not`` → comparison → unary ``-`` → primary."""

    def __init__(self, src: str, tokens: list[_Token]) -> None:
        self.src = src
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at(self, kind: str, value: Any = None) -> bool:
        tok = self.tokens[self.i]
        return tok.kind == kind and (value is None or tok.value == value)

    def error(self, reason: str, position: int) -> RuleError:
        return RuleError(reason, self.src, position)

    def describe(self, tok: _Token) -> str:
        if tok.kind == "eof":
            return "end of rule"
        if tok.kind == "name":
            return f"name '{'.'.join(tok.value)}'"
        if tok.kind == "str":
            text = _quote(tok.value)
            return "string " + (text if len(text) <= 30 else text[:27] + "…\"")
        if tok.kind == "num":
            return f"number {self.src[tok.start:tok.end]}"
        return f"'{tok.value}'"

    def expected(self, what: str) -> RuleError:
        tok = self.peek()
        return self.error(f"expected {what}, found {self.describe(tok)}", tok.start)

    def unclosed(self, close: str, opener: _Token) -> RuleError:
        """At the end of the rule, a bracket is still open: say which one."""
        line, column = _line_column(self.src, opener.start)
        here, _ = _line_column(self.src, self.peek().start)
        at = f"column {column}" if line == here else f"line {line}, column {column}"
        return self.error(f"expected '{close}' to close the '{opener.value}' from {at}", self.peek().start)

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"rule is nested too deeply (more than {MAX_DEPTH} levels)", tok.start)

    # grammar
    def parse(self) -> _Node:
        if self.at("eof"):
            raise self.error("rule is empty", 0)
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "eof":
            if tok.kind == "op" and tok.value == ")":
                raise self.error("unmatched ')'", tok.start)
            raise self.expected("'and', 'or' or end of rule")
        return node

    def or_expr(self) -> _Node:
        operands = [self.and_expr()]
        while self.at("kw", "or"):
            self.advance()
            operands.append(self.and_expr())
        if len(operands) == 1:
            return operands[0]
        return _Or(tuple(operands), start=operands[0].start, end=operands[-1].end)

    def and_expr(self) -> _Node:
        operands = [self.not_expr()]
        while self.at("kw", "and"):
            self.advance()
            operands.append(self.not_expr())
        if len(operands) == 1:
            return operands[0]
        return _And(tuple(operands), start=operands[0].start, end=operands[-1].end)

    def not_expr(self) -> _Node:
        if not self.at("kw", "not"):
            return self.comparison()
        tok = self.advance()
        self.enter(tok)
        operand = self.not_expr()
        self.depth -= 1
        return _Not(operand, start=tok.start, end=operand.end)

    def comparison_op(self) -> tuple[str, _Token] | None:
        tok = self.peek()
        if tok.kind == "op" and tok.value in _COMPARISONS:
            return tok.value, tok
        if tok.kind == "kw" and tok.value == "in":
            return "in", tok
        if tok.kind == "kw" and tok.value == "not":
            after = self.peek(1)
            if after.kind == "kw" and after.value == "in":
                return "not in", tok
            raise self.error(f"expected 'in' after 'not', found {self.describe(after)}", after.start)
        return None

    def comparison(self) -> _Node:
        left = self.unary()
        found = self.comparison_op()
        if found is None:
            return left
        op, _ = found
        self.advance()
        if op == "not in":
            self.advance()
        right = self.unary()
        again = self.comparison_op()
        if again is not None:
            raise self.error("comparisons cannot be chained; combine them with 'and'", again[1].start)
        return _Compare(op, left, right, start=left.start, end=right.end)

    def unary(self) -> _Node:
        if not self.at("op", "-"):
            return self.primary()
        tok = self.advance()
        self.enter(tok)
        operand = self.unary()
        self.depth -= 1
        if isinstance(operand, _Literal):
            if not _is_number(operand.value):
                raise self.error("'-' needs a number", tok.start)
            return _Literal(-operand.value, start=tok.start, end=operand.end)
        return _Neg(operand, start=tok.start, end=operand.end)

    def primary(self) -> _Node:
        tok = self.peek()
        if tok.kind in ("num", "str"):
            self.advance()
            return _Literal(tok.value, start=tok.start, end=tok.end)
        if tok.kind == "kw" and tok.value in ("true", "false", "null"):
            self.advance()
            return _Literal({"true": True, "false": False, "null": None}[tok.value], start=tok.start, end=tok.end)
        if tok.kind == "op" and tok.value == "[":
            return self.list_literal()
        if tok.kind == "op" and tok.value == "(":
            self.advance()
            self.enter(tok)
            node = self.or_expr()
            if not self.at("op", ")"):
                raise self.unclosed(")", tok) if self.at("eof") else self.expected("')'")
            close = self.advance()
            self.depth -= 1
            return replace(node, start=tok.start, end=close.end)
        if tok.kind == "name":
            self.advance()
            if self.at("op", "("):
                return self.call(tok)
            return _Name(tok.value, start=tok.start, end=tok.end)
        raise self.expected("a value")

    def list_literal(self) -> _Node:
        opener = self.advance()
        items: list[Any] = []
        if not self.at("op", "]"):
            while True:
                items.append(self.list_item())
                if self.at("op", ","):
                    self.advance()
                    continue
                if self.at("op", "]"):
                    break
                raise self.unclosed("]", opener) if self.at("eof") else self.expected("',' or ']'")
        close = self.advance()
        return _Literal(tuple(items), start=opener.start, end=close.end)

    def list_item(self) -> Any:
        tok = self.peek()
        negative = tok.kind == "op" and tok.value == "-"
        if negative:
            self.advance()
            tok = self.peek()
            if tok.kind != "num":
                raise self.error("'-' needs a number", tok.start)
        if tok.kind in ("num", "str"):
            self.advance()
            return -tok.value if negative else tok.value
        if tok.kind == "kw" and tok.value in ("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[tok.value]
        if tok.kind == "eof":
            raise self.expected("a list item")
        raise self.error(f"list items must be strings, numbers, true, false or null, found {self.describe(tok)}",
                         tok.start)

    def call(self, name: _Token) -> _Node:
        func = ".".join(name.value)
        spec = FUNCTIONS.get(func) if len(name.value) == 1 else None
        if spec is None:
            raise self.error(f"unknown function '{func}' (known: {', '.join(sorted(FUNCTIONS))})", name.start)
        opener = self.advance()
        self.enter(opener)
        args: list[_Node] = []
        if not self.at("op", ")"):
            while True:
                args.append(self.or_expr())
                if self.at("op", ","):
                    self.advance()
                    continue
                if self.at("op", ")"):
                    break
                raise self.unclosed(")", opener) if self.at("eof") else self.expected("',' or ')'")
        close = self.advance()
        self.depth -= 1
        if len(args) != len(spec.params):
            count = len(spec.params)
            raise self.error(f"{func}() takes {count} argument{'s' if count != 1 else ''} ({len(args)} given)",
                             name.start)
        for number, (arg, param) in enumerate(zip(args, spec.params), 1):
            if param != "any" and isinstance(arg, _Literal) and not _literal_fits(arg.value, param):
                raise self.error(f"argument {number} of {func}() must be a {param}", arg.start)
        return _Call(func, tuple(args), start=name.start, end=close.end)


def _literal_fits(value: Any, param: str) -> bool:
    if param == "string":
        return isinstance(value, str)
    if param == "list":
        return isinstance(value, tuple)
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and value.__class__ is not bool


# ------------------------------------------------------------------ value semantics

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


# ------------------------------------------------------------------------ functions

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


# ------------------------------------------------------------------------- compiler

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


# ---------------------------------------------------------------- printing, explain

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


# ----------------------------------------------------------------------- public API

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
