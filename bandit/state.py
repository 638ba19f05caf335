"""Typed application state (aiohttp ``web.AppKey``), shared by the app factory and handlers."""

from __future__ import annotations

from aiohttp import web

from bandit.catalog import CatalogStore
from bandit.config import Settings
from bandit.decider import Decider
from bandit.profiles import ProfileStore
from bandit.store import Store
from bandit.worker import Worker

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CATALOG = web.AppKey("catalog", CatalogStore)
PROFILES = web.AppKey("profiles", ProfileStore)
DECIDER = web.AppKey("decider", Decider)
WORKER = web.AppKey("worker", Worker)
