"""The offer admin API: marketers change the catalog live. Each change is validated
whole (a bad offer is refused and the catalog stays as it was) and bumps the version.

Edits do not overwrite each other unseen: every offer answers with a strong ``ETag`` (a
digest of it as stored), and ``PUT``/``PATCH``/``DELETE`` with ``If-Match`` change it only
if it is still that offer, checked inside the same optimistic transaction as the write;
otherwise ``412 stale_version`` with the current ``ETag`` (RFC 9110 §13.1.1)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
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


def offer_etag(spec: Mapping[str, Any]) -> str:
    """A strong ETag of an offer as stored: any change of any field changes it."""
    return '"' + hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24] + '"'


_ENTITY_TAG = re.compile(r'(W/)?"[\x21\x23-\x7e]*"')   # RFC 9110 §8.8.3


def _if_match(request: web.Request) -> set[str] | None:
    """The ETags ``If-Match`` lists (``*``: any existing offer), or None without the header."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = {tag.strip() for tag in header.split(",") if tag.strip()}
    if not tags or any(tag != "*" and not _ENTITY_TAG.fullmatch(tag) for tag in tags):
        raise ApiError(400, "invalid_field", 'If-Match: expected the ETag read with the offer (a quoted tag such as '
                       '"3f9a…"), a list of them, or *', "If-Match")
    return tags


def _still(wanted: set[str] | None, stored: Mapping[str, Any] | None, offer_id: str) -> None:
    """412 unless the stored offer is one ``If-Match`` names (weak tags never match: RFC 9110)."""
    if wanted is None:
        return
    current = offer_etag(stored) if stored is not None else None
    if current is not None and ("*" in wanted or current in wanted):
        return
    said = (f"offer {offer_id!r} changed since it was read: it is now ETag {current}; read it again "
            "(GET), look at what changed and reapply your edit" if current is not None
            else f"offer {offer_id!r} does not exist (deleted since it was read?): If-Match asks for the one you read")
    raise ApiError(412, "stale_version", said, "If-Match", headers={"ETag": current} if current else None)


def _tagged(response: web.Response, offer: Offer | None) -> web.Response:
    if offer is not None:
        response.headers["ETag"] = offer_etag(offer.to_json())
    return response


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
    response = struct_response(msgspec.convert(spec, OfferSpec))   # as stored, checked on the way in
    response.headers["ETag"] = offer_etag(spec)
    return response


@requires("admin")
async def create_offer(request: web.Request) -> web.Response:
    offer = _compile(request, await json_object(request, "invalid_offer", "one offer"))

    def create(stored: dict[str, Any] | None) -> Offer:
        if stored is not None:
            raise ApiError(409, "offer_exists", f"offer {offer.id!r} exists; PUT or PATCH it instead", "id")
        return offer
    version, _ = await request.app[CATALOG].change(offer.id, create)
    return _tagged(struct_response(OfferChanged(version, offer.spec), status=201), offer)


@requires("admin")
async def put_offer(request: web.Request) -> web.Response:
    offer_id = request.match_info["offer_id"]
    body = await json_object(request, "invalid_offer", "one offer")
    if body.setdefault("id", offer_id) != offer_id:
        raise ApiError(400, "invalid_offer", f"the body's id {body['id']!r} differs from the path's", "id")
    offer = _compile(request, body)
    existed = False
    wanted = _if_match(request)

    def replace(stored: dict[str, Any] | None) -> Offer:
        nonlocal existed
        _still(wanted, stored, offer_id)
        existed = stored is not None
        return offer
    version, _ = await request.app[CATALOG].change(offer_id, replace)
    return _tagged(struct_response(OfferChanged(version, offer.spec), status=200 if existed else 201), offer)


@requires("admin")
async def patch_offer(request: web.Request) -> web.Response:
    offer_id = request.match_info["offer_id"]
    patch = await json_object(request, "invalid_offer", "one offer", merge_patch=True)
    if patch.get("id", offer_id) != offer_id:
        raise ApiError(400, "invalid_offer", "an offer's id cannot be changed", "id")

    wanted = _if_match(request)

    def apply(stored: dict[str, Any] | None) -> Offer:
        if stored is None:   # gone: 404 whatever If-Match says, as without it
            raise ApiError(404, "unknown_offer", f"no offer {offer_id!r} in the catalog", "id")
        offer = _compile(request, merge_patch(stored, patch))   # a bad patch is a 400 whatever the version
        _still(wanted, stored, offer_id)
        return offer
    version, offer = await request.app[CATALOG].change(offer_id, apply)
    assert offer is not None
    return _tagged(struct_response(OfferChanged(version, offer.spec)), offer)


@requires("admin")
async def delete_offer(request: web.Request) -> web.Response:
    offer_id = request.match_info["offer_id"]
    wanted = _if_match(request)

    def remove(stored: dict[str, Any] | None) -> None:
        if stored is None:
            raise ApiError(404, "unknown_offer", f"no offer {offer_id!r} in the catalog", "id")
        _still(wanted, stored, offer_id)
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
