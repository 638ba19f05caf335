"""HTTP handlers: decode, call the decider or the store, encode. Nothing else."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import orjson
from aiohttp import web
from redis.exceptions import TimeoutError as RedisTimeoutError

from bandit.http.auth import requires
from bandit.errors import ApiError
from bandit.observe.metrics import count_decision, count_refusal, count_reward
from bandit.http.bodies import (ActivateResponse, DecideResponse, EventSlot, EventState, Health, LearnerStats,
                                ModelStats, Ready, RewardResponse, StatsResponse, struct_response)
from bandit.decide.schemas import DecideRequest, RewardRequest, canonical, check_depth, decode
from bandit.state import BACKPRESSURE, DECIDER, OPENAPI_DOC, SETTINGS, STORE, SUPERVISOR, WORKER

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"   # RFC 7386, what the PATCH endpoints apply
log = logging.getLogger("nextbest")


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


async def json_body(request: web.Request, merge_patch: bool = False) -> bytes:
    """The body, read within ``body_timeout_seconds``: a client that sends it slowly (or
    stops halfway) must not hold a handler, its memory and a connection for ever.
    ``merge_patch``: a PATCH endpoint, which also takes RFC 7386's own media type."""
    if request.content_type != JSON and not (merge_patch and request.content_type == MERGE_PATCH):
        also = f" or {MERGE_PATCH}" if merge_patch else ""
        raise ApiError(415, "unsupported_media_type", f"send JSON with Content-Type: {JSON}{also}")
    limit = request.app[SETTINGS].body_timeout_seconds
    try:
        async with asyncio.timeout(limit):
            return await request.read()
    except TimeoutError:
        raise ApiError(408, "body_timeout", f"the request body did not arrive within {limit:g} s "
                       "(body_timeout_seconds)") from None


async def json_object(request: web.Request, code: str, what: str, merge_patch: bool = False) -> dict:
    """A request body that must be one JSON object (offers, profiles; ``merge_patch``: a
    PATCH, which may say so in its Content-Type)."""
    try:
        body = orjson.loads(await json_body(request, merge_patch))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    check_depth(body)
    if not isinstance(body, dict):
        raise ApiError(400, code, f"expected a JSON object ({what})")
    return body


def admit(app: web.Application, request: str) -> None:
    """503 ``backlog_full`` while the backlog is past ``backlog_limit``: called before
    anything is stored, so a refused request changed nothing (``request``: decide, reward
    or activate, the refusal metric's label). An attribute read: no Redis on this path."""
    gate = app.get(BACKPRESSURE)
    if gate is not None and gate.full:
        count_refusal(app, request)
        raise gate.refusal()


@requires("channel")
async def decide(request: web.Request) -> web.Response:
    admit(request.app, "decide")
    body = decode(await json_body(request), DecideRequest)
    decision = await request.app[DECIDER].decide(body)
    count_decision(request.app, body.channel, decision)
    # slots, ranking and excluded stay the decider's dicts (their Structs' shape): encoded as they are
    return struct_response(DecideResponse(
        decision.event_id, decision.slots, decision.ranking, decision.model_version,  # type: ignore[arg-type]
        decision.policy, decision.subscriber_known, decision.catalog_version, decision.excluded))  # type: ignore[arg-type]


@requires("channel")
async def reward(request: web.Request) -> web.Response:
    body = decode(await json_body(request), RewardRequest)
    assert isinstance(body, RewardRequest)
    return await post_reward(request.app, body)


async def post_reward(app: web.Application, body: RewardRequest) -> web.Response:
    """Record one outcome, as ``POST /v1/reward`` answers it (the agent desktop's own
    reward endpoint checks the caller first, then comes here)."""
    admit(app, "reward")
    value = _reward_value(app, body)
    settings = app[SETTINGS]
    scale = body.outcome is not None and settings.reward_objective == "value"
    if body.offer_id is not None and body.slot is not None:
        raise ApiError(400, "invalid_field", "give at most one of offer_id and slot", "slot")
    status, detail = await app[STORE].post_reward(
        body.event_id, value, settings.reward_aggregation, body.reward_id, scale_by_value=scale,
        offer_id=body.offer_id, slot=body.slot, sale=body.outcome in settings.sale_outcomes,
        accepted_ttl_seconds=int(settings.accepted_offers_ttl_days * 86400),
        digest=app[DECIDER].subscriber_hash.digest(canonical(body)) if body.reward_id else "",
        bounds=(settings.reward_min, settings.reward_max))
    if status == "not_shown":
        raise ApiError(400, "invalid_field", f"offer {body.offer_id!r} was not shown in event {body.event_id!r}",
                       "offer_id")
    if status == "no_slot":
        raise ApiError(400, "invalid_field", f"event {body.event_id!r} has {detail} slot(s), not {body.slot}", "slot")
    if status == "out_of_range":
        what = ("the sum of the slot's rewards" if settings.reward_aggregation == "sum"
                else "this outcome times the offer's value")
        raise ApiError(400, "invalid_field", f"{what} would be {detail}, outside [reward_min, reward_max] = "
                       f"[{settings.reward_min!r}, {settings.reward_max!r}]; nothing was counted", "reward")
    if status == "reused":
        raise ApiError(409, "reward_id_reused", f"reward_id {body.reward_id!r} was already counted for event "
                       f"{body.event_id!r} with another request; a retry must send the same body, another reward "
                       "a new reward_id", "reward_id")
    count_reward(app, status)
    if status == "unknown":
        raise ApiError(404, "unknown_event", f"no pending decision {body.event_id!r}: unknown, or expired "
                       "long ago; the reward is counted as late", "event_id")
    if status == "late":
        what = {"d": "joined with the default reward", "x": "dropped (never activated)",
                "j": "joined with the rewards summed until its deadline"}.get(detail, "settled")
        raise ApiError(409, "late_reward", f"event {body.event_id!r} was already {what} at its deadline; "
                       "the reward is counted as late", "event_id")
    answer = RewardResponse(body.event_id, status, status == "duplicate",  # type: ignore[arg-type]
                            None if detail is None else float(detail))
    return struct_response(answer, status=200 if status in ("joined", "duplicate") else 202)


def _reward_value(app: web.Application, body: RewardRequest) -> float:
    if (body.reward is None) == (body.outcome is None):
        raise ApiError(400, "invalid_field", "give exactly one of reward (a number) or outcome (a name)", "reward")
    if body.outcome is not None:
        outcomes = app[SETTINGS].outcomes
        if body.outcome not in outcomes:
            raise ApiError(400, "invalid_field", f"unknown outcome {body.outcome!r}; configured: "
                           f"{', '.join(sorted(outcomes))}", "outcome")
        return outcomes[body.outcome]
    if not math.isfinite(body.reward):
        raise ApiError(400, "invalid_field", "reward must be a finite number", "reward")
    low, high = app[SETTINGS].reward_min, app[SETTINGS].reward_max
    if not low <= body.reward <= high:
        raise ApiError(400, "invalid_field", f"reward {body.reward!r} is outside [reward_min, reward_max] = "
                       f"[{low!r}, {high!r}]", "reward")
    return body.reward


@requires("channel")
async def activate(request: web.Request) -> web.Response:
    """Mark a deferred decision shown. Refused past ``backlog_limit`` like decide and
    reward: an activation can join the event, which adds to the stream the bound protects."""
    admit(request.app, "activate")
    event_id = request.match_info["event_id"]
    status = await request.app[STORE].activate(event_id, request.app[SETTINGS].reward_aggregation)
    if status == "unknown":
        raise ApiError(404, "unknown_event", f"no pending decision {event_id!r}", "event_id")
    if status == "late":
        raise ApiError(409, "late_activation", f"event {event_id!r} was already settled at its deadline",
                       "event_id")
    return struct_response(ActivateResponse(event_id, status))  # type: ignore[arg-type]


@requires("channel")
async def event(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    state = await request.app[STORE].event_state(event_id)
    if state is None:
        raise ApiError(404, "unknown_event", f"no decision {event_id!r} (unknown or past retention)", "event_id")
    names = {"p": "pending", "j": "joined", "d": "defaulted", "x": "dropped"}
    slots = _slot_states(state)
    dropped = state.get("st") == "x"
    if dropped:   # never learned: no reward was held for it, the default included
        for slot in slots:
            slot.reward = None
    return struct_response(EventState(
        event_id, names.get(state.get("st", ""), "unknown"),  # type: ignore[arg-type]
        deferred=state.get("defer") == "1", activated=state.get("act") == "1",
        rewards=sum(s.rewards for s in slots),
        reward=None if dropped else (float(state["r"]) if "r" in state else None) if len(slots) == 1
        else sum(s.reward or 0.0 for s in slots),
        deadline_ms=int(state["dl"]) if "dl" in state else None, slots=slots))


def _slot_states(state: dict[str, str]) -> list[EventSlot]:
    """Each slot's offer and what it has been rewarded so far (events of the one-slot
    release name no offer)."""
    slots = []
    for slot in range(1, int(state.get("ns", "1")) + 1):
        x = "" if slot == 1 else str(slot)
        slots.append(EventSlot(slot, state.get("o" + x), int(state.get("n" + x, "0")),
                               float(state["r" + x]) if "r" + x in state else None))
    return slots


@requires("admin")
async def stats(request: web.Request) -> web.Response:
    app = request.app
    store, worker = app[STORE], app[WORKER]
    try:   # one deadline for the whole answer, not one per call
        async with asyncio.timeout(store.command_timeout):
            counters = await store.stats()
            checkpoint = await store.checkpoint_meta()
            pending = await store.pending_count()
            stream_length = await store.stream_length()
    except TimeoutError:
        raise RedisTimeoutError(f"Redis did not answer within {store.command_timeout:g} s") from None
    model = app[DECIDER].model
    saved_ms = int(checkpoint.get("saved_ms", 0))
    return struct_response(StatsResponse(
        counters, pending, stream_length,
        ModelStats(version=model.label, examples_learned=model.learner.learned,
                   checkpoint_version=int(checkpoint.get("version", 0)),
                   checkpoint_examples=int(checkpoint.get("learned", 0)),
                   checkpoint_age_seconds=round(time.time() - saved_ms / 1000, 3) if saved_ms else None,
                   args=app[SETTINGS].learner.vw_args()),
        LearnerStats(worker.leading, worker.identity, worker.problem)))


async def healthz(request: web.Request) -> web.Response:
    """Alive, unless the embedded Redis stayed down past ``redis_restart_timeout_seconds``
    (then only a restart of the process, or an operator, can help). Never calls Redis."""
    supervisor = request.app.get(SUPERVISOR)
    if supervisor is not None and not supervisor.healthy:
        raise ApiError(503, "redis_down", supervisor.problem, retry_after=5)
    return struct_response(Health("ok"))


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    try:
        await app[STORE].redis.ping()
    except Exception as exc:  # any Redis failure means not ready (the client's deadline bounds the wait)
        # unauthenticated: the host and port of Redis go to the log, not to whoever asks
        log.warning("readyz: Redis is not answering: %s", exc)
        raise ApiError(503, "redis_unavailable", "Redis is unreachable; see the service log", retry_after=1) from None
    worker = app[WORKER]
    if not worker.ready.is_set():
        raise ApiError(503, "starting", "the model and learner are still starting")
    if worker.problem is not None:
        raise ApiError(503, "duties_failing", f"this process cannot learn and write the log: {worker.problem}")
    gate = app[BACKPRESSURE]
    if gate.full:   # decide, reward and activate refuse: send the traffic elsewhere until it drains
        raise gate.refusal()
    return struct_response(Ready("ready", app[DECIDER].model.label, gate.events))


async def openapi(request: web.Request) -> web.Response:
    """The document generated for this app's routes and settings (bandit.http.openapi)."""
    return web.Response(body=request.app[OPENAPI_DOC], content_type=JSON)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/decide", decide)
    app.router.add_post("/v1/reward", reward)
    app.router.add_post("/v1/events/{event_id}/activate", activate)
    app.router.add_get("/v1/events/{event_id}", event)
    app.router.add_get("/v1/stats", stats)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
