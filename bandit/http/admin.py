"""The offer admin API: marketers change the catalog live. Each change is validated
whole (a bad offer is refused and the catalog stays as it was) and bumps the version."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from bandit.http.auth import requires
from bandit.errors import ApiError
from bandit.http.bodies import OfferChanged, OfferDeleted, OfferList, struct_response
from bandit.http.handlers import json_object
from bandit.state import CATALOG, SETTINGS
from policies.offers import Offer, OfferError, OfferSpec, compile_offer


def _compile(request: web.Request, raw: Any) -> Offer:
    try:
        settings = request.app[SETTINGS]   # one validation for the API, the UI's editor and catalog files
        return compile_offer(raw, settings.channels, settings.features.types())
    except OfferError as exc:
        raise ApiError(400, "invalid_offer", exc.message, exc.field) from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@requires("admin")
async def list_offers(request: web.Request) -> web.Response:
    catalog = await request.app[CATALOG].current()
    return struct_response(OfferList(catalog.version, [o.spec for o in catalog.offers.values()]))


@requires("admin")
async def get_offer(request: web.Request) -> web.Response:
    offer_id = request.match_info["offer_id"]
    spec = await request.app[CATALOG].get_spec(offer_id)
    if spec is None:
        raise ApiError(404, "unknown_offer", f"no offer {offer_id!r} in the catalog", "id")
    return struct_response(msgspec.convert(spec, OfferSpec))   # as stored, checked on the way in


@requires("admin")
async def create_offer(request: web.Request) -> web.Response:
    offer = _compile(request, await json_object(request, "invalid_offer", "one offer"))

    def create(stored: dict[str, Any] | None) -> Offer:
        if stored is not None:
            raise ApiError(409, "offer_exists", f"offer {offer.id!r} exists; PUT or PATCH it instead", "id")
        return offer
    version, _ = await request.app[CATALOG].change(offer.id, create)
    return struct_response(OfferChanged(version, offer.spec), status=201)


@requires("admin")
async def put_offer(request: web.Request) -> web.Response:
    offer_id = request.match_info["offer_id"]
    body = await json_object(request, "invalid_offer", "one offer")
    if body.setdefault("id", offer_id) != offer_id:
        raise ApiError(400, "invalid_offer", f"the body's id {body['id']!r} differs from the path's", "id")
    offer = _compile(request, body)
    existed = False

    def replace(stored: dict[str, Any] | None) -> Offer:
        nonlocal existed
        existed = stored is not None
        return offer
    version, _ = await request.app[CATALOG].change(offer_id, replace)
    return struct_response(OfferChanged(version, offer.spec), status=200 if existed else 201)


@requires("admin")
async def patch_offer(request: web.Request) -> web.Response:
    offer_id = request.match_info["offer_id"]
    patch = await json_object(request, "invalid_offer", "one offer", merge_patch=True)
    if patch.get("id", offer_id) != offer_id:
        raise ApiError(400, "invalid_offer", "an offer's id cannot be changed", "id")

    def apply(stored: dict[str, Any] | None) -> Offer:
        if stored is None:
            raise ApiError(404, "unknown_offer", f"no offer {offer_id!r} in the catalog", "id")
        return _compile(request, merge_patch(stored, patch))
    version, offer = await request.app[CATALOG].change(offer_id, apply)
    assert offer is not None
    return struct_response(OfferChanged(version, offer.spec))


@requires("admin")
async def delete_offer(request: web.Request) -> web.Response:
    offer_id = request.match_info["offer_id"]

    def remove(stored: dict[str, Any] | None) -> None:
        if stored is None:
            raise ApiError(404, "unknown_offer", f"no offer {offer_id!r} in the catalog", "id")
        return None
    version, _ = await request.app[CATALOG].change(offer_id, remove)
    return struct_response(OfferDeleted(version, offer_id))


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/v1/offers", list_offers)
    app.router.add_post("/v1/offers", create_offer)
    app.router.add_get("/v1/offers/{offer_id}", get_offer)
    app.router.add_put("/v1/offers/{offer_id}", put_offer)
    app.router.add_patch("/v1/offers/{offer_id}", patch_offer)
    app.router.add_delete("/v1/offers/{offer_id}", delete_offer)
