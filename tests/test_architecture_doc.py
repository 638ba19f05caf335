"""docs/architecture.md's module map and Redis key table against the code: every module
of bandit/ and policies/ has its row and every module named exists; every key that
bandit/store/keys.py builds has its row in the key table, and every row is a key it builds."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _has_code(path: Path) -> bool:
    """A package's __init__.py that defines functions or classes is a module of its own."""
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
               for node in ast.parse(path.read_text()).body)


def test_every_module_is_in_the_module_map_and_every_named_module_exists():
    modules = {p.relative_to(ROOT).as_posix() for folder in ("bandit", "policies") for p in (ROOT / folder).rglob("*.py")
               if p.name != "__init__.py" or _has_code(p)}
    named = set(re.findall(r"`((?:bandit|policies)/[\w/]+\.py)`", DOC))
    rules = re.search(r"^\| `policies/rules/` \|(.+)$", DOC, re.M)
    assert rules, "no row for policies/rules/"
    named |= {f"policies/rules/{name}" for name in re.findall(r"`(\w+\.py)`", rules.group(1))}
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md's module map"
    assert sorted(named - modules) == [], "docs/architecture.md names modules that do not exist"


def _shape(key: str) -> str:
    """A key pattern with its variable parts blanked: nb:ev:{event_id} → ev:{}."""
    return re.sub(r"\{[^}]*\}", "{}", key.removeprefix("nb:"))


def test_every_redis_key_is_in_the_key_table_and_every_row_is_a_key():
    built = {_shape(k) for k in re.findall(r'f"\{self\.prefix\}:([^"]+)"', (ROOT / "bandit/store/keys.py").read_text())}
    table = DOC.split("\n## Redis keys\n", 1)[1].split("\n## ", 1)[0]
    rows = {_shape(k) for row in re.findall(r"^\| (`nb:.+?) \| \w[\w ]* \|", table, re.M)
            for k in re.findall(r"`(nb:[^`]+)`", row)}
    # the analytics buckets are written per resolution: agg:{resolution}:{bucket} is agg:m:{} and agg:h:{}
    rows = {re.sub(r"^agg:[mh]:\{\}$", "agg:{}:{}", r) for r in rows}
    assert sorted(built - rows) == [], "keys.py builds keys docs/architecture.md's key table lacks"
    assert sorted(rows - built) == [], "the key table lists keys keys.py does not build"
