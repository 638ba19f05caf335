"""aiohttp answers a request it cannot parse (a NUL byte in a header, a bad request
line) itself, before any middleware, with a text/plain body and an error-level traceback
in the log. Every answer of this service is a JSON error, so its request handler's
``handle_error`` is replaced: the same status, a ``{"error": ...}`` body, and for a
client's bad request a debug line instead of a traceback."""

from __future__ import annotations

from http import HTTPStatus

import orjson
from aiohttp import web, web_protocol

from bandit.errors import ApiError

_installed = False


def _handle_error(self: web_protocol.RequestHandler, request: web.BaseRequest, status: int = 500,
                  exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
    if status >= 500:
        self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
    else:   # the client's fault, and anyone can send one: no traceback per request
        self.logger.debug("bad request from %s: %s", request.remote, message or exc)
    if request.writer.output_size > 0:   # part of a response went out: the connection is broken
        raise ConnectionError("Response is sent already, cannot send another response with the error message")
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    if status >= 500:
        error = ApiError(status, "internal_error", "internal error; see the service log")
    else:
        detail = str(message or getattr(exc, "message", None) or phrase)
        detail = (detail.strip().splitlines() or [phrase])[0].rstrip(": ")   # the parser's reason, not the echo
        error = ApiError(status, "bad_request" if status == 400 else phrase.lower().replace(" ", "_"),
                         f"the request cannot be parsed as HTTP: {detail}")
    response = web.Response(status=status, body=orjson.dumps(error.body()), content_type="application/json")
    response.force_close()
    return response


def install() -> None:
    """Make aiohttp's own error answers JSON (once per process)."""
    global _installed
    if not _installed:
        web_protocol.RequestHandler.handle_error = _handle_error   # type: ignore[method-assign]
        _installed = True
