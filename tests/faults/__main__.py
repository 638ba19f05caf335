"""``python -m tests.faults [--full] [SCENARIO ...]``: run fault scenarios (all by default),
print a table of verdicts, exit 1 on any FAIL (docs/operations.md, "Fault suite")."""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback

from tests.faults.checker import Verdict
from tests.faults.deploy import Plan
from tests.faults.scenarios import SCENARIOS


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(verdicts: list[Verdict]) -> str:
    """The verdicts as a Markdown table (docs/operations.md quotes one)."""
    rows = ["| scenario | acked | lost | duplicated | torn | first-503 s | recover s | result |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for v in verdicts:
        rows.append(f"| {v.scenario} | {v.acked} | {v.lost} | {v.duplicated} | {v.torn} | {_s(v.first_503_s)} | "
                    f"{_s(v.recover_s)} | {v.result} |")
    return "\n".join(rows)


async def run(name: str, plan: Plan) -> Verdict:
    """One scenario; an exception is a FAIL with its traceback, not the end of the run."""
    scenario, _ = SCENARIOS[name]
    try:
        return await scenario(plan)
    except Exception:   # noqa: BLE001 - reported as the scenario's failure
        verdict = Verdict(name)
        verdict.require(False, traceback.format_exc())
        return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the long version (30 s of load per phase)")
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], metavar="SCENARIO",
                        help=f"any of: {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    plan = Plan(full=args.full)
    verdicts = []
    for name in args.scenarios or list(SCENARIOS):
        verdict = asyncio.run(run(name, plan))
        verdicts.append(verdict)
        print(f"{name}: {verdict.result}" + (f" ({verdict.skipped})" if verdict.skipped else ""), flush=True)
        for line in [*verdict.known, *verdict.notes[:6]] if verdict.passed else \
                [*verdict.problems, *verdict.known, *verdict.notes]:
            print(f"    {line}", flush=True)
    print(table(verdicts))
    return 1 if any(v.result == "FAIL" for v in verdicts) else 0   # KNOWN: a reported defect, listed above


if __name__ == "__main__":
    sys.exit(main())
