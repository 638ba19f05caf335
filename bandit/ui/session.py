"""Browser sessions: an API key is exchanged once, at /ui/login, for a random session
id in an HttpOnly, SameSite=Strict cookie, so the key never sits in the page's script.
Redis keeps only the id's SHA-256 with the key's name, scopes and a CSRF token, for
SESSION_TTL; every process sees every session, and removing or replacing a key in the
configuration ends its sessions. With no keys configured the pages are open, like the
API."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

import msgspec
from aiohttp import web

from bandit.http.auth import (CSRF_HEADER, SCOPES, SESSION_COOKIE, ApiKey, Session, check_csrf, identify,
                         presented_key)
from bandit.errors import ApiError
from bandit.http.bodies import SessionInfo, SignedOut, struct_response
from bandit.http.handlers import json_body
from bandit.decide.schemas import decode
from bandit.state import SETTINGS, STORE

SESSION_TTL = 12 * 3600
OPEN = Session("open", frozenset(SCOPES), "")   # no keys configured: everything is open


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


def _redis_key(request: web.Request, session_id: str) -> str:
    return request.app[STORE].keys.ui_session(hashlib.sha256(session_id.encode()).hexdigest())


def _binding(api_key: ApiKey, session_id: str) -> str:
    """Ties a session to the exact key it came from, without storing anything that
    identifies the key on its own (Redis holds only the id's hash)."""
    return hmac.new(api_key.digest, session_id.encode(), hashlib.sha256).hexdigest()


async def resolve(request: web.Request, session_id: str) -> Session | None:
    """The session behind a cookie value, or None (unknown, expired, signed out, or its
    key since removed or replaced in the configuration). Its scopes are what the key had
    at sign-in and still has."""
    if not 16 <= len(session_id) <= 128:
        return None
    raw = await request.app[STORE].redis.hgetall(_redis_key(request, session_id))
    if not raw or b"csrf" not in raw:
        return None
    name = raw[b"name"].decode()
    api_key = next((k for k in request.app[SETTINGS].api_keys if k.name == name), None)
    if api_key is None or not hmac.compare_digest(_binding(api_key, session_id).encode(), raw[b"bind"]):
        return None
    scopes = api_key.scopes & frozenset(raw[b"scopes"].decode().split())
    return Session(name, scopes, raw[b"csrf"].decode())


async def current(request: web.Request) -> Session | None:
    """Who is asking: OPEN with no keys configured, else the cookie's session."""
    if not request.app[SETTINGS].api_keys:
        return OPEN
    cookie = request.cookies.get(SESSION_COOKIE)
    return await resolve(request, cookie) if cookie else None


async def page_access(request: web.Request, scope: str) -> None:
    """HTML pages redirect to the sign-in page instead of answering 401/403 in JSON."""
    session = await current(request)
    if session is None or scope not in session.scopes:
        target = f"/ui/login?next={quote(request.path, safe='/')}"
        raise web.HTTPSeeOther(target + (f"&missing={scope}" if session is not None else ""))


async def login(request: web.Request) -> web.Response:
    """Exchange an API key (JSON {"key": ...}) for a session cookie."""
    keys = request.app[SETTINGS].api_keys
    if not keys:
        return struct_response(_describe(OPEN))
    body = decode(await json_body(request), LoginRequest)
    assert isinstance(body, LoginRequest)
    try:
        api_key = identify(keys, body.key)
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, exc.message, "key") from None
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    name = _redis_key(request, session_id)
    redis = request.app[STORE].redis
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(name, mapping={"name": api_key.name, "scopes": " ".join(sorted(api_key.scopes)), "csrf": csrf,
                                 "bind": _binding(api_key, session_id)})
        pipe.expire(name, SESSION_TTL)
        await pipe.execute()
    session = Session(api_key.name, api_key.scopes, csrf)
    response = struct_response(_describe(session))
    response.set_cookie(SESSION_COOKIE, session_id, max_age=SESSION_TTL, path="/", httponly=True,
                        samesite="Strict", secure=request.secure)
    return response


async def logout(request: web.Request) -> web.Response:
    """End the session (it must carry its CSRF token) and clear the cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and request.app[SETTINGS].api_keys:
        session = await resolve(request, cookie)
        if session is not None:
            check_csrf(request, session)
            await request.app[STORE].redis.delete(_redis_key(request, cookie))
    response = struct_response(SignedOut(True))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def session_info(request: web.Request) -> web.Response:
    """The signed-in session's scopes and CSRF token, for the pages' script."""
    keys = request.app[SETTINGS].api_keys
    if keys and presented_key(request) is not None:
        api_key = identify(keys, presented_key(request))
        return struct_response(_describe(Session(api_key.name, api_key.scopes, "")))
    session = await current(request)
    if session is None:
        raise ApiError(401, "unauthorized", "not signed in: POST an API key to /ui/login")
    return struct_response(_describe(session))


def _describe(session: Session) -> SessionInfo:
    scopes = sorted(session.scopes)
    return SessionInfo(open=session is OPEN, name=None if session is OPEN else session.name,
                       scopes=scopes, csrf_token=session.csrf, csrf_header=CSRF_HEADER,  # type: ignore[arg-type]
                       home="/ui/" if "admin" in scopes else "/ui/agent")
