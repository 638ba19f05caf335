"""replay.frames: DataFrames in (read_frame, evaluate(df)) and out (to_frame of a log and
of an evaluation's per-event outputs), checked against the file readers on real logs."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replay.evaluate import evaluate
from replay.frames import read_frame, to_frame
from replay.logs import LogError, ValidationReport, read_logs
from tests.slate_logs import write_slate_log
from tests.test_replay_logs import TABLE_EVENTS, TABLE_ROWS, service_line

PMF = [0.2, 0.3, 0.5]
CANDIDATE = "--epsilon 0.1 --interactions CO"


def events_of(chunks) -> list:
    return [event for chunk in chunks for event in chunk]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """600 service lines over three offers; one dropped (skip_learn) event."""
    rng = random.Random(5)
    path = tmp_path_factory.mktemp("frames") / "log.dsjson"
    path.write_bytes(b"".join(service_line(n, chosen=rng.randrange(3), pmf=PMF, reward=float(rng.random() < 0.3),
                                           kind="dropped" if n == 7 else "joined") for n in range(600)))
    return path


def test_to_frame_then_read_frame_gives_the_same_events(log, tmp_path):
    frame = to_frame(log)
    assert len(frame) == 600 and frame.loc[3, "pmf"].tolist() == PMF   # nested columns: real values
    assert frame.loc[0, "context"]["Context"]["channel=web"] == 1.0
    assert events_of(read_frame(frame, chunk_size=64)) == events_of(read_logs(log))
    write_slate_log(tmp_path / "slates.dsjson", 12)   # multi-slot: one row per slot
    slates = to_frame(tmp_path / "slates.dsjson")
    assert len(slates) == 36 and slates["slot"].tolist()[:3] == [1, 2, 3]
    assert events_of(read_frame(slates)) == events_of(read_logs(tmp_path / "slates.dsjson"))


def test_a_frame_of_json_text_cells_reads_as_the_csv_does():
    assert events_of(read_frame(pd.DataFrame(TABLE_ROWS))) == TABLE_EVENTS


def test_bad_rows_are_skipped_and_counted_or_strict_raises():
    bad = [dict(TABLE_ROWS[1], event_id="b1", probability=float("nan")), dict(TABLE_ROWS[1], event_id="b2", reward=None),
           dict(TABLE_ROWS[1], event_id="b3", actions="[]"), dict(TABLE_ROWS[1], event_id="t1")]
    report = ValidationReport()
    events = events_of(read_frame(pd.DataFrame(TABLE_ROWS + bad), report=report))
    assert [e.event_id for e in events] == ["t1", "t2"] and report.good == 2
    assert report.counts == {"missing_probability": 1, "missing_reward": 1, "no_actions": 1, "duplicate_event_id": 1}
    assert report.examples["missing_reward"][0].where == "DataFrame:row 4"
    with pytest.raises(LogError, match=r"DataFrame:row 3: no probability"):
        events_of(read_frame(pd.DataFrame(TABLE_ROWS + bad), strict=True))
    with pytest.raises(LogError, match=r"DataFrame: no 'reward' column"):
        read_frame(pd.DataFrame(TABLE_ROWS).drop(columns=["reward"]))


def test_evaluate_takes_a_frame_and_gives_the_file_numbers(log):
    from_file = evaluate(log, [CANDIDATE], workers=1)
    frame = pd.concat([to_frame(log), pd.DataFrame([dict(TABLE_ROWS[0], event_id="bad", probability=0.0)])],
                      ignore_index=True)
    from_frame = evaluate(frame, [CANDIDATE], workers=1)
    assert from_frame.source == "DataFrame" and from_frame.report.counts == {"missing_probability": 1}
    assert from_frame.events == from_file.events == 599 and from_frame.skipped == 1
    for method, estimate in from_file.candidates[0].estimates.items():
        assert from_frame.candidates[0].estimates[method].value == pytest.approx(estimate.value, rel=1e-6), method


def test_per_event_outputs_as_a_frame(log):
    result = evaluate(log, [CANDIDATE, "--epsilon 1"], workers=1, per_event=True)
    frame = to_frame(result)
    events = [e for e in events_of(read_logs(log)) if not e.skip_learn]
    assert frame["event_id"].tolist() == [e.event_id for e in events]
    assert frame["chosen"].tolist() == [e.chosen for e in events]
    assert np.allclose(frame["logged_probability"], [e.probability for e in events], rtol=1e-6)
    uniform = frame["target_probability[--epsilon 1]"]
    assert np.allclose(uniform, 1 / 3, rtol=1e-6)   # ε = 1 explores uniformly over three offers
    for name, candidate in zip((CANDIDATE, "--epsilon 1"), result.candidates):   # the per-event terms give IPS
        ips = float((frame[f"weight[{name}]"] * frame["reward"]).mean())
        assert ips == pytest.approx(candidate.estimates["ips"].value, rel=1e-9)
    assert frame["reward_hat"].notna().all() and len(frame) == result.events
    assert frame["tag"].tolist() == [e.tag for e in events]   # the result's own ids and tags, not read again
    assert result.per_event.event_ids is result.event_ids and result.per_event_terms()["event_id"] == result.event_ids
    plain = evaluate(log, [CANDIDATE], workers=1)
    assert plain.per_event is None and plain.event_ids == [] and plain.tags == []   # kept only when asked
    with pytest.raises(ValueError, match=r"per_event=True"):
        to_frame(plain)
    with pytest.raises(ValueError, match=r"per_event=True"):
        plain.per_event_terms()


def test_a_clear_import_error_without_pandas(log, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)   # as if not installed: import pandas raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'nextbest\[replay\]'"):
        to_frame(log)
