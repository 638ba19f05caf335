"""Where a msgspec validation error points: shared by the request decoders (bandit) and
the offer compiler, so every "missing" or "unknown field" error names its field."""

from __future__ import annotations

import re

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:required|unknown) field `(?P<name>[^`]+)`")


def split_validation_error(text: str) -> tuple[str, str | None]:
    """msgspec says e.g. "Expected `int`, got `str` - at `$.offers[0].id`", or, for the
    top level, "Object missing required field `name`": the message and the field's path
    (``offers[0].id``, ``name``, ``contact.x``), None when there is none."""
    path = ""
    match = _PATH.search(text)
    if match:
        path = match["path"]
        text = text[: match.start()]
    name = _FIELD.search(text)
    if name:
        path = f"{path}.{name['name']}"
    return text, (path.lstrip(".") or None)
