"""The OpenAPI 3.1 description served at /v1/openapi.json."""

from __future__ import annotations

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}}}},
}
_FEATURES = {
    "type": "object",
    "description": "Free-form features: string (categorical), number, boolean, null (absent) or list of strings "
                   "(a set). Any Unicode in names and values.",
    "additionalProperties": {"type": ["string", "number", "boolean", "null", "array"], "items": {"type": "string"}},
}
_EVENT_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:\\-]{1,128}$"}
_OFFER_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:\\-]{1,128}$", "description": "catalog or inline alike"}
_SUBSCRIBER_ID = {"type": "string", "minLength": 1, "maxLength": 256}
_OFFER = {"type": "object", "required": ["id", "name"], "description": "see docs/offers.md",
          "properties": {"id": _OFFER_ID, "name": {"type": "string"}, "value": {"type": "number"},
                         "features": _FEATURES, "eligibility": {"type": "string"}, "enabled": {"type": "boolean"},
                         "channels": {"type": "array", "items": {"type": "string"}},
                         "description": {"type": "string"}, "terms": {"type": "string"},
                         "locales": {"type": "object", "description": "language tag → {name, description, terms}",
                                     "additionalProperties": {"type": "object", "additionalProperties": False,
                                                              "properties": {"name": {"type": "string"},
                                                                             "description": {"type": "string"},
                                                                             "terms": {"type": "string"}}}}}}


def _errors(*codes: int) -> dict:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": _ERROR}}} for c in codes}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _merge_patch(schema: dict) -> dict:
    """A PATCH body: RFC 7386's media type, or plain JSON."""
    return {"content": {"application/merge-patch+json": {"schema": schema}, "application/json": {"schema": schema}}}


# The web UI's JSON endpoints (docs/ui.md); its HTML pages and static files are not API.
_SESSION = {"type": "object", "properties": {
    "open": {"type": "boolean", "description": "no API keys are configured"}, "name": {"type": ["string", "null"]},
    "scopes": {"type": "array", "items": {"type": "string"}}, "csrf_token": {"type": "string"},
    "csrf_header": {"type": "string"}, "home": {"type": "string"}}}
_UI: dict = {
    "/ui/login": {"post": {
        "summary": "Exchange an API key for a session cookie (nextbest_session: HttpOnly, SameSite=Strict).",
        "requestBody": {"required": True, **_json({"type": "object", "required": ["key"], "additionalProperties": False,
                                                   "properties": {"key": {"type": "string"}}})},
        "responses": {"200": {"description": "signed in", **_json(_SESSION)}, **_errors(400, 401, 415)}}},
    "/ui/logout": {"post": {"summary": "End the browser session (send X-CSRF-Token) and clear the cookie.",
                            "responses": {"200": {"description": "signed out"}, **_errors(403)}}},
    "/ui/api/session": {"get": {"summary": "The signed-in session: scopes and the CSRF token for X-CSRF-Token.",
                                "responses": {"200": {"description": "session", **_json(_SESSION)}, **_errors(401)}}},
    "/ui/api/agent/reasons": {"get": {
        "summary": "The catalog's call reasons (channel), labelled in the Accept-Language (en, ru; else English).",
        "responses": {"200": {"description": "{reasons: [{code, label}]}"}, **_errors(401, 403)}}},
    "/ui/api/caller/{subscriber_id}": {"get": {
        "summary": "The caller card (channel): the stored profile, the names of its services that are offers "
                   "(service_names, in the Accept-Language) and the agent desktop's recent contacts.",
        "parameters": [{"name": "subscriber_id", "in": "path", "required": True, "schema": {"type": "string"},
                        "description": "the raw id; only its keyed hash is stored"}],
        "responses": {"200": {"description": "known, profile, contacts"}, **_errors(400, 401, 403)}}},
    "/ui/api/agent/decide": {"post": {
        "summary": "A logged contact-center decision over the catalog (k=3, explained), with names, values and "
                   "reasons (channel).",
        "requestBody": {"required": True, **_json({
            "type": "object", "required": ["subscriber_id"], "additionalProperties": False,
            "properties": {"subscriber_id": {"type": "string"}, "reason": {"type": ["string", "null"]},
                           "reason_text": {"type": ["string", "null"]}}})},
        "responses": {"200": {"description": "event_id, policy, offers (name, description, terms in the "
                                             "Accept-Language) with why, excluded"},
                      **_errors(400, 401, 403, 409, 415)}}},
    "/ui/api/agent/reward": {"post": {
        "summary": "The desktop's Accept/Decline (channel): /v1/reward for one shown offer, refused with 409 "
                   "other_subscriber when the event was decided for another caller than subscriber_id.",
        "requestBody": {"required": True, **_json({
            "type": "object", "required": ["event_id", "subscriber_id", "offer_id", "outcome"],
            "additionalProperties": False,
            "properties": {"event_id": _EVENT_ID, "subscriber_id": {"type": "string"},
                           "offer_id": {"type": "string"}, "outcome": {"type": "string"}}})},
        "responses": {"200": {"description": "as /v1/reward"}, "202": {"description": "as /v1/reward"},
                      **_errors(400, 401, 403, 404, 409, 415)}}},
    "/ui/api/analytics": {"get": {
        "summary": "Settled decisions by offer, channel and policy, a time series and the lift over control (admin).",
        "parameters": [{"name": "window", "in": "query", "schema": {"enum": ["15m", "1h", "24h", "7d"],
                                                                       "default": "1h"}}],
        "responses": {"200": {"description": "analytics"}, **_errors(400, 401, 403)}}},
    "/ui/api/overview": {"get": {"summary": "Caps against today's counters and stream consumer lag (admin).",
                                 "responses": {"200": {"description": "caps, consumers, pending"},
                                               **_errors(401, 403)}}},
}


OPENAPI: dict = {
    "openapi": "3.1.0",
    "info": {"title": "nextbest", "version": "1",
             "description": "Real-time next-best-action decisions with a contextual bandit."},
    "paths": {
        "/v1/decide": {"post": {
            "summary": "Rank candidate offers for a contact; the first is served and logged with its probability.",
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["channel"], "additionalProperties": False,
                "properties": {
                    "channel": {"type": "string", "description": "one of the configured channels (setting "
                                "channels: contact_center, web, search, ussd by default)"},
                    "subscriber_id": {**_SUBSCRIBER_ID, "description": "stored only as a keyed hash"},
                    "context": _FEATURES,
                    "offers": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["id"], "additionalProperties": False,
                        "properties": {"id": _OFFER_ID, "features": _FEATURES,
                                       "value": {"type": "number", "minimum": 0, "default": 1.0},
                                       "prior": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1}}}},
                    "k": {"type": "integer", "minimum": 1, "maximum": 1000,
                          "description": "fewer slots than the channel shows; one slot: the ranking's length"},
                    "event_id": {**_EVENT_ID, "description": "client id: a retry returns the same decision"},
                    "defer_activation": {"type": "boolean", "default": False},
                }})},
            "responses": {"200": {"description": "the decision", **_json({
                "type": "object", "properties": {
                    "event_id": {"type": "string"}, "model_version": {"type": "string"},
                    "policy": {"type": "string", "enum": ["model", "control"],
                               "description": "who chose: the model, or the control group's baseline"},
                    "slots": {"type": "array", "description": "the offers to show, slot 1 first; each drawn "
                              "with `probability` given the slots before it", "items": {
                                  "type": "object", "properties": {
                                      "slot": {"type": "integer"}, "offer_id": {"type": "string"},
                                      "probability": {"type": "number"}}}},
                    "ranking": {"type": "array", "deprecated": True, "description": "one slot: the served offer, "
                                "then the others by probability; several: the slots", "items": {
                                    "type": "object", "properties": {
                                        "offer_id": {"type": "string"}, "probability": {"type": "number"}}}}}})},
                **_errors(400, 408, 409, 413, 415, 500, 503)},
        }},
        "/v1/reward": {"post": {
            "summary": "Report the outcome of an offer shown in a decision (one slot; slot 1 by default).",
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["event_id"], "additionalProperties": False,
                "properties": {"event_id": _EVENT_ID, "reward": {"type": "number", "description": "within [reward_min, reward_max], ±1e9 by default"},
                               "outcome": {"type": "string", "description": "a configured name, e.g. accept"},
                               "reward_id": {**_EVENT_ID, "description": "deduplicates retries (per slot)"},
                               "offer_id": {**_OFFER_ID, "description": "the shown offer this is about"},
                               "slot": {"type": "integer", "minimum": 1, "maximum": 10,
                                        "description": "the same by slot number (not with offer_id)"}}})},
            "responses": {
                "200": {"description": "joined, or a duplicate (not learned twice)"},
                "202": {"description": "stored until activation or the other slots' rewards, or accumulated "
                                       "until the deadline"},
                **_errors(400, 404, 408, 409, 413, 415, 500, 503)},
        }},
        "/v1/events/{event_id}/activate": {"post": {
            "summary": "Mark a deferred decision as shown, so it is learned from.",
            "parameters": [{"name": "event_id", "in": "path", "required": True, "schema": _EVENT_ID}],
            "responses": {"200": {"description": "activated"}, **_errors(404, 409)},
        }},
        "/v1/events/{event_id}": {"get": {
            "summary": "The state of a decision: pending, joined, defaulted or dropped.",
            "parameters": [{"name": "event_id", "in": "path", "required": True, "schema": _EVENT_ID}],
            "responses": {"200": {"description": "state"}, **_errors(404)},
        }},
        "/v1/stats": {"get": {"summary": "Counters, model and learner state.",
                              "responses": {"200": {"description": "stats"}, **_errors(503)}}},
        "/v1/offers": {
            "get": {"summary": "The offer catalog and its version (admin).", "responses": {"200": {"description": "catalog"}}},
            "post": {"summary": "Create an offer (admin).", "requestBody": {"required": True, **_json(_OFFER)},
                     "responses": {"201": {"description": "created"}, **_errors(400, 409)}},
        },
        "/v1/offers/{offer_id}": {
            "parameters": [{"name": "offer_id", "in": "path", "required": True, "schema": _OFFER_ID}],
            "get": {"summary": "One offer (admin).", "responses": {"200": {"description": "offer"}, **_errors(404)}},
            "put": {"summary": "Create or replace an offer (admin).", "requestBody": {"required": True, **_json(_OFFER)},
                    "responses": {"200": {"description": "replaced"}, "201": {"description": "created"},
                                  **_errors(400)}},
            "patch": {"summary": "JSON merge patch of an offer (admin).",
                      "requestBody": {"required": True, **_merge_patch({"type": "object"})},
                      "responses": {"200": {"description": "patched"}, **_errors(400, 404)}},
            "delete": {"summary": "Remove an offer (admin).", "responses": {"200": {"description": "deleted"},
                                                                              **_errors(404)}},
        },
        "/v1/subscribers/{subscriber_id}": {
            "parameters": [{"name": "subscriber_id", "in": "path", "required": True, "schema": _SUBSCRIBER_ID,
                            "description": "the raw id; only its keyed hash is stored"}],
            "get": {"summary": "A subscriber's profile (profiles or admin).", "responses": {"200": {"description": "profile"},
                                                                                **_errors(404)}},
            "put": {"summary": "Replace a profile (profiles or admin).", "requestBody": {"required": True, **_json(_FEATURES)},
                    "responses": {"200": {"description": "replaced"}, "201": {"description": "created"},
                                  **_errors(400)}},
            "patch": {"summary": "Merge fields into a profile; null removes (profiles or admin).",
                      "requestBody": {"required": True, **_merge_patch(_FEATURES)},
                      "responses": {"200": {"description": "patched"}, **_errors(400, 404)}},
            "delete": {"summary": "Remove a profile (profiles or admin).", "responses": {"200": {"description": "deleted"},
                                                                              **_errors(404)}},
        },
        "/v1/openapi.json": {"get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI"}}}},
        "/metrics": {"get": {
            "summary": "Prometheus metrics in the text format 0.0.4 (admin); see docs/operations.md#metrics.",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **_errors(401, 403)}}},
        "/healthz": {"get": {"summary": "The process is up (503 redis_down: the embedded Redis could not be "
                                        "restarted within redis_restart_timeout_seconds).",
                             "responses": {"200": {"description": "ok"}, **_errors(503)}}},
        "/readyz": {"get": {"summary": "Redis, the model and the learner are up, and a lead-capable process can "
                                       "do the learner's duties.",
                            "responses": {"200": {"description": "ready"}, **_errors(503)}}},
        **_UI,
    },
}
