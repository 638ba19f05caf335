"""The recursive-descent parser: tokens to a syntax tree, with a :class:`RuleError`
that says what was expected and where."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .errors import RuleError, _line_column
from .explain import _quote
from .functions import FUNCTIONS, _literal_fits
from .lexer import _Token
from .nodes import _And, _Call, _Compare, _Literal, _Name, _Neg, _Node, _Not, _Or
from .values import _is_number

MAX_DEPTH = 64           # nested parentheses, calls, `not`s and unary minuses

_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})


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
