"""The one error type handlers raise; the error middleware renders it as JSON, through
``ErrorBody`` (the shape the OpenAPI document gives every error answer)."""

from __future__ import annotations

from typing import Any, Union

import msgspec


class ErrorDetail(msgspec.Struct, forbid_unknown_fields=True):
    """``code``: stable, for programs; ``message``: for people; ``field``: the request
    field at fault (a dotted path, e.g. ``context.arpu``), or null."""

    code: str
    message: str
    field: Union[str, None]


class ErrorBody(msgspec.Struct, forbid_unknown_fields=True):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after   # seconds, sent as Retry-After (a 503 the client should retry)
        self.headers = headers or {}     # more response headers (a 412's current ETag)

    def body(self) -> dict[str, Any]:
        return msgspec.to_builtins(ErrorBody(ErrorDetail(self.code, self.message, self.field)))
