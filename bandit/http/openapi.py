"""The OpenAPI 3.1 document served at /v1/openapi.json, generated, not written.

Request and answer schemas come from the msgspec Structs that decode the requests
(``bandit.decide.schemas`` and the handlers' own) and encode the answers
(``bandit.http.bodies``), through ``msgspec.json.schema_components``: the limits the
decoders enforce (lengths, patterns, ranges) are the document's. What a deployment
configures (its channels, outcomes, reward bounds, offers per decision) is filled in from
its settings, and each operation's security (and so its 401/403) from the scope its
handler ``requires``. ``OPERATIONS`` says, per route, what the types cannot: the summary,
which type is the body and the answer, and the error statuses only that handler gives;
``build`` refuses a route without an entry, or an entry without a route."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from bandit.config import Settings
from bandit.decide.schemas import DecideRequest, FeatureMap, Identifier, RewardRequest, SubscriberId
from bandit.errors import ErrorBody
from bandit.http import bodies as b
from bandit.http.auth import CSRF_HEADER, SESSION_COOKIE
from bandit.observe.analytics import WINDOWS
from bandit.ui.api import AgentDecide
from bandit.ui.desk import AgentReward
from bandit.ui.session import LoginRequest
from policies.offers import OfferId, OfferSpec

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
REF = "#/components/schemas/{name}"
# Every request path parameter, by name: the type each handler's id rule is.
PATH_TYPES: dict[str, Any] = {"event_id": Identifier, "offer_id": OfferId, "subscriber_id": SubscriberId}
_PATCH = object()   # a body that is a merge patch of the named type (see Operation.body)


@dataclass(frozen=True)
class Operation:
    """What a route's handler takes and answers beyond what its types and scope say.
    ``errors``: statuses of its own; a body adds 400/408/413/415, a scope (with keys
    configured) 401/403, ``redis`` 503."""

    summary: str
    ok: Mapping[int, tuple[str, Any]]   # status → (description, the answer's type)
    errors: tuple[int, ...] = ()
    body: Any = None                    # the request body's type
    patch: bool = False                 # the body is an RFC 7386 merge patch of ``body``
    optional: tuple[str, ...] = ()      # fields of ``body`` the handler fills in when left out
    query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)   # name → schema
    redis: bool = True                  # reads or writes Redis: 503 when it is away
    media: str = JSON                   # the answer's media type
    etag: bool = False                  # the answer carries the offer's ETag
    conditional: bool = False           # honours If-Match: 412 stale_version when it is not the stored one


_REWARD_OK = {200: ("joined, or a duplicate (not learned twice)", b.RewardResponse),
              202: ("stored until activation or the other slots' rewards, or accumulated until the deadline",
                    b.RewardResponse)}
_SUBSCRIBER = "the raw id; only its keyed hash is stored"

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("post", "/v1/decide"): Operation(
        "Rank candidate offers for a contact; the first is served and logged with its probability.",
        {200: ("the decision; event_id is null when no offer was eligible", b.DecideResponse)},
        (409,), body=DecideRequest),
    ("post", "/v1/reward"): Operation(
        "Report the outcome of an offer shown in a decision (one slot; slot 1 by default).",
        _REWARD_OK, (404, 409), body=RewardRequest),
    ("post", "/v1/events/{event_id}/activate"): Operation(
        "Mark a deferred decision as shown, so it is learned from.",
        {200: ("activated, joined, or already active", b.ActivateResponse)}, (404, 409)),
    ("get", "/v1/events/{event_id}"): Operation(
        "The state of a decision: pending, joined, defaulted or dropped.", {200: ("state", b.EventState)}, (404,)),
    ("get", "/v1/stats"): Operation("Counters, model and learner state.", {200: ("stats", b.StatsResponse)}),
    ("get", "/v1/offers"): Operation("The offer catalog and its version.", {200: ("catalog", b.OfferList)}),
    ("post", "/v1/offers"): Operation("Create an offer.", {201: ("created", b.OfferChanged)}, (409,),
                                      body=OfferSpec),
    ("get", "/v1/offers/{offer_id}"): Operation("One offer, with its ETag.", {200: ("offer", OfferSpec)}, (404,),
                                                etag=True),
    ("put", "/v1/offers/{offer_id}"): Operation(
        "Create or replace an offer (the body's id, if given, must be the path's).",
        {200: ("replaced", b.OfferChanged), 201: ("created", b.OfferChanged)}, body=OfferSpec, optional=("id",),
        etag=True, conditional=True),
    ("patch", "/v1/offers/{offer_id}"): Operation(
        "JSON merge patch of an offer: objects merge, null removes a field.", {200: ("patched", b.OfferChanged)},
        (404,), body=OfferSpec, patch=True, etag=True, conditional=True),
    ("delete", "/v1/offers/{offer_id}"): Operation("Remove an offer.", {200: ("deleted", b.OfferDeleted)}, (404,),
                                                   conditional=True),
    ("get", "/v1/subscribers/{subscriber_id}"): Operation(
        "A subscriber's profile.", {200: ("profile", b.Profile)}, (400, 404)),
    ("put", "/v1/subscribers/{subscriber_id}"): Operation(
        "Replace a profile (null values are dropped).",
        {200: ("replaced", b.Profile), 201: ("created", b.Profile)}, body=FeatureMap),
    ("patch", "/v1/subscribers/{subscriber_id}"): Operation(
        "Merge fields into a profile; null removes one.", {200: ("patched", b.Profile)}, (404,),
        body=FeatureMap, patch=True),
    ("delete", "/v1/subscribers/{subscriber_id}"): Operation(
        "Remove a profile.", {200: ("deleted", b.ProfileDeleted)}, (400, 404)),
    ("get", "/v1/openapi.json"): Operation("This document.", {200: ("OpenAPI 3.1", dict[str, Any])}, redis=False),
    ("get", "/metrics"): Operation(
        "Prometheus metrics in the text format 0.0.4; see docs/operations.md#metrics.",
        {200: ("metrics", str)}, media="text/plain"),
    ("get", "/healthz"): Operation(
        "The process is up (503 redis_down: the embedded Redis could not be restarted within "
        "redis_restart_timeout_seconds). Never calls Redis.", {200: ("ok", b.Health)}, (503,), redis=False),
    ("get", "/readyz"): Operation(
        "Redis, the model and the learner are up, a lead-capable process can do the learner's duties, and "
        "the backlog is within backlog_limit (503 backlog_full past it).",
        {200: ("ready", b.Ready)}, (503,)),
    # The web UI's JSON endpoints (docs/ui.md); its HTML pages and static files are not API.
    ("post", "/ui/login"): Operation(
        f"Exchange an API key for a session cookie ({SESSION_COOKIE}: HttpOnly, SameSite=Strict).",
        {200: ("signed in (or open: no keys are configured)", b.SessionInfo)}, (401,), body=LoginRequest),
    ("post", "/ui/logout"): Operation(
        f"End the browser session (send {CSRF_HEADER}) and clear the cookie.", {200: ("signed out", b.SignedOut)},
        (403,)),
    ("get", "/ui/api/session"): Operation(
        f"The signed-in session: scopes and the CSRF token for {CSRF_HEADER}.", {200: ("session", b.SessionInfo)},
        (401,)),
    ("get", "/ui/api/agent/reasons"): Operation(
        "The catalog's call reasons, labelled in the page's language (en, ru; else English).",
        {200: ("call reasons", b.CallReasons)}),
    ("get", "/ui/api/caller/{subscriber_id}"): Operation(
        "The caller card: the stored profile, the names of its services that are offers (in the page's "
        "language) and the agent desktop's recent contacts.",
        {200: ("the caller card", b.CallerCard)}, (400,)),
    ("post", "/ui/api/agent/decide"): Operation(
        "A logged contact-center decision over the catalog (k=3, explained), with names, values and reasons.",
        {200: ("the decision, as cards", b.AgentDecision)}, (409,), body=AgentDecide),
    ("post", "/ui/api/agent/reward"): Operation(
        "The desktop's Accept/Decline: /v1/reward for one shown offer, refused with 409 other_subscriber when "
        "the event was decided for another caller than subscriber_id.", _REWARD_OK, (404, 409), body=AgentReward),
    ("get", "/ui/api/analytics"): Operation(
        "Settled decisions by offer, channel and policy, a time series and the lift over control.",
        {200: ("analytics", b.UiAnswer)}, (400,), query={"window": {"enum": list(WINDOWS), "default": "1h"}}),
    ("get", "/ui/api/overview"): Operation(
        "Caps against today's counters and stream consumer lag.", {200: ("caps, consumers, pending", b.UiAnswer)}),
}

_STATUS = {400: "bad request: `field` names what is wrong and `message` why",
           401: "no API key, an unknown one, or no signed-in session",
           403: "the key (or session) lacks the scope, or a signed-in browser sent no CSRF token",
           404: "not found", 408: "the body did not arrive within body_timeout_seconds",
           409: "a conflict with the state (the code says which)",
           412: "If-Match names another version than the stored one (stale_version): its ETag is in the answer", 413: "the body is larger than max_body_bytes",
           415: "the body is not sent as JSON", 503: "Redis (or the model) is not available, or (decide, reward, activate) the backlog "
                "is past backlog_limit (backlog_full); retry after Retry-After"}
_SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key from the api_keys setting. Its scopes (channel: decide, reward, events; "
                              "profiles: subscriber profiles; admin: offers, stats, metrics, profiles) are the "
                              "requirement's list."},
    "bearer": {"type": "http", "scheme": "bearer", "description": "The same API key as Authorization: Bearer."},
    "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                "description": f"A browser session from POST /ui/login, with the scopes of its key; its POST, PUT, "
                               f"PATCH and DELETE requests must send the session's CSRF token in {CSRF_HEADER}."},
}


def build(router: web.UrlDispatcher, settings: Settings) -> dict[str, Any]:
    """The document for an app's routes and settings (call once the routes are added)."""
    scopes = _route_scopes(router)
    missing = set(scopes) - set(OPERATIONS)
    stale = set(OPERATIONS) - set(scopes)
    if missing or stale:
        raise RuntimeError(f"OpenAPI operations out of step with the routes: undocumented {sorted(missing)}, "
                           f"no such route {sorted(stale)}")
    types = [ErrorBody] + [t for op in OPERATIONS.values() for t in (op.body, *(a for _, a in op.ok.values()))
                           if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    named = dict(zip(map(id, types), schemas))
    _deployment(components, settings)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        paths.setdefault(path, {})[method] = _operation(path, op, named, components, scopes[(method, path)],
                                                        settings)
    return {
        "openapi": "3.1.0",
        "info": {"title": "nextbest", "version": "1",
                 "description": "Real-time next-best-action decisions with a contextual bandit. Generated from "
                                "the types that validate requests and encode answers; docs/api.md explains."},
        "paths": paths,
        "components": {"schemas": components, **({"securitySchemes": _SECURITY_SCHEMES} if settings.api_keys
                                                 else {})},
    }


def _route_scopes(router: web.UrlDispatcher) -> dict[tuple[str, str], tuple[str, ...] | None]:
    """(method, path) → the scopes its handler requires, for every API route (HEAD, the
    HTML pages and static files left out)."""
    found = {}
    for route in router.routes():
        if route.resource is None or route.method == "HEAD" or isinstance(route.resource, web.StaticResource):
            continue
        path = route.resource.canonical
        if route.method == "GET" and path in ("/", "/ui/", "/ui/agent", "/ui/login"):
            continue
        found[(route.method.lower(), path)] = getattr(route.handler, "scope", None)
    return found


def _operation(path: str, op: Operation, named: dict[int, dict], components: dict[str, Any],
               scope: tuple[str, ...] | None, settings: Settings) -> dict[str, Any]:
    spec: dict[str, Any] = {"summary": op.summary}
    if scope is not None:
        spec["description"] = f"Scope: {' or '.join(scope)}."
    params = [{"name": name, "in": "path", "required": True, "schema": msgspec.json.schema(PATH_TYPES[name]),
               **({"description": _SUBSCRIBER} if name == "subscriber_id" else {})}
              for name in re.findall(r"\{(\w+)\}", path)]
    params += [{"name": name, "in": "query", "required": False, "schema": dict(schema)}
               for name, schema in op.query.items()]
    if op.conditional:
        params.append({"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "the ETag the change was made against (or *): 412 stale_version otherwise"})
    if params:
        spec["parameters"] = params
    errors = set(op.errors)
    if op.body is not None:
        body = named[id(op.body)]
        if op.patch:
            body = _merge_patch(body, components)
        elif op.optional:
            body = copy.deepcopy(_target(body, components))
            body["required"] = [name for name in body.get("required", []) if name not in op.optional]
        media = {JSON: {"schema": body}}
        if op.patch:
            media = {MERGE_PATCH: {"schema": body}, **media}
        spec["requestBody"] = {"required": True, "content": media}
        errors |= {400, 408, 413, 415}
    if scope is not None and settings.api_keys:
        spec["security"] = [{scheme: [s]} for s in scope for scheme in _SECURITY_SCHEMES]
        errors |= {401, 403}
    if op.redis:
        errors.add(503)
    if op.conditional:   # 400: a malformed If-Match
        errors |= {400, 412}
    responses: dict[str, Any] = {}
    for status, (description, answer) in op.ok.items():
        responses[str(status)] = {"description": description,
                                  "content": {op.media: {"schema": named[id(answer)]}},
                                  **({"headers": {"ETag": {"schema": {"type": "string"}}}} if op.etag else {})}
    for status in sorted(errors):
        responses[str(status)] = {"description": _STATUS[status], "content": {JSON: {"schema": named[id(ErrorBody)]}},
                                  **({"headers": {"Retry-After": {"schema": {"type": "integer"}}}}
                                     if status == 503 else {})}
    spec["responses"] = dict(sorted(responses.items()))
    return spec


def _target(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The schema itself, or the component it refers to."""
    return components[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema


def _merge_patch(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """An RFC 7386 patch of an object type: any of its fields, each also null (remove it),
    and so on inside the objects it holds (a patch merges into them)."""
    patch = _patched(_target(schema, components), components, depth=0)
    patch["description"] = "a JSON merge patch (RFC 7386): null removes a field"
    return patch


def _patched(schema: dict[str, Any], components: dict[str, Any], depth: int) -> dict[str, Any]:
    schema = _target(schema, components)
    if "anyOf" in schema and depth <= 4:
        return {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")},
                "anyOf": [_patched(branch, components, depth + 1) for branch in schema["anyOf"]]}
    if schema.get("type") != "object" or depth > 4:
        return {k: v for k, v in schema.items() if k != "default"}
    patch = {k: v for k, v in copy.deepcopy(schema).items() if k not in ("required", "title", "default")}
    if "properties" in patch:
        patch["properties"] = {name: {"anyOf": [_patched(prop, components, depth + 1), {"type": "null"}]}
                               for name, prop in patch["properties"].items()}
    if isinstance(patch.get("additionalProperties"), dict):
        patch["additionalProperties"] = {"anyOf": [_patched(patch["additionalProperties"], components, depth + 1),
                                                   {"type": "null"}]}
    return patch


def _branch(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The ``kind`` branch of an optional field's ``anyOf`` (msgspec writes ``X | None`` so)."""
    return next(s for s in schema.get("anyOf", [schema]) if s.get("type") == kind)


def _deployment(components: dict[str, Any], settings: Settings) -> None:
    """What this deployment configures, which the decoders' types leave to the settings
    (and the handlers check): the channels, offers per decision, outcomes, reward bounds."""
    decide = components["DecideRequest"]["properties"]
    decide["channel"]["enum"] = list(settings.channels)
    _branch(decide["offers"], "array")["maxItems"] = settings.max_offers
    offer = components["OfferSpec"]["properties"]
    _branch(offer["channels"], "array")["items"]["enum"] = list(settings.channels)
    reward = components["RewardRequest"]
    props = reward["properties"]
    number = _branch(props["reward"], "number")
    number["minimum"], number["maximum"] = settings.reward_min, settings.reward_max
    _branch(props["outcome"], "string")["enum"] = sorted(settings.outcomes)
    components["AgentReward"]["properties"]["outcome"]["enum"] = sorted(settings.outcomes)
    # exactly one of reward and outcome; at most one of offer_id and slot
    reward["oneOf"] = [{"required": ["reward"], "properties": {"reward": {"type": "number"},
                                                               "outcome": {"type": "null"}}},
                       {"required": ["outcome"], "properties": {"outcome": {"type": "string"},
                                                                "reward": {"type": "null"}}}]
    reward["not"] = {"required": ["offer_id", "slot"], "properties": {"offer_id": {"type": "string"},
                                                                     "slot": {"type": "integer"}}}
