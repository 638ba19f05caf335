"""What a Redis error reply means for the client: a condition of the server that passes
(503, retry) or a fault (500).

Redis says why it refuses a command in the reply's first word: out of memory with
``noeviction`` (``OOM``), a failed RDB/AOF write (``MISCONF``), loading its data
(``LOADING``), a replica (``READONLY``), a script running too long (``BUSY``), a cluster
in transition (``TRYAGAIN``, ``CLUSTERDOWN``, ``MASTERDOWN``). These are states of the
server that an operator fixes or that pass by themselves, so the client is told which
and to retry. redis-py turns some of these words into exception classes and strips them
from the message, and a Lua script's error wraps the refused command's reply in its own
(``ERR Error running script ... -OOM command not allowed ...``), so all three places are
looked at.
"""

from __future__ import annotations

import re

from redis import exceptions as rx

CONDITIONS = ("MISCONF", "LOADING", "OOM", "READONLY", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN")

_BY_CLASS: tuple[tuple[type[Exception], str], ...] = (
    (rx.BusyLoadingError, "LOADING"), (rx.OutOfMemoryError, "OOM"), (rx.ReadOnlyError, "READONLY"),
    (rx.TryAgainError, "TRYAGAIN"), (rx.MasterDownError, "MASTERDOWN"), (rx.ClusterDownError, "CLUSTERDOWN"),
)
_IN_TEXT = re.compile(r"(?:^|[\s:-])(" + "|".join(CONDITIONS) + r")\b")
_HINTS = {
    "OOM": "Redis is out of memory (maxmemory reached)",
    "MISCONF": "Redis cannot persist its data (a failed RDB or AOF write) and refuses writes",
    "LOADING": "Redis is loading its data",
    "READONLY": "Redis is a read-only replica",
    "BUSY": "Redis is busy running a script",
    "TRYAGAIN": "Redis asks to try again (a cluster resharding)",
    "CLUSTERDOWN": "the Redis cluster is down",
    "MASTERDOWN": "the Redis replica lost its primary",
}


def condition(exc: BaseException) -> str | None:
    """The server condition an error reply names (one of ``CONDITIONS``), or None."""
    code = getattr(exc, "status_code", None)
    if code in CONDITIONS:
        return str(code)
    for cls, name in _BY_CLASS:
        if isinstance(exc, cls):
            return name
    if isinstance(exc, rx.ResponseError):
        found = _IN_TEXT.search(str(exc))
        if found:
            return found.group(1)
    return None


def hint(name: str) -> str:
    return _HINTS[name]


def reply_kind(exc: BaseException) -> str:
    """A short name of another error reply for rate-limited logging (its first word)."""
    text = str(exc)
    words = re.findall(r"\b[A-Z]{3,}\b", text.split("Error running script", 1)[-1])
    return words[0] if words else type(exc).__name__
