"""The tokenizer: rule text to a list of tokens (numbers, strings, dotted names,
keywords, operators), with a :class:`RuleError` for anything it cannot read."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .errors import RuleError

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})


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
            if ch == "." and i > 0 and _is_continue(src[i - 1]):
                hint = "after '.' a dotted name goes on with a letter or '_'"
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
