"""The built-in web UI: the agent desktop (/ui/agent), the marketing dashboard (/ui/)
and sign-in (/ui/login). Plain HTML, CSS and JavaScript from ``static/``, no build
step and nothing fetched from elsewhere; the pages talk to the public API and to the
few /ui/api endpoints in ``api.py``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

from bandit.http.auth import SESSIONS
from bandit.state import SETTINGS
from bandit.ui.api import agent_decide, analytics_window, caller, overview, reasons
from bandit.ui.desk import agent_reward
from bandit.ui.session import login, logout, page_access, resolve, session_info

STATIC = Path(__file__).parent / "static"
# Pages run only their own files: no inline script, no third-party origin, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


_HTML_TAG = '<html lang="en">'


@cache
def _html(name: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    if _HTML_TAG not in text:
        raise RuntimeError(f"{STATIC / name}: the page must start with {_HTML_TAG} (the configured language goes there)")
    return text


def page_html(name: str, ui_language: str) -> str:
    """The page with the configured ``ui_language`` on its ``<html>`` element, where i18n.js
    reads it before anything is drawn: an attribute, not an inline script, which the CSP forbids."""
    return _html(name).replace(_HTML_TAG, f'<html lang="en" data-ui-language="{ui_language}">', 1)


def _page(name: str, scope: str | None):
    async def page(request: web.Request) -> web.StreamResponse:
        if scope is not None:
            await page_access(request, scope)
        return web.Response(text=page_html(name, request.app[SETTINGS].ui_language), content_type="text/html",
                            headers=PAGE_HEADERS)
    return page


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


def add_ui_routes(app: web.Application) -> None:
    app[SESSIONS] = resolve
    app.router.add_get("/", root)
    app.router.add_get("/ui/", _page("dashboard.html", "admin"))
    app.router.add_get("/ui/agent", _page("agent.html", "channel"))
    app.router.add_get("/ui/login", _page("login.html", None))
    app.router.add_post("/ui/login", login)
    app.router.add_post("/ui/logout", logout)
    app.router.add_get("/ui/api/session", session_info)
    app.router.add_get("/ui/api/agent/reasons", reasons)
    app.router.add_get("/ui/api/caller/{subscriber_id}", caller)
    app.router.add_post("/ui/api/agent/decide", agent_decide)
    app.router.add_post("/ui/api/agent/reward", agent_reward)
    app.router.add_get("/ui/api/analytics", analytics_window)
    app.router.add_get("/ui/api/overview", overview)
    app.router.add_static("/ui/static", STATIC)
