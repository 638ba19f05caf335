"""Prometheus metrics at ``GET /metrics``.

Each app has its own ``CollectorRegistry`` (tests build many apps in one process, and
the global registry would mix them). Request and decision counters are this process's;
the ``nextbest_store_*`` counters and the queue gauges are read from Redis at scrape
time, so they describe the whole deployment and every process answers the same.
A scrape never fails because Redis is down: ``nextbest_redis_up`` is then 0 and the
Redis-backed series are left out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import (CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics,
                               generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from bandit.http.auth import requires
from bandit.decide.decider import Decision
from bandit.store.backlog import COUNT_CAP, Backlog, read_backlog
from bandit.store.keys import LEARNER_GROUP, LOG_GROUP
from bandit.state import BACKPRESSURE, DECIDER, EDGE, STORE, WORKER
from bandit.store.store import Store

log = logging.getLogger("nextbest.metrics")

# No `*_created` series: they would double the series count for little use. (A process-wide
# switch of prometheus_client; nextbest is its only user in a nextbest process.)
disable_created_metrics()

LABEL_CAP = 64                 # distinct values per label; more map to OTHER (bounded cardinality)
OTHER = "other"
UNMATCHED = "unmatched"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SCRAPE_REDIS_TIMEOUT = 3.0     # seconds; below Prometheus' default scrape_timeout (10 s)


class BoundedLabel:
    """Admits the first ``cap`` distinct values of a label; later ones become "other",
    so a misbehaving client cannot create unbounded series."""

    def __init__(self, cap: int = LABEL_CAP) -> None:
        self.cap = cap
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.cap:
            return OTHER
        self._seen.add(value)
        return value


@dataclass(frozen=True)
class RedisSnapshot:
    """What one scrape read from Redis (deployment-wide)."""

    counters: dict[str, int]
    pending: int
    backlog: Backlog                 # each consumer group's unfinished share of the joined stream
    checkpoint: dict[str, str]


@dataclass
class ProcessState:
    """This process's model and lease, read from the app (no Redis needed)."""

    model_version: int
    examples_learned: int
    leading: bool
    backlog_limit: int = 0           # backlog_limit (0: unbounded)
    backlog_full: bool = False       # this process refuses decide, reward and activate (its last reading)
    connections_open: int = 0        # admitted connections open now (bandit.http.protocol.Edge)
    max_connections: int = 0         # 0: unbounded
    connections_refused: int = 0     # answered 503 too_many_connections since the start
    header_timeouts: int = 0         # closed: request line and headers later than header_timeout_seconds


@dataclass(eq=False)   # registries key collectors by identity
class StateCollector(Collector):
    """Yields the values the scrape handler gathered just before rendering (prometheus
    collectors are synchronous; Redis is read asynchronously beforehand)."""

    redis: RedisSnapshot | None = None
    process: ProcessState | None = None
    redis_up: bool = False

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("nextbest_redis_up", "1 if this scrape could read Redis, else 0",
                                value=1.0 if self.redis_up else 0.0)
        if self.process is not None:
            yield from _process_metrics(self.process)
        if self.redis_up and self.redis is not None:
            yield from _redis_metrics(self.redis)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _process_metrics(state: ProcessState) -> Iterator[Metric]:
    yield _gauge("nextbest_model_version", "checkpoint version this process's model is based on",
                 state.model_version)
    yield _gauge("nextbest_model_examples_learned", "examples learned into this process's model",
                 state.examples_learned)
    yield _gauge("nextbest_learner_lease", "1 if this process holds the learner lease (learns and logs)",
                 1.0 if state.leading else 0.0)
    yield _gauge("nextbest_backlog_limit", "backlog_limit: joined events past which decide, reward and activate "
                 "answer 503 (0: unbounded)", state.backlog_limit)
    yield _gauge("nextbest_backlog_full", "1 if this process refuses decide, reward and activate (backlog_full) by its "
                 "last reading of the backlog", 1.0 if state.backlog_full else 0.0)
    yield _gauge("nextbest_http_connections", "HTTP connections this process admitted and holds open",
                 state.connections_open)
    yield _gauge("nextbest_http_max_connections", "max_connections (0: unbounded)", state.max_connections)
    yield CounterMetricFamily("nextbest_http_connections_refused", "connections past max_connections, answered "
                              "503 too_many_connections", value=state.connections_refused)
    yield CounterMetricFamily("nextbest_http_header_timeouts", "connections closed because the request line and "
                              "headers did not arrive within header_timeout_seconds", value=state.header_timeouts)


_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def _redis_metrics(snap: RedisSnapshot) -> Iterator[Metric]:
    for name, value in sorted(snap.counters.items()):
        yield CounterMetricFamily(f"nextbest_store_{_NAME_UNSAFE.sub('_', name)}",
                                  f"deployment-wide counter {name!r} from Redis (same in every process)",
                                  value=float(value))
    yield _gauge("nextbest_pending_decisions", "decisions waiting for a reward or their deadline", snap.pending)
    consumers = snap.backlog.consumers
    yield _gauge("nextbest_joined_stream_length", "entries in the joined-event stream", snap.backlog.stream_length)
    yield _gauge("nextbest_learner_lag", "joined-stream entries the learner has not yet acknowledged",
                 consumers[LEARNER_GROUP].events)
    yield _gauge("nextbest_decision_log_lag", "joined-stream entries the decision log has not yet acknowledged",
                 consumers[LOG_GROUP].events)
    events = GaugeMetricFamily("nextbest_backlog_events", "joined events a consumer (learner, log, analytics) has "
                               "not finished: pending plus undelivered", labels=["consumer"])
    behind = GaugeMetricFamily("nextbest_backlog_behind_seconds", "age of the oldest joined event a consumer has "
                               "not finished (0: caught up)", labels=["consumer"])
    for name, consumer in consumers.items():
        events.add_metric([name], float(consumer.events))
        behind.add_metric([name], consumer.behind_seconds)
    yield events
    yield behind
    checkpoint = snap.checkpoint
    yield _gauge("nextbest_checkpoint_version", "version of the newest model checkpoint (0: none)",
                 int(checkpoint.get("version", 0)))
    yield _gauge("nextbest_checkpoint_examples", "examples learned into the newest checkpoint",
                 int(checkpoint.get("learned", 0)))
    saved_ms = int(checkpoint.get("saved_ms", 0))
    if saved_ms:
        yield _gauge("nextbest_checkpoint_age_seconds", "seconds since the newest checkpoint was saved",
                     max(0.0, time.time() - saved_ms / 1000))


async def read_snapshot(store: Store) -> RedisSnapshot:
    """The counters in one pipelined round trip, then the backlog (``read_backlog``)."""
    keys = store.keys
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(keys.stats)
    pipe.zcard(keys.deadlines)
    pipe.hmget(keys.model, ("version", "learned", "saved_ms"))
    stats, pending, model = await pipe.execute()
    backlog = await read_backlog(store.redis, keys, COUNT_CAP)
    checkpoint = {f: _text(v) for f, v in zip(("version", "learned", "saved_ms"), model) if v is not None}
    return RedisSnapshot(counters={_text(k): int(float(v)) for k, v in stats.items()}, pending=int(pending),
                         backlog=backlog, checkpoint=checkpoint)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Metrics:
    """One app's registry and its metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.http_requests = Counter("nextbest_http_requests", "HTTP requests answered",
                                     ["method", "route", "status"], registry=reg)
        self.http_duration = Histogram("nextbest_http_request_duration_seconds", "time to answer an HTTP request",
                                       ["method", "route"], buckets=BUCKETS, registry=reg)
        self.decisions = Counter("nextbest_decisions", "decisions answered with an offer served",
                                 ["channel", "offer", "policy"], registry=reg)
        self.decisions_without_offer = Counter("nextbest_decisions_without_offer",
                                               "decisions with no eligible offer (nothing served)",
                                               ["channel"], registry=reg)
        self.rewards = Counter("nextbest_rewards", "reward requests by outcome of the join", ["status"],
                               registry=reg)
        self.redis_errors = Counter("nextbest_redis_errors", "requests answered 503 or 500 because Redis failed",
                                    ["kind"], registry=reg)
        self.backlog_refusals = Counter("nextbest_backlog_refusals", "decide, reward and activate requests "
                                        "answered 503 backlog_full (nothing stored)", ["request"], registry=reg)
        self.state = StateCollector()
        reg.register(self.state)
        ProcessCollector(registry=reg)
        self.channel = BoundedLabel()
        self.offer = BoundedLabel()
        self.policy = BoundedLabel()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(...)`` takes a lock and validates on every call; on the request
        path the labelled child is looked up once (label values are bounded)."""
        key = (id(metric), labels)   # the metrics live as long as this object
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


METRICS = web.AppKey("metrics", Metrics)


def route_label(request: web.Request) -> str:
    """The route's template (``/v1/events/{event_id}``), never the raw path: raw ids
    would make one series per event (and put subscriber ids in metrics and logs)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Outermost middleware: sees the status the error middleware chose."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499   # the client went away
        raise
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            method = request.method if request.method in METHODS else OTHER
            route = route_label(request)
            metrics.child(metrics.http_requests, method, route, str(status)).inc()
            metrics.child(metrics.http_duration, method, route).observe(time.perf_counter() - started)


def count_decision(app: web.Application, channel: str, decision: Decision) -> None:
    metrics = app.get(METRICS)
    if metrics is None:
        return
    if decision.event_id is None or not decision.ranking:
        metrics.child(metrics.decisions_without_offer, metrics.channel(channel)).inc()
        return
    offer = str(decision.ranking[0]["offer_id"])   # the served offer comes first
    metrics.child(metrics.decisions, metrics.channel(channel), metrics.offer(offer),
                  metrics.policy(decision.policy or "model")).inc()


def count_reward(app: web.Application, status: str) -> None:
    metrics = app.get(METRICS)
    if metrics is not None:
        metrics.child(metrics.rewards, status).inc()


def count_refusal(app: web.Application, request: str) -> None:
    """``request``: decide or reward, refused with 503 backlog_full."""
    metrics = app.get(METRICS)
    if metrics is not None:
        metrics.child(metrics.backlog_refusals, request).inc()


def count_redis_error(app: web.Application, kind: str) -> None:
    """``kind``: connection, timeout, a refusing condition (oom, busy, ...) or error."""
    metrics = app.get(METRICS)
    if metrics is not None:
        metrics.redis_errors.labels(kind).inc()


async def refresh(metrics: Metrics, app: web.Application) -> None:
    """Gather this process's state and, if Redis answers in time, the deployment's."""
    state = metrics.state
    model, worker = app[DECIDER].model, app[WORKER]
    gate = app.get(BACKPRESSURE)
    state.process = ProcessState(model.version, model.learner.learned, worker.leading,
                                 gate.limit if gate is not None else 0, gate is not None and gate.full)
    edge = app.get(EDGE)
    if edge is not None:
        state.process.connections_open, state.process.max_connections = edge.open, edge.max_connections
        state.process.connections_refused, state.process.header_timeouts = edge.refused, edge.header_timeouts
    try:
        async with asyncio.timeout(SCRAPE_REDIS_TIMEOUT):   # not wait_for: it can swallow a cancellation (3.11)
            state.redis = await read_snapshot(app[STORE])
        state.redis_up = True
    except (aioredis.RedisError, OSError, asyncio.TimeoutError) as exc:
        log.warning("metrics: Redis unavailable: %s", exc)
        state.redis, state.redis_up = None, False


@requires("admin")
async def metrics_handler(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    await refresh(metrics, request.app)
    body = generate_latest(metrics.registry)   # no await in between: renders this refresh
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def add_metrics(app: web.Application) -> None:
    """Give the app its registry and ``GET /metrics`` (add ``metrics_middleware`` first
    in the middleware list)."""
    app[METRICS] = Metrics()
    app.router.add_get("/metrics", metrics_handler)
