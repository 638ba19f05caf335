"""The subscriber profile API (``profiles`` or ``admin`` scope): single profiles, live. Bulk loads go
through `nextbest features load`. Paths carry the raw subscriber id; only its keyed
hash is stored."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from bandit.decide.schemas import FeatureMap, field_error
from bandit.http.auth import requires
from bandit.errors import ApiError
from bandit.http.bodies import Profile, ProfileDeleted, struct_response
from bandit.http.handlers import json_object
from bandit.store.profiles import merge
from bandit.state import DECIDER, PROFILES, SETTINGS
from policies.vwtext import FeatureError


def _features(body: dict[str, Any]) -> dict[str, Any]:
    """A profile body held to decide's rule for feature maps (at most 1,000 names), the
    limit the OpenAPI document states."""
    try:
        return msgspec.convert(body, FeatureMap)
    except msgspec.ValidationError as exc:
        raise field_error(exc) from None


def _check(request: web.Request, profile: dict[str, Any]) -> None:
    """A profile must encode under the feature schema: the decide path will."""
    try:
        request.app[SETTINGS].features.encode(profile, {}, "check", request.app[DECIDER].subscriber_hash)
    except FeatureError as exc:
        raise ApiError(400, "invalid_field", exc.reason, exc.name) from None


def _key(request: web.Request) -> tuple[str, str]:
    decider = request.app[DECIDER]   # decide's own reading: a profile under an id it refuses could never be read
    subscriber_id = decider.subscriber_id(request.match_info["subscriber_id"])
    return subscriber_id, decider.subscriber_hash(subscriber_id)


@requires("profiles", "admin")
async def get_subscriber(request: web.Request) -> web.Response:
    subscriber_id, key = _key(request)
    profile = await request.app[PROFILES].get(key)
    if profile is None:
        raise ApiError(404, "unknown_subscriber", "no profile for this subscriber", "subscriber_id")
    return struct_response(Profile(subscriber_id, profile))


@requires("profiles", "admin")
async def put_subscriber(request: web.Request) -> web.Response:
    subscriber_id, key = _key(request)
    body = _features(await json_object(request, "invalid_profile", "a profile's features"))
    profile = {name: value for name, value in body.items() if value is not None}
    _check(request, profile)
    existed = await request.app[PROFILES].get(key) is not None
    await request.app[PROFILES].put(key, profile)
    return struct_response(Profile(subscriber_id, profile), status=200 if existed else 201)


@requires("profiles", "admin")
async def patch_subscriber(request: web.Request) -> web.Response:
    subscriber_id, key = _key(request)
    patch = _features(await json_object(request, "invalid_profile", "a profile's features", merge_patch=True))
    current = await request.app[PROFILES].get(key)
    if current is None:
        raise ApiError(404, "unknown_subscriber", "no profile for this subscriber; PUT one", "subscriber_id")
    _check(request, merge(current, patch))
    profile = await request.app[PROFILES].patch(key, patch)
    return struct_response(Profile(subscriber_id, profile))


@requires("profiles", "admin")
async def delete_subscriber(request: web.Request) -> web.Response:
    subscriber_id, key = _key(request)
    if not await request.app[PROFILES].delete(key):
        raise ApiError(404, "unknown_subscriber", "no profile for this subscriber", "subscriber_id")
    return struct_response(ProfileDeleted(subscriber_id, True))


def add_subscriber_routes(app: web.Application) -> None:
    app.router.add_get("/v1/subscribers/{subscriber_id}", get_subscriber)
    app.router.add_put("/v1/subscribers/{subscriber_id}", put_subscriber)
    app.router.add_patch("/v1/subscribers/{subscriber_id}", patch_subscriber)
    app.router.add_delete("/v1/subscribers/{subscriber_id}", delete_subscriber)
