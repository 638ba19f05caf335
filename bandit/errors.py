"""The one error type handlers raise; the error middleware renders it as JSON."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after   # seconds, sent as Retry-After (a 503 the client should retry)

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}
