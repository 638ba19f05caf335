"""Opening and closing what a nextbest process runs on: Redis (embedded or not), the
model, and the background worker. Shared by the HTTP service and ``nextbest learner``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from bandit.store.catalog import CatalogError, CatalogStore, read_catalog
from bandit.config import Settings
from bandit.decide.decider import ModelHolder
from bandit.store.embedded import EmbeddedRedis
from bandit.store.keys import Keys
from bandit.store.store import Store
from bandit.store.supervisor import RedisSupervisor
from bandit.learn.worker import Worker
from policies.learner import Learner
from policies.offers import Offer

log = logging.getLogger("nextbest")


class StartupError(RuntimeError):
    """The process cannot start as configured; the message says why and what to do."""


@dataclass
class Runtime:
    settings: Settings
    store: Store
    catalog: CatalogStore
    model: ModelHolder
    worker: Worker
    secret: bytes
    supervisor: RedisSupervisor | None = None   # the embedded Redis's, when there is one


async def connect_redis(settings: Settings) -> tuple[aioredis.Redis, EmbeddedRedis | None]:
    """The configured Redis, or the embedded one in the data directory."""
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir, appendfsync=settings.redis_appendfsync)
        await asyncio.to_thread(embedded.start)
        url = embedded.url
    deadline = settings.redis_command_timeout_seconds
    # Every command gets the deadline; a dropped connection (a Redis restart) is retried once
    # at once on a fresh one, a timeout never (redis-py's default: 10 retries of 5 s each).
    client = aioredis.Redis.from_url(url, health_check_interval=30, socket_timeout=deadline,
                                     socket_connect_timeout=deadline,
                                     retry=Retry(NoBackoff(), 1, (RedisConnectionError,)))
    await client.ping()
    return client, embedded


async def load_model(settings: Settings, store: Store) -> ModelHolder:
    checkpoint = await store.load_checkpoint()
    if checkpoint is None:
        return ModelHolder(Learner(settings.learner), 0)
    if checkpoint.args != settings.learner.vw_args():
        raise StartupError(f"the stored model was trained with '{checkpoint.args}' but the configuration asks for "
                           f"'{settings.learner.vw_args()}'; restore the settings or use a new key_prefix")
    learner = await asyncio.to_thread(Learner, settings.learner, checkpoint.blob, checkpoint.learned)
    return ModelHolder(learner, checkpoint.version)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, *, lead: bool | None = None) -> AsyncIterator[Runtime]:
    client, embedded = await connect_redis(settings)
    supervisor = None
    if embedded is not None:
        supervisor = RedisSupervisor(embedded, settings.redis_restart_timeout_seconds)
        supervisor.start()
    try:
        keys = Keys(settings.key_prefix)
        store = Store(client, keys, command_timeout=settings.redis_command_timeout_seconds,
                      settled_retention_seconds=settings.settled_retention_seconds)
        catalog = CatalogStore(client, keys)
        if settings.catalog is not None:
            try:
                file = await asyncio.to_thread(read_catalog, settings.catalog, settings.channels,
                                                settings.features.types())
            except CatalogError as exc:
                raise StartupError(str(exc)) from None
            await _load_catalog(settings, catalog, file.offers)
            if file.reasons is not None:
                await catalog.set_reasons(file.reasons)
            if file.decline_reasons is not None:
                await catalog.set_decline_reasons(file.decline_reasons)
        _warn_about_interactions(settings)
        model = await load_model(settings, store)
        secret = await store.shared_secret(settings.subscriber_secret)
        worker = Worker(settings, store, model, lead=settings.run_learner if lead is None else lead)
        await worker.start()
        try:
            yield Runtime(settings, store, catalog, model, worker, secret, supervisor)
        finally:
            await worker.stop()
            await store.close()
            model.learner.close()
    finally:
        if supervisor is not None:
            await supervisor.stop()
        await client.aclose()
        if embedded is not None:   # the last process using it shuts it down
            await asyncio.to_thread(embedded.stop, force=True, unless_in_use=True)


async def _load_catalog(settings: Settings, catalog: CatalogStore, offers: list[Offer]) -> None:
    """The file seeds an empty catalog; a catalog Redis already holds (live edits included)
    is kept unless ``catalog_replace`` says to overwrite it. Either way the log says which."""
    if settings.catalog_replace:
        version = await catalog.replace(offers)
        log.warning("catalog %s REPLACED the catalog in Redis (catalog_replace): %d offers, version %d; "
                    "live edits made through the API since are gone", settings.catalog, len(offers), version)
        return
    seeded, version, held = await catalog.seed(offers)
    if seeded:
        log.info("catalog %s loaded into the empty catalog: %d offers, version %d", settings.catalog, len(offers),
                 version)
    else:
        log.warning("catalog %s NOT loaded: Redis already holds a catalog (%d offers, version %d), kept with its "
                    "live edits; the file only seeds an empty catalog (--catalog-replace overwrites it)",
                    settings.catalog, held, version)


def _warn_about_interactions(settings: Settings) -> None:
    """A shared namespace that does not interact with the offers only shifts every
    offer's score alike: it cannot change which offer is served."""
    pairs = {pair[:2] for pair in settings.learner.interactions}
    for namespace in settings.features.namespaces():
        initial = namespace[0]
        if f"{initial}O" not in pairs and f"O{initial}" not in pairs:
            log.warning("namespace %s has no interaction with the offers (add %sO to interactions): "
                        "its features cannot change which offer is served", namespace, initial)


def freeze_startup_heap() -> None:
    """Move what start-up allocated (VW, numpy, the app) out of the garbage collector's
    reach: full collections then walk only request garbage, so they pause for about a
    millisecond instead of 50-90 ms (bench/NOTES.md)."""
    gc.collect()
    gc.freeze()


async def run_learner(settings: Settings) -> None:
    """``nextbest learner``: lead (learn, checkpoint, log) until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings, lead=True) as runtime:
        freeze_startup_heap()
        log.info("learner started (%s); waiting for joined events", runtime.worker.identity)
        await stop.wait()
    log.info("learner stopped")
