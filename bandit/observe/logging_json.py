"""Service logs as text or as one JSON object per line (``log_format: json``), for log
shippers that index fields: ``ts`` (ISO-8601 UTC), ``level``, ``logger``, ``message``,
any ``extra`` fields (``event_id``...), and ``exc`` with a traceback.

Request paths can carry raw subscriber ids (``/v1/subscribers/{id}``); every line is
redacted before it is written, whatever the format, because the service otherwise only
ever stores and logs keyed hashes of them.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime, timezone
from typing import IO, Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

# routes whose path carries a raw subscriber id (the admin profile API, the agent UI)
_SUBSCRIBER_PREFIXES = ("/v1/subscribers/", "/ui/api/caller/")
_SUBSCRIBER_PATH = re.compile("(" + "|".join(map(re.escape, _SUBSCRIBER_PREFIXES)) + r")[^/?#\s\"]+")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# aiohttp's access logger passes its log-format atoms as extras; renamed to plain fields
_ACCESS_FIELDS = {"remote_address": "remote", "response_status": "status", "response_size": "bytes"}


def redact(text: str) -> str:
    """Replace the subscriber id of a profile path by its template."""
    if any(prefix in text for prefix in _SUBSCRIBER_PREFIXES):
        return _SUBSCRIBER_PATH.sub(r"\1{subscriber_id}", text)
    return text


class RedactSubscriberIds(logging.Filter):
    """A handler filter: no line leaves the process with a raw subscriber id in a path."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        line = getattr(record, "first_request_line", None)
        if isinstance(line, str):
            record.first_request_line = redact(line)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; newlines and any Unicode survive inside the strings."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_") or value is None or key in out:
                continue
            if key == "first_request_line" and isinstance(value, str):   # aiohttp access log
                method, _, rest = value.partition(" ")
                out["method"], out["path"] = method, rest.rpartition(" ")[0] or rest
                continue
            out[_ACCESS_FIELDS.get(key, key)] = _access_value(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(out, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):   # e.g. an integer beyond 64 bits
            return orjson.dumps({k: v if isinstance(v, str) else repr(v) for k, v in out.items()}).decode()


def _access_value(key: str, value: Any) -> Any:
    if key in ("response_status", "response_size") and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: str = "text", level: int = logging.INFO,
                      stream: IO[str] | None = None) -> logging.Handler:
    """The process's root handler (what ``nextbest`` commands log through)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RedactSubscriberIds())
    logging.basicConfig(level=level, handlers=[handler])
    return handler
