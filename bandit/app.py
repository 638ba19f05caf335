"""The aiohttp application factory: resources open and close in ``cleanup_ctx``
(Redis, the model, the background worker); middlewares turn every failure into a
JSON error with the right status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from bandit.config import Settings
from bandit.decide.decider import Decider
from bandit.errors import ApiError
from bandit.http.admin import add_admin_routes
from bandit.http.subscribers import add_subscriber_routes
from bandit.ui import add_ui_routes
from bandit.http.auth import make_auth_middleware
from bandit.http.handlers import add_routes, json_response
from bandit.http.protocol import install as install_json_protocol_errors
from bandit.store.limits import Limits
from bandit.observe.metrics import add_metrics, count_redis_error, metrics_middleware, route_label
from bandit.store.profiles import ProfileStore
from bandit.runtime import freeze_startup_heap, open_runtime
from bandit.state import CATALOG, DECIDER, PROFILES, SETTINGS, STORE, WORKER

log = logging.getLogger("nextbest")


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.body(), status=exc.status)
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
    except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
        log.error("redis unavailable: %s", exc)
        count_redis_error(request.app, exc)
        return json_response(ApiError(503, "redis_unavailable", "the store is unavailable; retry").body(), status=503)
    except asyncio.CancelledError:
        raise
    except Exception:
        # the route template, not the path: paths can carry raw subscriber ids
        log.exception("unhandled error on %s %s", request.method, route_label(request),
                      extra={"event_id": request.match_info.get("event_id")})
        return json_response(ApiError(500, "internal_error", "internal error; see the service log").body(), status=500)


def create_app(settings: Settings) -> web.Application:
    install_json_protocol_errors()
    app = web.Application(middlewares=[metrics_middleware, error_middleware,
                                       make_auth_middleware(settings.api_keys)],
                          client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    add_routes(app)
    add_admin_routes(app)
    add_subscriber_routes(app)
    add_ui_routes(app)
    add_metrics(app)
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
        yield
