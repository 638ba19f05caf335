"""YAML files read as node trees, so every error can name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def compose(path: Path, text: str, error: type[ValueError]) -> yaml.Node | None:
    """The document's root node; a syntax error raises ``error`` with file:line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def value_of(node: yaml.Node) -> Any:
    """The plain Python value of a node (as yaml.safe_load would give it)."""
    return yaml.SafeLoader(yaml.serialize(node)).get_single_data()
