"""Request bodies, decoded and validated in one step (msgspec), with errors that name
the field: every bad request becomes a 4xx ``{"error": {code, message, field}}``."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Union

import msgspec

from bandit.errors import ApiError
from bandit.store.identity import MAX_SUBSCRIBER_ID
from policies.offers import OfferId
from policies.validation import split_validation_error

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
# at least one non-space character (bandit.store.identity.subscriber_id_problem, the one rule)
SubscriberId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SUBSCRIBER_ID, pattern=r"\S")]
# Values are checked where they are encoded (policies.vwtext), which names the feature;
# the schema says what that accepts, for the OpenAPI document.
FEATURES_SCHEMA: dict = {
    "type": "object",
    "description": "Free-form features: string (categorical), number, boolean, null (absent) or a list of "
                   "strings (a set). Any Unicode in names and values.",
    "maxProperties": 1000,
    "additionalProperties": {"anyOf": [{"type": ["string", "number", "boolean", "null"]},
                                       {"type": "array", "items": {"type": "string"}}]},
}
FeatureMap = Annotated[dict[str, Any], msgspec.Meta(max_length=1000, extra_json_schema=FEATURES_SCHEMA)]


class OfferIn(msgspec.Struct, forbid_unknown_fields=True):
    """A candidate sent with the request (instead of the catalog)."""

    id: OfferId   # the catalog's rule: ids go into Redis keys and space-separated lists
    # a FeatureMap, kept as JSON: the decider caches by it (a factory: the document shows no Raw default)
    features: Annotated[msgspec.Raw, msgspec.Meta(extra_json_schema=FEATURES_SCHEMA)] = msgspec.field(
        default_factory=lambda: msgspec.Raw(b"{}"))
    value: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    prior: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1   # acceptance probability before any data


class DecideRequest(msgspec.Struct, forbid_unknown_fields=True):
    channel: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    subscriber_id: Union[SubscriberId, None] = None
    context: FeatureMap = {}
    offers: Union[list[OfferIn], None] = None
    k: Union[Annotated[int, msgspec.Meta(ge=1, le=1000)], None] = None
    event_id: Union[Identifier, None] = None
    defer_activation: bool = False
    explain: bool = False


class RewardRequest(msgspec.Struct, forbid_unknown_fields=True):
    event_id: Identifier
    reward: Union[float, None] = None
    outcome: Union[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], None] = None
    reward_id: Union[Identifier, None] = None
    offer_id: Union[OfferId, None] = None    # which shown offer this outcome is about (default: slot 1's)
    slot: Union[Annotated[int, msgspec.Meta(ge=1, le=10)], None] = None


_decoders: dict[type, msgspec.json.Decoder] = {}
_canonical = msgspec.json.Encoder(order="sorted")


def canonical(request: msgspec.Struct) -> bytes:
    """A decoded request as bytes that are the same for the same request whatever the
    order of its keys and its whitespace (an offer's ``features`` stay as sent): what a
    retry is told from another request under the same id by."""
    return _canonical.encode(request)



# What a body nested too deeply gets, from every parser (orjson says "depth limit exceeded"
# past 1024 levels; msgspec raises RecursionError at about the same depth).
TOO_DEEP = "request body is not valid JSON: depth limit exceeded (nested too deeply)"


# Bodies parsed as plain JSON (offers, profiles) are walked by recursive code (merge
# patch, validation): deeper than this is refused up front. No valid body comes close.
MAX_DEPTH = 64


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse a parsed body nested deeper than ``limit`` (iteratively: no recursion to blow)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise ApiError(400, "invalid_json", f"request body is not valid JSON: depth limit exceeded "
                               f"(nested deeper than {limit} levels)")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def decode(body: bytes, schema: type[msgspec.Struct]) -> msgspec.Struct:
    decoder = _decoders.get(schema) or _decoders.setdefault(schema, msgspec.json.Decoder(schema))
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise field_error(exc, body=body) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:   # msgspec's own guard against a deep body: a client error, not a 500
        raise ApiError(400, "invalid_json", TOO_DEEP) from None


_feature_map = msgspec.json.Decoder(FeatureMap)


def decode_feature_map(raw: bytes) -> dict[str, Any]:
    """A feature map left raw by the request's decoder, checked as it would have been;
    raises msgspec.ValidationError (see ``field_error``), or ApiError for a map nested
    too deeply."""
    try:
        return _feature_map.decode(raw)
    except RecursionError:
        raise ApiError(400, "invalid_json", TOO_DEEP) from None


def field_error(exc: msgspec.ValidationError, within: str = "", body: bytes | None = None) -> ApiError:
    """A 400 naming the field msgspec complained about (``within``: where the decoded
    value sits in the request). msgspec writes a map's key as ``[...]``; with the
    ``body`` the key is looked up, so the field is ``context.arpu``, not ``context[...]``."""
    message, path = split_validation_error(str(exc))
    if path is not None and "[...]" in path and body is not None:
        path = _name_keys(body, path)
    return ApiError(400, "invalid_field", message, ".".join(p for p in (within, path) if p) or None)


_STEP = re.compile(r"\.?([^.\[]+)|\[(\d+|\.\.\.)\]")


def _name_keys(body: bytes, path: str) -> str:
    """Replace each ``[...]`` of ``path`` by the key whose value holds the culprit. The one
    value a map of any values refuses is a number past a 64-bit float (``1e400``): the
    standard library reads it as infinity, which finds it. Best effort: the path as it was
    when the body cannot be walked."""
    try:
        node: Any = json.loads(body)
    except (ValueError, RecursionError):
        return path
    out = []
    for match in _STEP.finditer(path):
        name, index = match.groups()
        if name is not None and isinstance(node, dict) and name in node:
            node = node[name]
            out.append(f".{name}")
        elif index == "..." and isinstance(node, dict):
            key = next((k for k, v in node.items() if _non_finite(v)), None)
            if key is None:
                return path
            node = node[key]
            out.append(f".{key}")
        elif index is not None and index != "..." and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
            out.append(f"[{index}]")
        else:
            return path
    return "".join(out).lstrip(".")


def _non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, (dict, list)):
            stack.extend(item.values() if isinstance(item, dict) else item)
    return False
