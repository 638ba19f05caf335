"""Holds the service to what it acknowledged: every 2xx reward of the load client's
record is in the decision log exactly once with its value, no line is torn or
unparsable, no event is logged twice, and the deployment's counters agree with the
disk (``events_logged`` == lines, checkpoint ``learned`` == learnable lines)."""

from __future__ import annotations

import collections
import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bandit.learn.decision_log import log_files
from tests.faults.load import Record


@dataclass
class Verdict:
    """One scenario's figures; ``problems`` names every criterion that failed (none: PASS)."""
    scenario: str
    acked: int = 0
    logged: int = 0
    lost: int = 0
    duplicated: int = 0
    torn: int = 0
    wrong: int = 0                       # acknowledged rewards logged with another value or offer
    events_logged: int | None = None     # the deployment's counter, after the drain
    learned: int | None = None           # the final checkpoint's examples
    first_503_s: float | None = None
    recover_s: float | None = None
    codes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)   # failures a known, reported defect explains exactly
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return not self.problems

    def require(self, ok: bool, problem: str) -> None:
        """Record ``problem`` unless ``ok``."""
        if not ok:
            self.problems.append(problem)

    def attribute(self, prefixes: tuple[str, ...], defect: str) -> None:
        """Move the problems starting with ``prefixes`` to ``known`` (as one line naming
        ``defect``): the scenario has checked that the defect accounts for them exactly."""
        moved = [p for p in self.problems if p.startswith(prefixes)]
        if moved:
            self.problems = [p for p in self.problems if p not in moved]
            self.known.append(f"KNOWN DEFECT: {defect}: {'; '.join(moved)}")

    @property
    def result(self) -> str:
        if self.skipped:
            return "SKIP"
        return "FAIL" if self.problems else ("KNOWN" if self.known else "PASS")


@dataclass
class LogScan:
    lines: list[dict[str, Any]]
    torn: list[str]      # "file:line: why" for each unparsable line or a last line with no newline


def scan_logs(directories: list[Path]) -> LogScan:
    """Every line of the DSJSON logs in ``directories``, read as bytes so that a torn or
    unparsable line is counted, not skipped (replay's reader would refuse the file)."""
    lines: list[dict[str, Any]] = []
    torn: list[str] = []
    for directory in directories:
        if not directory.exists():
            continue
        for path in log_files(directory):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as fh:
                data = fh.read()
            if data and not data.endswith(b"\n"):
                torn.append(f"{path}: the last line has no newline")
            for number, raw in enumerate(data.split(b"\n"), 1):
                if not raw.strip():
                    continue
                try:
                    lines.append(orjson.loads(raw))
                except orjson.JSONDecodeError as error:
                    torn.append(f"{path}:{number}: {error}")
    return LogScan(lines, torn)


def check(verdict: Verdict, record: Record, directories: list[Path], events_logged: int | None,
          learned: int | None) -> Verdict:
    """Fill ``verdict`` from the record, the logs in ``directories`` and the counters read
    after the drain (None: not available, not checked)."""
    scan = scan_logs(directories)
    ids = [line.get("EventId") for line in scan.lines]
    counts = collections.Counter(ids)
    by_id = {line.get("EventId"): line for line in scan.lines}
    verdict.acked = len(record.acked)
    verdict.logged = len(scan.lines)
    verdict.torn = len(scan.torn)
    verdict.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    lost = [e for e in record.acked if e not in by_id]
    verdict.lost = len(lost)
    wrong = []
    for event_id, ack in record.acked.items():
        line = by_id.get(event_id)
        if line is None:
            continue
        slot = (line.get("_nb", {}).get("slots") or [{}])[ack.slot - 1]
        if slot.get("reward") != ack.reward or slot.get("offer") != ack.offer:
            wrong.append(f"{event_id}: sent {ack.offer}={ack.reward}, logged {slot}")
    verdict.wrong = len(wrong)
    verdict.events_logged = events_logged
    verdict.learned = learned
    verdict.codes = record.codes()
    unknown = [e for e in by_id if e not in record.sent]

    verdict.require(verdict.acked > 0, "no reward was acknowledged: the load did nothing")
    verdict.require(not lost, f"{len(lost)} acknowledged rewards not in the log: {lost[:5]}")
    verdict.require(not verdict.duplicated, f"{verdict.duplicated} duplicated lines: "
                    f"{[e for e, n in counts.items() if n > 1][:5]}")
    verdict.require(not scan.torn, f"torn or unparsable lines: {scan.torn[:3]}")
    verdict.require(not wrong, f"acknowledged rewards logged wrong: {wrong[:3]}")
    verdict.require(not unknown, f"events in the log the client never sent: {unknown[:5]}")
    verdict.require(events_logged is None or events_logged == len(scan.lines),
                    f"events_logged {events_logged} != {len(scan.lines)} lines on disk")
    learnable = sum(1 for line in scan.lines if not line.get("_skipLearn"))
    verdict.require(learned is None or learned == learnable,
                    f"checkpoint learned {learned} != {learnable} learnable lines")
    return verdict
