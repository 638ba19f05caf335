"""API keys with scopes: ``channel`` (decide, reward, events), ``profiles`` (the
subscriber profiles: a CRM feeding sales back needs no right to change offers) and
``admin`` (offers, stats, and the profiles too). Keys are kept only as SHA-256 digests, compared in constant time, and never
logged. With no keys configured the API is open (local use).

A browser signed in at /ui/login carries a session cookie instead of a key: it has the
scopes of the key it was exchanged for, and its state-changing requests must echo the
session's CSRF token in ``X-CSRF-Token`` (a key in a header needs no token: no browser
sends it on its own)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bandit.errors import ApiError

SCOPES = ("channel", "admin", "profiles")
SESSION_COOKIE = "nextbest_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes
    scopes: frozenset[str]


def parse_api_keys(value: object) -> tuple[ApiKey, ...]:
    """From the config file: a list of {name, key, scopes}; from the environment:
    ``name=KEY:scope+scope;name2=KEY2:scope``."""
    if isinstance(value, str):
        entries = []
        for item in filter(None, (part.strip() for part in value.split(";"))):
            name, sep, rest = item.partition("=")
            key, sep2, scopes = rest.rpartition(":")
            if not (sep and sep2 and name and key):
                raise ValueError("expected name=KEY:scope+scope;... in the environment")
            entries.append({"name": name, "key": key, "scopes": scopes.split("+")})
        value = entries
    if not isinstance(value, list):
        raise ValueError("expected a list of {name, key, scopes}")
    keys = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping) or set(entry) != {"name", "key", "scopes"}:
            raise ValueError(f"entry {index}: expected exactly name, key and scopes")
        key, scopes = entry["key"], entry["scopes"]
        if not isinstance(key, str) or len(key) < 16:
            raise ValueError(f"entry {index} ({entry['name']}): a key must be a string of at least 16 characters")
        if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
            raise ValueError(f"entry {index} ({entry['name']}): scopes must be a non-empty list of {', '.join(SCOPES)}")
        keys.append(ApiKey(str(entry["name"]), _digest(key), frozenset(scopes)))
    return tuple(keys)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def requires(scope: str, *alternatives: str):
    """Mark a handler with the scope a caller's key must carry (or one of the alternatives)."""
    def mark(handler):
        handler.scope = (scope, *alternatives)
        return handler
    return mark


def _lacks(held: frozenset[str], scope: str | tuple[str, ...]) -> str | None:
    """None when ``held`` grants ``scope`` (any of a tuple), else what is missing, for the message."""
    wanted = (scope,) if isinstance(scope, str) else scope
    if held.intersection(wanted):
        return None
    return " or ".join(repr(s) for s in wanted)


def presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def identify(keys: tuple[ApiKey, ...], key: str | None) -> ApiKey:
    if key is None:
        raise ApiError(401, "unauthorized", "an API key is required: Authorization: Bearer <key> or X-API-Key")
    digest = _digest(key)
    match = None
    for candidate in keys:   # every key is compared, in constant time
        if hmac.compare_digest(candidate.digest, digest):
            match = candidate
    if match is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    return match


def authorize(keys: tuple[ApiKey, ...], key: str | None, scope: str | tuple[str, ...]) -> ApiKey:
    match = identify(keys, key)
    missing = _lacks(match.scopes, scope)
    if missing is not None:
        raise ApiError(403, "forbidden", f"this key lacks the {missing} scope")
    return match


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the scopes of the key it was exchanged for."""

    name: str
    scopes: frozenset[str]
    csrf: str


class SessionResolver(Protocol):
    async def __call__(self, request: web.Request, session_id: str) -> Session | None: ...


SESSIONS = web.AppKey("sessions", SessionResolver)   # set by bandit.ui


def authorize_session(request: web.Request, session: Session | None, scope: str | tuple[str, ...]) -> Session:
    if session is None:
        raise ApiError(401, "unauthorized", "the session expired or was signed out; sign in again at /ui/login")
    missing = _lacks(session.scopes, scope)
    if missing is not None:
        raise ApiError(403, "forbidden", f"this session's key lacks the {missing} scope")
    if request.method in UNSAFE_METHODS:
        check_csrf(request, session)
    return session


def check_csrf(request: web.Request, session: Session) -> None:
    if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), session.csrf.encode()):
        raise ApiError(403, "csrf_token", f"a signed-in browser must send the session's {CSRF_HEADER} header",
                       CSRF_HEADER)


def make_auth_middleware(keys: tuple[ApiKey, ...]):
    @web.middleware
    async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
        route_handler = request.match_info.route.handler
        scope = getattr(route_handler, "scope", None)
        if keys and scope is not None:
            key, cookie = presented_key(request), request.cookies.get(SESSION_COOKIE)
            if key is None and cookie and SESSIONS in request.app:
                authorize_session(request, await request.app[SESSIONS](request, cookie), scope)
            else:
                authorize(keys, key, scope)
        return await handler(request)
    return auth_middleware


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
