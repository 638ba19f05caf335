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

# The syntax tree and the compiler entry point are not public; they are re-exported
# for tests and for inspecting ``Rule._ast``.
from .compiler import _compile_bool  # noqa: F401
from .errors import RuleError
from .functions import FUNCTIONS
from .nodes import _And, _Call, _Compare, _Literal, _Name, _Neg, _Node, _Not, _Or  # noqa: F401
from .parser import MAX_DEPTH
from .rule import MAX_LENGTH, Rule, parse_rule

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "Rule", "RuleError", "parse_rule"]
