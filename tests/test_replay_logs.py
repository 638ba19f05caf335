"""replay.logs: streaming readers of decision logs (DSJSON and tables), their checks,
the Parquet export and the ``replay`` commands."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from bandit.learn.decision_log import dsjson_record, log_files
from bandit.decide.record import read_record
from bandit.store.store import JoinedEvent
from replay.cli import replay
from replay.export import export_parquet
from replay.logs import LogError, LoggedEvent, ValidationReport, read_dsjson, read_logs, read_table
from tests.conftest import OFFERS
from tests.harness import REPO_ROOT, wait_until, read_lines

OFFER_IDS = ["home", "balance", "roaming"]
PMF = [0.1, 0.7, 0.2]


def service_line(n: int, chosen: int = 2, pmf: list[float] = PMF, reward: float = 1.0, kind: str = "joined",
                 policy: str = "model") -> bytes:
    """A line exactly as the service writes it (bandit.learn.decision_log.dsjson_record)."""
    record = {"ts": 1795598572597 + n, "shared": {"Context": {"i": n, "channel=web": 1}},
              "actions": [{f"id={o}": 1, "price": 1.5 * i} for i, o in enumerate(OFFER_IDS)],
              "pmf": pmf, "chosen": chosen, "model": "1.10", "policy": policy, "catalog": None,
              "channel": "web", "sid": None, "offers": OFFER_IDS, "defer": False}
    event = JoinedEvent(f"{1795598572600 + n}-0", f"e{n}", orjson.dumps(record), reward, kind,
                        1 if kind == "joined" else 0, 1795598572700 + n, decode=read_record)
    return orjson.dumps(dsjson_record(event)) + b"\n"


def good_doc(n: int = 0) -> dict[str, Any]:
    return orjson.loads(service_line(n))


def line(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc) + b"\n"


def read_all(path: Path, **options: Any) -> tuple[list[LoggedEvent], ValidationReport]:
    report = ValidationReport()
    events = [event for chunk in read_logs(path, report=report, **options) for event in chunk]
    return events, report


def write_service_log(directory: Path) -> None:
    """Ten events over a rotated (gzipped) file and the current one, as the service leaves them."""
    directory.mkdir()
    older = b"".join(service_line(n, chosen=n % 3, reward=float(n % 2)) for n in range(5))
    newer = b"".join([service_line(5, kind="defaulted", reward=0.0), service_line(6, kind="dropped"),
                      *(service_line(n, policy="control", pmf=[1 / 3] * 3) for n in range(7, 10))])
    (directory / "decisions-20261125T090000.000000.dsjson.gz").write_bytes(gzip.compress(older))
    (directory / "decisions-20261125T100000.000000.dsjson").write_bytes(newer)
    (directory / "decisions-20261125T100000.000000.dsjson.gz.tmp").write_bytes(b"half a compression")


# --------------------------------------------------------------------------- DSJSON

def test_service_log_over_rotated_files(tmp_path):
    write_service_log(tmp_path / "decisions")
    events, report = read_all(tmp_path / "decisions")
    assert (report.good, report.defects) == (10, 0)
    assert [e.event_id for e in events] == [f"e{n}" for n in range(10)]
    e4 = events[4]
    assert e4.chosen == 1 and e4.probability == 0.7 and e4.pmf == PMF   # PMF in action order, not 'a' order
    assert e4.action_ids == OFFER_IDS and e4.actions[1] == {"Offer": {"id=balance": 1, "price": 1.5}}
    assert e4.shared == {"Context": {"i": 4, "channel=web": 1}}
    assert e4.reward == 0.0 and str(e4.reward) == "0.0" and events[3].reward == 1.0
    assert e4.timestamp == "2026-11-25T09:22:52.601Z" and e4.policy == "model" and not e4.skip_learn
    assert e4.extra["stream_id"] == "1795598572604-0" and e4.extra["kind"] == "joined"
    assert "policy" not in e4.extra and "offers" not in e4.extra
    assert events[5].extra["kind"] == "defaulted" and events[6].skip_learn
    assert events[9].policy == "control" and events[9].pmf == [1 / 3] * 3


def test_single_files_plain_and_gzipped(tmp_path):
    (tmp_path / "a.dsjson").write_bytes(service_line(1))
    (tmp_path / "b.dsjson.gz").write_bytes(gzip.compress(service_line(1)))
    assert read_all(tmp_path / "a.dsjson")[0] == read_all(tmp_path / "b.dsjson.gz")[0]
    assert len(read_all(tmp_path / "a.dsjson")[0]) == 1


def test_vw_dsjson_from_another_system(tmp_path):
    multi = {"_multi": [{"A": {"x": 1}}, {"A": {"x": 2}}, {"A": {"x": 3}}], "User": {"age": 30}}
    lines = [
        {"_label_cost": -2.5, "_label_probability": 0.5, "_label_Action": 2, "EventId": "vw-1", "c": multi},
        {"_label_cost": 1, "_label_probability": 0.25, "_label_Action": 3, "EventId": "vw-2", "c": multi,
         "a": [3, 1, 2], "p": [0.25, 0.5, 0.25], "Timestamp": "2024-01-01T00:00:00Z"},
        {"_label_cost": 0, "_label_probability": 0.5, "_labelIndex": 0, "EventId": "vw-3", "c": multi,
         "a": [1, 2, 3]},   # 'a' without 'p': no PMF
    ]
    (tmp_path / "vw.json").write_bytes(b"".join(map(line, lines)))
    events, report = read_all(tmp_path / "vw.json")
    assert report.defects == 0
    first, second, third = events
    assert (first.chosen, first.probability, first.reward, first.pmf) == (1, 0.5, 2.5, None)
    assert first.shared == {"User": {"age": 30}} and first.actions[2] == {"A": {"x": 3}}
    assert (first.action_ids, first.policy, first.extra, first.timestamp) == (None, None, {}, None)
    assert (second.chosen, second.pmf, second.reward, second.timestamp) == (2, [0.5, 0.25, 0.25], -1.0,
                                                                            "2024-01-01T00:00:00Z")
    assert (third.chosen, third.pmf) == (0, None)


def test_chunks_of_at_most_chunk_size(tmp_path):
    template = b'{"_label_cost":-1,"_label_probability":0.5,"_labelIndex":0,"EventId":"%d","c":{"_multi":[{},{}]}}\n'
    (tmp_path / "big.dsjson").write_bytes(b"".join(template % n for n in range(25_000)))
    seen: list[tuple[int, int]] = []
    chunks = read_dsjson(tmp_path / "big.dsjson", chunk_size=10_000,
                         progress=lambda done, total: seen.append((done, total)))
    assert [len(chunk) for chunk in chunks] == [10_000, 10_000, 5_000]
    size = (tmp_path / "big.dsjson").stat().st_size
    assert seen[-1] == (size, size) and len(seen) > 3


# --------------------------------------------------------------------------- defects

def without(*keys: str, **changes: Any) -> bytes:
    doc = good_doc(1)
    for key in keys:
        del doc[key]
    doc.update(changes)
    return line(doc)


def multi(actions: list[Any]) -> bytes:
    doc = good_doc(1)
    doc["c"]["_multi"] = actions
    return line(doc)


DEFECTS = {
    "not JSON": ("unparseable", b"{not json\n"),
    "a JSON array": ("unparseable", b"[1, 2, 3]\n"),
    "binary junk": ("unparseable", b"\x00\xff\xfe\x80 junk \x1b[31m\n"),
    "no EventId": ("malformed", without("EventId")),
    "no served action": ("malformed", without("_labelIndex", "_label_Action")),
    "offer ids of the wrong length": ("malformed", line({**good_doc(1), "_nb": {"offers": ["x"]}})),
    "no probability": ("missing_probability", without("_label_probability", "a", "p")),
    "zero probability": ("missing_probability", without("a", "p", _label_probability=0)),
    "probability above one": ("probability_above_one", without("a", "p", _label_probability=1.5)),
    "PMF sums to 0.9": ("bad_pmf", without(p=[0.6, 0.1, 0.2])),
    "PMF not the probability": ("bad_pmf", without(_label_probability=0.3)),
    "'a' repeats an action": ("bad_pmf", without(a=[3, 3, 1])),
    "chosen out of range": ("chosen_out_of_range", without("a", "p", _labelIndex=7, _label_Action=8)),
    "no cost": ("missing_reward", without("_label_cost")),
    "cost not a number": ("missing_reward", without(_label_cost="1")),
    "empty _multi": ("no_actions", multi([])),
    "no features": ("no_actions", without("c")),
}


@pytest.mark.parametrize("name", list(DEFECTS))
def test_each_defect_is_counted_with_its_line_and_skipped(tmp_path, name):
    kind, bad = DEFECTS[name]
    path = tmp_path / "log.dsjson"
    path.write_bytes(service_line(0) + bad + service_line(2))
    events, report = read_all(path)
    assert [e.event_id for e in events] == ["e0", "e2"]
    assert report.good == 2 and report.counts == {kind: 1}
    [example] = report.examples[kind]
    assert example.where == f"{path}:2" and example.reason and example.snippet.isprintable()
    with pytest.raises(LogError) as caught:
        read_all(path, strict=True)
    assert (caught.value.file, caught.value.line, caught.value.kind) == (str(path), 2, kind)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_duplicates_keep_the_first(tmp_path):
    path = tmp_path / "log.dsjson"
    again = good_doc(0) | {"_label_cost": -5.0}
    path.write_bytes(service_line(0) + service_line(1) + line(again) + line(again))
    events, report = read_all(path)
    assert [(e.event_id, e.reward) for e in events] == [("e0", 1.0), ("e1", 1.0)]
    assert report.counts == {"duplicate_event_id": 2}
    assert [e.where for e in report.examples["duplicate_event_id"]] == [f"{path}:3", f"{path}:4"]


def test_examples_are_capped_and_clipped(tmp_path):
    path = tmp_path / "log.dsjson"
    path.write_bytes(b"".join(b"{bad %d %s\n" % (n, b"x" * 1000) for n in range(12)))
    _, report = read_all(path)
    assert report.counts == {"unparseable": 12} and len(report.examples["unparseable"]) == 5
    assert all(len(e.snippet) <= 161 for e in report.examples["unparseable"])


def test_garbage_never_crashes(tmp_path, monkeypatch):
    directory = tmp_path / "logs"
    directory.mkdir()
    lines = b"".join(service_line(n) for n in range(2000))
    (directory / "1-truncated.dsjson.gz").write_bytes(gzip.compress(lines)[:20_000])
    (directory / "2-not-gzip.dsjson.gz").write_bytes(b"\x00junk" * 100)
    (directory / "3-empty.dsjson").write_bytes(b"")
    (directory / "4-torn.dsjson").write_bytes(service_line(5000) + service_line(5001)[:40])
    (directory / "5-long.dsjson").write_bytes(b"{" + b"x" * 5000 + b"\n" + service_line(6000))
    monkeypatch.setattr("replay.readers.dsjson.MAX_LINE_BYTES", 1000)
    events, report = read_all(directory)
    truncated = sum(e.event_id.startswith("e") and int(e.event_id[1:]) < 2000 for e in events)
    assert 0 < truncated < 2000
    assert report.good == truncated + 2 and report.counts == {"unreadable": 2, "unparseable": 2}
    unreadable = report.examples["unreadable"]
    assert unreadable[0].where == f"{directory / '1-truncated.dsjson.gz'}:{truncated + 1}"
    assert unreadable[1].where == f"{directory / '2-not-gzip.dsjson.gz'}:1"
    torn, long = report.examples["unparseable"]
    assert torn.where.endswith("4-torn.dsjson:2") and "torn last line" in torn.reason
    assert long.where.endswith("5-long.dsjson:1") and "longer than" in long.reason


def test_path_and_format_errors(tmp_path):
    with pytest.raises(LogError, match="no such file"):
        read_logs(tmp_path / "missing")
    with pytest.raises(LogError, match="no .dsjson or .dsjson.gz files"):
        read_logs(tmp_path)
    (tmp_path / "log.txt").write_text("{}")
    with pytest.raises(LogError, match="cannot tell the log format"):
        read_logs(tmp_path / "log.txt")
    with pytest.raises(LogError, match="unknown log format"):
        read_logs(tmp_path / "log.txt", "xml")


# --------------------------------------------------------------------------- tables

TABLE_ROWS = [
    {"event_id": "t1", "timestamp": "2026-01-01T00:00:00.000Z", "context": '{"Context": {"a=1": 1}}',
     "actions": '[{"Offer": {"id=x": 1}}, {"Offer": {"id=y": 1}}]', "chosen": 1, "probability": 0.75,
     "reward": 2.0, "pmf": "[0.25, 0.75]", "action_ids": '["x", "y"]'},
    {"event_id": "t2", "timestamp": None, "context": "{}", "actions": '[{"f": 1}]', "chosen": 0,
     "probability": 1.0, "reward": -1.5, "pmf": None, "action_ids": None},
]
TABLE_EVENTS = [
    LoggedEvent(event_id="t1", timestamp="2026-01-01T00:00:00.000Z", shared={"Context": {"a=1": 1}},
                actions=[{"Offer": {"id=x": 1}}, {"Offer": {"id=y": 1}}], action_ids=["x", "y"], chosen=1,
                probability=0.75, pmf=[0.25, 0.75], reward=2.0),
    LoggedEvent(event_id="t2", timestamp=None, shared={}, actions=[{"f": 1}], action_ids=None, chosen=0,
                probability=1.0, pmf=None, reward=-1.5),
]


def write_csv(path: Path, rows: list[dict[str, Any]], extra_lines: dict[int, str] | None = None) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if extra_lines:   # raw lines spliced in at these (1-based) positions
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, text in sorted(extra_lines.items()):
            lines.insert(number - 1, text)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_parquet_and_csv_tables(tmp_path):
    pq.write_table(pa.Table.from_pylist(TABLE_ROWS), tmp_path / "log.parquet")
    write_csv(tmp_path / "log.csv", TABLE_ROWS)
    for name in ("log.parquet", "log.csv"):
        events, report = read_all(tmp_path / name)
        assert events == TABLE_EVENTS and report.defects == 0, name


def test_table_defects_name_csv_lines_and_parquet_rows(tmp_path):
    bad = [dict(TABLE_ROWS[1], event_id="b1", probability="abc"), dict(TABLE_ROWS[1], event_id="b2", reward=None),
           dict(TABLE_ROWS[1], event_id="b3", actions="[]"), dict(TABLE_ROWS[1], event_id="b4", context="{oops")]
    write_csv(tmp_path / "log.csv", TABLE_ROWS + bad, extra_lines={3: "", 5: "only,three,cells"})
    events, report = read_all(tmp_path / "log.csv")
    assert [e.event_id for e in events] == ["t1", "t2"]
    # header 1, t1 2, blank 3, t2 4, short record 5, b1..b4 6..9
    found = {kind: [e.where.rsplit(":", 1)[1] for e in examples] for kind, examples in report.examples.items()}
    assert found == {"unparseable": ["5", "9"], "missing_probability": ["6"], "missing_reward": ["7"],
                     "no_actions": ["8"]}
    rows = [dict(TABLE_ROWS[0], probability=None, reward=1.0)] + TABLE_ROWS[1:]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "log.parquet")
    events, report = read_all(tmp_path / "log.parquet")
    assert [e.event_id for e in events] == ["t2"]
    assert report.examples["missing_probability"][0].where == f"{tmp_path / 'log.parquet'}:row 1"
    with pytest.raises(LogError, match=r"log.parquet:row 1: no probability"):
        read_all(tmp_path / "log.parquet", strict=True)


def test_tables_without_a_required_column_or_of_wrong_types_are_refused(tmp_path):
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in TABLE_ROWS[0].items() if k != "reward"}]),
                   tmp_path / "a.parquet")
    with pytest.raises(LogError, match="no 'reward' column"):
        read_table(tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pylist([dict(TABLE_ROWS[0], chosen="1")]), tmp_path / "b.parquet")
    with pytest.raises(LogError, match="column 'chosen' has type string, expected integers"):
        read_table(tmp_path / "b.parquet")
    (tmp_path / "c.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(LogError, match="cannot read as Parquet"):
        read_table(tmp_path / "c.parquet")
    (tmp_path / "d.csv").write_bytes(b"")
    with pytest.raises(LogError, match="empty"):
        read_table(tmp_path / "d.csv")


def test_export_then_read_table_gives_the_same_events(tmp_path):
    write_service_log(tmp_path / "decisions")
    (tmp_path / "decisions" / "decisions-20261125T110000.000000.dsjson").write_bytes(b"junk\n" + service_line(0))
    report = export_parquet(tmp_path / "decisions", tmp_path / "out.parquet", chunk_size=4)
    assert report.good == 10 and report.counts == {"unparseable": 1, "duplicate_event_id": 1}
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups == 3
    assert read_all(tmp_path / "out.parquet")[0] == read_all(tmp_path / "decisions")[0]
    assert read_all(tmp_path / "out.parquet", format="parquet")[0][6].skip_learn


def test_export_writes_nested_columns_and_features_the_maps_cannot_hold_as_json(tmp_path):
    odd = dict(good_doc(1), EventId="odd")
    odd["c"] = {**odd["c"], "Context": {"tariff": "smart", "i": 1}, "loose": 1}   # a string value, a feature outside
    (tmp_path / "log.dsjson").write_bytes(service_line(0) + line(odd))
    export_parquet(tmp_path / "log.dsjson", tmp_path / "out.parquet")
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert {name: str(schema.field(name).type) for name in ("pmf", "action_ids", "slot_actions")} == {
        "pmf": "list<element: double>", "action_ids": "list<element: string>", "slot_actions": "list<element: int64>"}
    assert pa.types.is_map(schema.field("context").type) and pa.types.is_map(schema.field("actions").type.value_type)
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist(maps_as_pydicts="strict")
    assert rows[0]["pmf"] == PMF and rows[0]["action_ids"] == OFFER_IDS and rows[0]["features_json"] is None
    assert rows[0]["context"]["Context"]["channel=web"] == 1.0 and rows[0]["actions"][1]["Offer"]["id=balance"] == 1.0
    assert rows[1]["context"] is None and rows[1]["actions"] is None
    assert json.loads(rows[1]["features_json"])["context"]["Context"] == {"tariff": "smart", "i": 1}
    assert read_all(tmp_path / "out.parquet")[0] == read_all(tmp_path / "log.dsjson")[0]


def test_nested_columns_of_the_wrong_shape_are_refused(tmp_path):
    row = dict(TABLE_ROWS[0], pmf=["0.5", "0.5"])   # a list, but of strings
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "a.parquet")
    with pytest.raises(LogError, match=r"column 'pmf' has type list<\w+: string>, expected JSON text \(strings\) "
                                       r"or list<double>"):
        read_table(tmp_path / "a.parquet")


def test_strict_export_leaves_no_file(tmp_path):
    (tmp_path / "log.dsjson").write_bytes(service_line(0) + b"junk\n")
    with pytest.raises(LogError, match=r"log.dsjson:2: not JSON"):
        export_parquet(tmp_path / "log.dsjson", tmp_path / "out.parquet", strict=True)
    assert list(tmp_path.iterdir()) == [tmp_path / "log.dsjson"]


# --------------------------------------------------------------------------- a real service's log

async def test_reads_back_what_a_real_service_logged(make_client, data_dir):
    client = await make_client(log_rotate_bytes=4000, log_compress=True, control_share=0.3)
    decisions = {}
    for i in range(30):
        body = {"channel": "web", "context": {"i": i}, "offers": OFFERS, "event_id": f"real-{i}", "k": len(OFFERS)}
        decision = await (await client.post("/v1/decide", json=body)).json()
        await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": i % 3})
        decisions[decision["event_id"]] = decision

    async def logged():   # (a file may be compressed, and so vanish, while this counts: then look again)
        try:
            return len(read_lines(data_dir / "decisions")) == 30
        except OSError:
            return False
    await wait_until(logged, what="30 logged lines")
    assert any(f.name.endswith(".gz") for f in log_files(data_dir / "decisions"))

    events, report = read_all(data_dir / "decisions")
    assert report.defects == 0 and [e.event_id for e in events] == list(decisions)
    for event in events:
        ranking = decisions[event.event_id]["ranking"]
        assert event.action_ids == [o["id"] for o in OFFERS]
        assert event.action_ids[event.chosen] == ranking[0]["offer_id"]
        assert event.probability == ranking[0]["probability"]
        assert event.pmf is not None
        assert {r["offer_id"]: r["probability"] for r in ranking} == dict(zip(event.action_ids, event.pmf))
        assert event.reward == int(event.event_id.split("-")[1]) % 3
        assert event.policy == decisions[event.event_id]["policy"]
        assert event.extra["kind"] == "joined" and not event.skip_learn
    assert {e.policy for e in events} == {"model", "control"}


# --------------------------------------------------------------------------- CLI

def test_cli_validate(tmp_path):
    (tmp_path / "log.dsjson").write_bytes(service_line(0) + without("_label_cost") + service_line(2))
    runner = CliRunner()
    result = runner.invoke(replay, ["validate", str(tmp_path / "log.dsjson"), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "2 good events, 1 defective" in result.output and "missing_reward" in result.output
    assert f"{tmp_path / 'log.dsjson'}:2: no _label_cost" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["kinds"]["missing_reward"]["count"] == 1
    assert runner.invoke(replay, ["validate", str(tmp_path / "log.dsjson"), "--strict"]).exit_code == 1
    (tmp_path / "clean.dsjson").write_bytes(service_line(0))
    assert runner.invoke(replay, ["validate", str(tmp_path / "clean.dsjson"), "--strict"]).exit_code == 0


def test_cli_export_and_errors(tmp_path):
    (tmp_path / "log.dsjson").write_bytes(service_line(0) + b"junk\n" + service_line(2))
    runner = CliRunner()
    result = runner.invoke(replay, ["export", str(tmp_path / "log.dsjson"), "--out", str(tmp_path / "o.parquet")])
    assert result.exit_code == 0, result.output
    assert "wrote 2 events" in result.output and "unparseable" in result.output
    assert pq.read_metadata(tmp_path / "o.parquet").num_rows == 2

    result = runner.invoke(replay, ["export", str(tmp_path / "log.dsjson"), "--out", str(tmp_path / "s.parquet"),
                                    "--strict"])
    assert result.exit_code == 1 and f"{tmp_path / 'log.dsjson'}:2: not JSON" in result.output
    assert not (tmp_path / "s.parquet").exists() and "Traceback" not in result.output
    missing = runner.invoke(replay, ["validate", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "log.txt").write_text("{}")
    unknown = runner.invoke(replay, ["validate", str(tmp_path / "log.txt")])
    assert unknown.exit_code == 1 and "cannot tell the log format" in unknown.output
    assert runner.invoke(replay, ["validate", str(tmp_path / "log.txt"), "--format", "dsjson"]).exit_code == 0
    no_dir = runner.invoke(replay, ["export", str(tmp_path / "log.dsjson"), "--out", str(tmp_path / "x" / "o.parquet")])
    assert no_dir.exit_code == 1 and "Traceback" not in no_dir.output and "No such file" in no_dir.output


def test_replay_imports_no_service_module():
    code = ("import sys, replay.logs, replay.validate, replay.export, replay.cli; print(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('bandit', 'aiohttp', 'redis', 'vowpalwabbit')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"
