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


def line_at(node: yaml.Node, path: str) -> int:
    """The line of the deepest node a dotted path (``subscriber.msisdn.log``, ``a.b[2]``)
    reaches from ``node``: where a mistake a checker names by its path is in the file.
    Keys may hold dots themselves; the longest key that fits is taken."""
    line = line_of(node)
    rest = path
    while rest:
        if isinstance(node, yaml.MappingNode):
            fits = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)
                    and rest.startswith(k.value) and rest[len(k.value):len(k.value) + 1] in ("", ".", "[")]
            if not fits:
                break
            key, node = max(fits, key=lambda kv: len(kv[0].value))
            line, rest = line_of(key), rest[len(key.value):]
        elif isinstance(node, yaml.SequenceNode) and rest.startswith("["):
            index, _, after = rest[1:].partition("]")
            if not index.isdigit() or int(index) >= len(node.value):
                break
            node = node.value[int(index)]
            line, rest = line_of(node), after
        else:
            break
        rest = rest[1:] if rest.startswith(".") else rest
    return line
