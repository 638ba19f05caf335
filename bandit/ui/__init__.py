"""The built-in web UI: the agent desktop (/ui/agent), the marketing dashboard (/ui/)
and sign-in (/ui/login). Plain HTML, CSS and JavaScript from ``static/``, no build
step and nothing fetched from elsewhere; the pages talk to the public API and to the
few /ui/api endpoints in ``api.py``."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bandit.http.auth import SESSIONS
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


def _page(name: str, scope: str | None):
    async def page(request: web.Request) -> web.StreamResponse:
        if scope is not None:
            await page_access(request, scope)
        return web.FileResponse(STATIC / name, headers=PAGE_HEADERS)
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
