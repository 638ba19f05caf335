"""The fault suite's short version (tests/faults/, docs/operations.md "Fault suite"): each
scenario on real ``nextbest serve`` processes, a few seconds of load per phase, asserting
its Verdict: no acknowledged reward lost or duplicated, no torn line, the counters equal
to the disk, and the scenario's own bound (a 503 within 2 s of a Redis freeze, decisions
within 15 s of a killed embedded Redis, a new leader within 15 s)."""

from __future__ import annotations

import os

import pytest

from tests.faults.checker import Verdict
from tests.faults.deploy import Plan
from tests.faults.scenarios import FIRST_503_S, KNOWN_CROSS_LOG, RECOVER_S, SCENARIOS

ROOT_ONLY = {"full_disk": "mounting the small tmpfs needs root (CI runs as root)"}


KNOWN_DEFECTS = {"kill_leader_uncommitted": KNOWN_CROSS_LOG}


def _params() -> list:
    out = []
    for name in SCENARIOS:
        marks = []
        if name in ROOT_ONLY:
            marks.append(pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_ONLY[name]))
        if name in KNOWN_DEFECTS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[name]))
        out.append(pytest.param(name, marks=marks))
    return out


def _explain(verdict: Verdict) -> str:
    return "\n".join([*verdict.problems, *verdict.known, *verdict.notes])


@pytest.mark.timeout(150)
@pytest.mark.parametrize("name", _params())
async def test_fault_scenario(name: str) -> None:
    scenario, _ = SCENARIOS[name]
    verdict = await scenario(Plan(full=False))
    if verdict.skipped:   # the fault could not be placed here (no mounts, no moment): said, not passed
        pytest.skip(verdict.skipped)
    print(f"\n{name}: acked {verdict.acked}, logged {verdict.logged}, first 503 {verdict.first_503_s}, "
          f"recover {verdict.recover_s}, codes {verdict.codes}")
    assert verdict.passed, _explain(verdict)
    if verdict.known:   # kill_leader's kill landed in the window kill_leader_uncommitted pins (xfail)
        print("\n".join(verdict.known))
    # the criteria, restated so that a scenario that stopped checking one fails here
    # (duplicates and the counters' shortfall only where the known defect accounts for them exactly)
    assert verdict.lost == verdict.torn == verdict.wrong == 0, _explain(verdict)
    assert verdict.duplicated == 0 or verdict.known, _explain(verdict)
    if name != "bad_config":
        assert verdict.acked > 0, _explain(verdict)
        assert verdict.events_logged == verdict.logged or verdict.known, _explain(verdict)
        assert verdict.learned is not None, "no final checkpoint"
    if name == "freeze_redis":
        assert verdict.first_503_s is not None and verdict.first_503_s <= FIRST_503_S
    if name in ("kill_embedded_redis", "kill_leader", "readonly_leader"):
        assert verdict.recover_s is not None and verdict.recover_s <= RECOVER_S
    if name == "redis_oom":
        assert verdict.codes.get("503 redis_oom", 0) > 0 and not any(c.startswith("500") for c in verdict.codes)
