"""docs/api.md's error table is the list of every error code the service answers with,
each with its HTTP status: read from the code itself (every ``ApiError(...)`` and every
``json_object(...)`` code under bandit/), so a new code without a row, or a row for a code
nothing produces any more, fails here. Codes computed at run time are listed site by
site below; a new computed site fails until it is listed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bandit.store.redis_errors import CONDITIONS

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"

# (file, the code expression as ast.unparse writes it) → what it can be, with the status.
# None: the site re-raises a caught ApiError's own code (its status and code are counted
# where that error was first raised).
COMPUTED: dict[tuple[str, str], dict[str, int] | None] = {
    # a Redis error reply naming a passing condition (redis_errors.condition)
    ("bandit/app.py", "f'redis_{name.lower()}'"): {f"redis_{name.lower()}": 503 for name in CONDITIONS},
    # aiohttp's own HTTP exceptions, by their reason: the router's 404 and 405, the static
    # files' 403 for a directory (413 is caught before and answered as body_too_large);
    # test_http_exception_codes checks each against a live service. (aiohttp answers an
    # unknown Expect header with its own 417 before any middleware runs: api.md says so.)
    ("bandit/app.py", "code"): {"not_found": 404, "method_not_allowed": 405, "forbidden": 403},
    # aiohttp's parser refuses the request: always 400 (its _ErrInfo), 500 and 504 are internal_error
    ("bandit/http/protocol.py", "'bad_request' if status == 400 else phrase.lower().replace(' ', '_')"):
        {"bad_request": 400},
    # json_object's code: its callers' literal codes are collected with the ApiErrors
    ("bandit/http/handlers.py", "code"): None,
    ("bandit/ui/api.py", "exc.code"): None,
    ("bandit/ui/session.py", "exc.code"): None,
}
# A literal code whose status is computed: (file, code) → the status it is answered with.
# The parser's >= 500 is a handler that failed outside the error middleware (which answers
# every exception itself): 500.
COMPUTED_STATUS: dict[tuple[str, str], int] = {("bandit/http/protocol.py", "internal_error"): 500}


def produced() -> dict[str, set[int]]:
    """Every code the product can answer with → the statuses it comes with."""
    codes: dict[str, set[int]] = {}
    sites = set()
    for path in sorted((ROOT / "bandit").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if callee not in ("ApiError", "json_object") or len(node.args) < 2:
                continue
            status_node, code_node = node.args[0], node.args[1]
            if callee == "json_object":   # json_object(request, code, what): a body that is no object is a 400
                status = 400
            else:
                status = status_node.value if isinstance(status_node, ast.Constant) else None
            if isinstance(code_node, ast.Constant):
                status = COMPUTED_STATUS.get((name, code_node.value), status)
                assert status is not None, f"{name}:{node.lineno}: a literal code with a computed status"
                codes.setdefault(code_node.value, set()).add(status)
                continue
            site = (name, ast.unparse(code_node))
            assert site in COMPUTED, f"{name}:{node.lineno}: a computed error code {site[1]!r}: list it in COMPUTED"
            sites.add(site)
            for code, code_status in (COMPUTED[site] or {}).items():
                codes.setdefault(code, set()).add(code_status)
    assert sites == set(COMPUTED), f"COMPUTED lists sites the code no longer has: {set(COMPUTED) - sites}"
    return codes


def documented() -> dict[str, set[int]]:
    """The codes of docs/api.md's error table (`## Errors`: | status | `code` ... | when |)."""
    section = API_MD.read_text().split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    codes: dict[str, set[int]] = {}
    rows = [line for line in section.splitlines() if re.match(r"\| \d{3} \|", line)]
    assert rows, "no error table in docs/api.md's Errors section"
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for code in re.findall(r"`([a-z_]+)`", cells[1]):
            codes.setdefault(code, set()).add(int(cells[0]))
    return codes


def test_every_error_code_is_in_the_api_doc_and_every_documented_code_exists():
    code, doc = produced(), documented()
    assert {"offer_exists", "invalid_offer", "unknown_offer", "unknown_subscriber", "invalid_profile",
            "event_id_reused", "reward_id_reused", "other_subscriber", "unauthorized", "forbidden",
            "csrf_token", "body_timeout", "body_too_large", "unsupported_media_type", "redis_oom"} <= set(code)
    assert "missing_field" not in code
    assert sorted(set(code) - set(doc)) == [], "produced by the code, missing from docs/api.md's error table"
    assert sorted(set(doc) - set(code)) == [], "in docs/api.md's error table, produced nowhere"
    assert {c: s for c, s in code.items() if s != doc[c]} == {}, "status in the code != status in the table"


@pytest.mark.parametrize("method, path, headers, status, code", [
    ("GET", "/v1/nothing-here", {}, 404, "not_found"),
    ("GET", "/v1/decide", {}, 405, "method_not_allowed"),
    ("GET", "/ui/static/", {}, 403, "forbidden"),
])
async def test_http_exception_codes(make_client, method, path, headers, status, code):
    """The codes the error middleware derives from aiohttp's own exceptions (COMPUTED)."""
    client = await make_client()
    response = await client.request(method, path, headers=headers, data=b"{}" if method == "POST" else None)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
