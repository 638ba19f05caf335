"""Errors in rule text: :class:`RuleError`, which quotes the line with a caret under
the problem."""

from __future__ import annotations

from typing import Any

_SNIPPET = 100           # an error shows at most this many characters of the line


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
