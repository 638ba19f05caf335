"""The HTTP connection edge, below aiohttp's application layer (every hook here is one of
aiohttp's private ones; tests/test_edge.py pins each against a live service).

- aiohttp answers a request it cannot parse (a NUL byte in a header, a bad request line)
  itself, before any middleware, with a text/plain body and an error-level traceback in
  the log. Every answer of this service is a JSON error, so its request handler's
  ``handle_error`` is replaced: the same status, a ``{"error": ...}`` body, and for a
  client's bad request a debug line instead of a traceback.
- aiohttp has no deadline on a request's line and headers: a client sending one header
  byte every few seconds holds a connection (and its memory) for ever, and a few hundred
  of them hold every connection. ``EdgeRequestHandler`` closes a connection whose request
  line and headers have not all arrived within ``header_timeout_seconds`` of the
  connection opening or of the request's first byte (a keep-alive connection that sends
  nothing is aiohttp's ``keepalive_timeout``, not this).
- ``max_connections``: past it a new connection's requests are answered 503
  ``too_many_connections`` with ``Retry-After`` and the connection closes (why a 503
  rather than a bare close: docs/operations.md, "Slow and vanishing clients").
"""

from __future__ import annotations

import asyncio
import logging
import resource
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web, web_protocol, web_server

from bandit.errors import ApiError
from bandit.observe.ratelog import CauseLog

log = logging.getLogger("nextbest")
_installed = False
REFUSED_RETRY_AFTER_SECONDS = 1   # connections free up as requests finish: soon, and elsewhere sooner


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


class Edge:
    """One app's (one process's) connection limits and what they did: every connection
    of the app shares it, the metrics read it."""

    def __init__(self, header_timeout: float, max_connections: int) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections   # 0: unbounded
        self.open = 0                  # admitted connections open now (refused ones are not counted)
        self.refused = 0               # connections answered 503 too_many_connections
        self.header_timeouts = 0       # connections closed because their headers were late
        self._log = CauseLog(log)      # refusals come in floods: a line, then a count every 30 s

    def refuse(self) -> None:
        """Count one connection refused (its requests get ``refusal()``)."""
        self.refused += 1
        self._log.failed("max_connections", "refusing connections past max_connections = %d: their requests get "
                         "503 too_many_connections", self.max_connections, level=logging.WARNING)

    def refusal(self) -> ApiError:
        return ApiError(503, "too_many_connections", f"this process holds max_connections = "
                        f"{self.max_connections} connections; retry (on another process if there is one)",
                        retry_after=REFUSED_RETRY_AFTER_SECONDS)


def _raw_error(error: ApiError) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for where no request object exists."""
    body = orjson.dumps(error.body())
    retry = f"Retry-After: {error.retry_after}\r\n" if error.retry_after is not None else ""
    return (f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{retry}Connection: close\r\n\r\n").encode() + body


class EdgeRequestHandler(web_protocol.RequestHandler):
    """aiohttp's request handler with the header deadline and the connection limit of its
    app's ``Edge`` (given in the app's ``handler_args``); without one, aiohttp's own."""

    __slots__ = ("_edge", "_header_timer", "_header_bytes", "_admitted", "_last_payload")

    def __init__(self, manager: web_server.Server, *, edge: Edge | None = None, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._edge = edge
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = False       # some of the awaited request has arrived (a 408 explains the close)
        self._admitted = False           # counted in edge.open
        self._last_payload: Any = None   # the body of the last parsed request: between requests once complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        edge = self._edge
        if edge is None:
            return
        if edge.max_connections and edge.open >= edge.max_connections:
            edge.refuse()
            self._request_handler = self._refuse   # every request on it: 503, then close
        else:
            edge.open += 1
            self._admitted = True
        self._arm()   # the first request line must come within the deadline too (as nginx does)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._admitted and self._edge is not None:
            self._edge.open -= 1
            self._admitted = False
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._edge is None or self._upgraded or self._payload_parser is not None or self._close:
            super().data_received(data)   # (closing: aiohttp ignores what comes; nothing to time)
            return
        previous = self._last_payload
        between = previous is None or previous.is_eof()   # not the rest of a body: the next request's head
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:   # a whole request head (or a parse error) arrived: on time
            self._disarm()
            self._last_payload = self._messages[-1][1] if self._messages else None
        elif between:
            self._header_bytes = True
            if self._header_timer is None:
                self._arm()
        # A head that completes a body and starts the next request in the same chunk arms
        # the deadline at the next chunk: the sender gains at most one chunk's wait.

    def _arm(self) -> None:
        edge = self._edge
        assert edge is not None
        self._header_timer = self._loop.call_later(edge.header_timeout, self._header_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._header_bytes = False

    def _header_timeout(self) -> None:
        self._header_timer = None
        edge = self._edge
        if edge is None or self.transport is None or self._force_close:
            return
        edge.header_timeouts += 1
        log.debug("closing a connection whose request headers did not arrive within %g s", edge.header_timeout)
        if self._request_in_progress or self._messages:
            # a pipelined earlier request is still being answered: let its answer go out
            # whole, then close (aiohttp reads nothing more meanwhile)
            self.close()
            return
        if self._header_bytes:   # a request was on its way: say why (a connection that sent nothing just closes)
            self.transport.write(_raw_error(ApiError(
                408, "header_timeout", f"the request line and headers did not arrive within "
                f"{edge.header_timeout:g} s (header_timeout_seconds)")))
        self.force_close()

    async def _refuse(self, request: web.BaseRequest) -> web.StreamResponse:
        """The answer to every request of a connection past ``max_connections``. aiohttp
        then reads what is left of the body (its lingering close), so the client reads
        this answer instead of a reset."""
        assert self._edge is not None
        error = self._edge.refusal()
        response = web.Response(status=503, body=orjson.dumps(error.body()), content_type="application/json",
                                headers={"Retry-After": str(error.retry_after)})
        response.force_close()
        return response


FD_HEADROOM = 64   # descriptors beside the clients': Redis connections, log and checkpoint files, the listener


def check_fd_limit(max_connections: int) -> None:
    """Warn when the process cannot open ``max_connections`` sockets: past its descriptor
    limit accept() fails and clients wait in the listen backlog instead of getting a 503."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max_connections and soft != resource.RLIM_INFINITY and max_connections + FD_HEADROOM > soft:
        log.warning("max_connections = %d but this process may open only %d files (ulimit -n): raise the limit "
                    "(systemd LimitNOFILE) above max_connections + %d, or lower max_connections",
                    max_connections, soft, FD_HEADROOM)


def install() -> None:
    """Make aiohttp's own error answers JSON, and its servers' connections
    ``EdgeRequestHandler`` (once per process; a server whose app gives no ``edge`` in its
    ``handler_args`` behaves as aiohttp's)."""
    global _installed
    if not _installed:
        web_protocol.RequestHandler.handle_error = _handle_error   # type: ignore[method-assign]
        web_server.RequestHandler = EdgeRequestHandler   # type: ignore[misc]   # what Server.__call__ builds
        _installed = True
