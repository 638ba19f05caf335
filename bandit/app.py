"""The aiohttp application factory: resources open and close in ``cleanup_ctx``
(Redis, the model, the background worker); middlewares turn every failure into a
JSON error with the right status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from bandit.config import Settings
from bandit.decide.decider import Decider
from bandit.errors import ApiError
from bandit.http.admin import add_admin_routes
from bandit.http.subscribers import add_subscriber_routes
from bandit.ui import add_ui_routes
from bandit.http.auth import make_auth_middleware
from bandit.http import openapi
from bandit.http.handlers import add_routes, json_response
from bandit.store import redis_errors
from bandit.http.protocol import Edge, check_fd_limit, install as install_edge_protocol
from bandit.store.limits import Limits
from bandit.observe.metrics import add_metrics, count_redis_error, metrics_middleware, route_label
from bandit.store.profiles import ProfileStore
from bandit.observe.ratelog import CauseLog
from bandit.runtime import freeze_startup_heap, open_runtime
from bandit.http.backpressure import Backpressure
from bandit.state import (BACKPRESSURE, CATALOG, DECIDER, EDGE, OPENAPI_DOC, PROFILES, SETTINGS, STORE, SUPERVISOR,
                          WORKER)

log = logging.getLogger("nextbest")
# Redis failing fails every request: one line when it starts, a count every 30 s
# One per app (not per module): each service's outages are its own to report.
REDIS_ERRORS = web.AppKey("redis_errors", CauseLog)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Every failure as a JSON error; and an answer whose client is gone (it hung up
    mid-body, or while Redis was slow: ``run_app`` lets the handler finish) is one INFO
    line and status 499 in the metrics, whatever the handler answered."""
    response = await _answered(request, handler)
    if response.status == 499 or (request.transport is None and not response.prepared):
        log.info("client disconnected during %s %s", request.method, route_label(request))
        return json_response(ApiError(499, "client_disconnected", "the client closed the connection").body(),
                             status=499)   # never delivered; counted under this status in the metrics
    return response


async def _answered(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return json_response(ApiError(413, "body_too_large", f"request body is larger than {limit} bytes "
                                      "(max_body_bytes)").body(), status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        response = json_response(ApiError(exc.status, code, exc.reason).body(), status=exc.status)
        if "Allow" in exc.headers:   # 405: the methods the path does take (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except aioredis.RedisError as exc:
        return _redis_failure(request, exc)
    except ConnectionResetError:   # the client went away mid-body: its choice (error_middleware logs it)
        return web.Response(status=499)
    except asyncio.CancelledError:
        raise
    except Exception:
        # the route template, not the path: paths can carry raw subscriber ids
        log.exception("unhandled error on %s %s", request.method, route_label(request),
                      extra={"event_id": request.match_info.get("event_id")})
        return json_response(ApiError(500, "internal_error", "internal error; see the service log").body(), status=500)


def _redis_failure(request: web.Request, exc: aioredis.RedisError) -> web.Response:
    """503 for a Redis that is away or in a passing state (naming it), 500 for another
    error reply; one log line per cause when it starts, then a count every 30 s."""
    name = redis_errors.condition(exc)
    if name is not None:
        request.app[REDIS_ERRORS].failed(name, "redis refuses commands (%s): %s", name, exc, level=logging.WARNING)
        count_redis_error(request.app, name.lower())
        return _error_response(ApiError(503, f"redis_{name.lower()}", f"{redis_errors.hint(name)}; retry",
                                        retry_after=1))
    if isinstance(exc, (aioredis.ConnectionError, aioredis.TimeoutError)):
        kind = "timeout" if isinstance(exc, aioredis.TimeoutError) else "connection"
        request.app[REDIS_ERRORS].failed(kind, "redis unavailable (%s): %s", kind, exc)
        count_redis_error(request.app, kind)
        return _error_response(ApiError(503, "redis_unavailable", "the store is unavailable; retry", retry_after=1))
    kind = redis_errors.reply_kind(exc)
    request.app[REDIS_ERRORS].failed(f"reply:{kind}", "redis error reply on %s %s: %s", request.method, route_label(request),
                         exc)
    count_redis_error(request.app, "error")
    return _error_response(ApiError(500, "redis_error", "Redis answered with an error; see the service log"))


def _error_response(exc: ApiError) -> web.Response:
    response = json_response(exc.body(), status=exc.status)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    response.headers.update(exc.headers)
    return response


def create_app(settings: Settings) -> web.Application:
    install_edge_protocol()
    edge = Edge(settings.header_timeout_seconds, settings.max_connections)
    check_fd_limit(settings.max_connections)
    app = web.Application(middlewares=[metrics_middleware, error_middleware,
                                       make_auth_middleware(settings.api_keys)],
                          client_max_size=settings.max_body_bytes,
                          handler_args={"edge": edge})   # each connection's EdgeRequestHandler gets it
    app[SETTINGS] = settings
    app[EDGE] = edge
    app[REDIS_ERRORS] = CauseLog(log)
    app.cleanup_ctx.append(_resources)
    add_routes(app)
    add_admin_routes(app)
    add_subscriber_routes(app)
    add_ui_routes(app)
    add_metrics(app)
    app[OPENAPI_DOC] = orjson.dumps(openapi.build(app.router, settings))   # every route is added by now
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    async with open_runtime(app[SETTINGS]) as runtime:
        freeze_startup_heap()
        app[STORE] = runtime.store
        app[CATALOG] = runtime.catalog
        limits = Limits(runtime.store.mget, runtime.store.keys, runtime.settings.max_offers_per_subscriber_per_day)
        profiles = ProfileStore(runtime.store.redis, runtime.store.keys)
        app[PROFILES] = profiles
        app[DECIDER] = Decider(runtime.settings, runtime.store, runtime.catalog, limits, profiles, runtime.model,
                               runtime.secret)
        app[WORKER] = runtime.worker
        app[SUPERVISOR] = runtime.supervisor
        backpressure = Backpressure(runtime.store, runtime.settings.backlog_limit)
        await backpressure.start()
        app[BACKPRESSURE] = backpressure
        try:
            yield
        finally:
            await backpressure.stop()
