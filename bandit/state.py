"""Typed application state (aiohttp ``web.AppKey``), shared by the app factory and handlers."""

from __future__ import annotations

from aiohttp import web

from bandit.http.backpressure import Backpressure
from bandit.http.protocol import Edge
from bandit.store.catalog import CatalogStore
from bandit.config import Settings
from bandit.decide.decider import Decider
from bandit.store.profiles import ProfileStore
from bandit.store.store import Store
from bandit.learn.worker import Worker

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CATALOG = web.AppKey("catalog", CatalogStore)
PROFILES = web.AppKey("profiles", ProfileStore)
DECIDER = web.AppKey("decider", Decider)
WORKER = web.AppKey("worker", Worker)
BACKPRESSURE = web.AppKey("backpressure", Backpressure)   # the backlog bound (backlog_limit)
EDGE = web.AppKey("edge", Edge)   # header_timeout_seconds and max_connections, and what they refused
SUPERVISOR = web.AppKey("supervisor", object)   # RedisSupervisor, or None with an external Redis
OPENAPI_DOC = web.AppKey("openapi_doc", bytes)   # the generated document, encoded once by the app factory
