"""Replay's inputs (issue 16 part C): the service's data dir as LOGS or ``--logs DIR``,
``--propensity-floor`` on ``replay evaluate``, the ``_tag`` kept through export, and
``pdrop`` (sub-sampled logs) honoured in every estimator's weights.

Logs are the fixed synthetic ones of ``tests.test_replay_honesty.fixed_log`` (service
lines of ``tests.test_replay_logs.service_line``): nothing here depends on how far a
learner got, only on what the commands read and report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from bandit.cli import main
from bandit.learn.training import write_checkpoint_file
from bandit.store.store import Checkpoint
from replay.logs import LogError, log_directory, read_logs
from tests.test_replay_honesty import fixed_log

PMF = [0.5, 0.3, 0.2]
ARGS = "--cb_explore_adf --epsilon 0.2 --interactions CO --quiet"


def reward(rng: np.random.Generator, chosen: int) -> float:
    return float(rng.random() < (0.2, 0.5, 0.8)[chosen])


def data_dir(root: Path, *, floor: float | None = 0.05, events: int = 600) -> Path:
    """A data dir as the service leaves it: ``decisions/`` and ``models/`` with one
    checkpoint (written by the service's own writer; the model blob is not read)."""
    fixed_log(root / "decisions", PMF, events, seed=7, reward=reward)
    settings = {} if floor is None else {"propensity_floor": floor}
    write_checkpoint_file(root / "models", Checkpoint(b"", 3, "0-0", 10, 0, ARGS, settings), keep=2)
    return root


def events_of(path: Path) -> list:
    return [event for chunk in read_logs(path) for event in chunk]


# ------------------------------------------------------------------ the data dir as LOGS


def test_the_data_dir_reads_as_its_decisions_directory(tmp_path):
    root = data_dir(tmp_path / "data")
    assert log_directory(root) == root / "decisions"
    assert log_directory(root / "decisions") == root / "decisions"
    direct, via_dir = events_of(root / "decisions"), events_of(root)
    assert len(via_dir) == 600 and [e.event_id for e in via_dir] == [e.event_id for e in direct]


def test_a_directory_with_neither_logs_nor_decisions_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LogError) as caught:
        read_logs(tmp_path / "empty")
    message = str(caught.value)
    assert str(tmp_path / "empty") in message and "decisions/" in message and ".dsjson" in message
    out = CliRunner().invoke(main, ["replay", "validate", str(tmp_path / "empty")])
    assert out.exit_code == 1 and "decisions/" in out.output and "Traceback" not in out.output


def test_every_subcommand_takes_logs_or_dash_dash_logs_but_exactly_one(tmp_path):
    root = data_dir(tmp_path / "data")
    runner = CliRunner()
    required = {"export": ["--out", str(tmp_path / "x.parquet")], "evaluate": ["--policy", "--epsilon 0.1"]}
    for command in ("validate", "export", "evaluate", "optimize", "ablate"):
        extra = required.get(command, [])
        both = runner.invoke(main, ["replay", command, str(root), "--logs", str(root), *extra])
        assert both.exit_code == 2 and "not both" in both.output, (command, both.output)
        neither = runner.invoke(main, ["replay", command, *extra])
        assert neither.exit_code == 2 and "--logs DIR" in neither.output, (command, neither.output)
    for given in ([str(root)], ["--logs", str(root)]):
        out = runner.invoke(main, ["replay", "validate", *given, "--json", str(tmp_path / "v.json")])
        assert out.exit_code == 0, out.output
        assert orjson.loads((tmp_path / "v.json").read_bytes())["good"] == 600
    out = runner.invoke(main, ["replay", "export", "--logs", str(root), "--out", str(tmp_path / "t.parquet")])
    assert out.exit_code == 0 and "wrote 600 events" in out.output, out.output


def test_optimize_and_ablate_find_the_deployed_settings_in_the_data_dir(tmp_path):
    root = data_dir(tmp_path / "data", floor=0.05)
    runner = CliRunner()
    out = runner.invoke(main, ["replay", "optimize", "--logs", str(root), "--budget", "1", "--workers", "1",
                               "--json", str(tmp_path / "o.json")])
    assert out.exit_code == 0, out.output
    found = orjson.loads((tmp_path / "o.json").read_bytes())
    assert found["incumbent"]["source"].endswith("model-00000003.json")
    assert found["incumbent"]["propensity_floor"] == 0.05
    out = runner.invoke(main, ["replay", "ablate", str(root), "--workers", "1", "--json", str(tmp_path / "a.json")])
    assert out.exit_code == 0, out.output
    ablated = orjson.loads((tmp_path / "a.json").read_bytes())
    assert ablated["propensity_floor"] == 0.05 and "--epsilon 0.2" in ablated["base"]["args"]


# ------------------------------------------------------------------ --propensity-floor


def test_evaluate_takes_the_deployed_floor_from_the_data_dir_or_the_option(tmp_path):
    root = data_dir(tmp_path / "data", floor=0.3)
    runner = CliRunner()
    base = ["replay", "evaluate", "--policy", "--epsilon 0.0", "--no-baselines", "--workers", "1", "--ci", "normal"]
    out = runner.invoke(main, [*base, str(root), "--json", str(tmp_path / "d.json")])
    assert out.exit_code == 0, out.output
    deployed = orjson.loads((tmp_path / "d.json").read_bytes())
    assert deployed["propensity_floor"] == 0.3 and deployed["propensity_floor_source"].endswith(".json")
    assert "propensity floor 0.3" in out.output
    out = runner.invoke(main, [*base, str(root), "--propensity-floor", "0", "--json", str(tmp_path / "z.json")])
    assert out.exit_code == 0, out.output
    given = orjson.loads((tmp_path / "z.json").read_bytes())
    assert given["propensity_floor"] == 0.0 and given["propensity_floor_source"] == "--propensity-floor"
    # a greedy candidate floored at 0.3 puts at least 0.1 on every offer: it matches more logged actions
    matched = [r["candidates"][0]["estimates"]["ips"]["matched"] for r in (deployed, given)]
    assert matched[0] == 1.0 and matched[0] >= matched[1]
    # without a checkpoint (the decisions directory copied elsewhere): 0
    copied = shutil.copytree(root / "decisions", tmp_path / "copy")
    out = runner.invoke(main, [*base, str(copied), "--json", str(tmp_path / "n.json")])
    assert out.exit_code == 0, out.output
    assert orjson.loads((tmp_path / "n.json").read_bytes())["propensity_floor"] == 0.0


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "abc"])
def test_a_propensity_floor_outside_zero_one_is_a_usage_error(tmp_path, bad):
    root = data_dir(tmp_path / "data", events=20)
    out = CliRunner().invoke(main, ["replay", "evaluate", str(root), "--policy", "--epsilon 0.1",
                                    "--propensity-floor", bad])
    assert out.exit_code == 2 and "--propensity-floor" in out.output and "Traceback" not in out.output


# ------------------------------------------------------------------ pdrop: sub-sampled logs


def dropped_logs(root: Path, events: int = 3000) -> dict[str, Path]:
    """The same fixed log three ways: ``full``; ``dropped``, every other zero-reward event
    left out and the others kept with ``"pdrop": 0.5`` (each stands for two); ``ignored``,
    the very lines of ``dropped`` without their pdrop. Every kept line also carries a
    ``c._tag``."""
    full = fixed_log(root / "full", PMF, events, seed=3, reward=reward)
    kept, plain, zeros = [], [], 0
    for line in (full / "decisions-20261207T090000.000000.dsjson").read_bytes().splitlines():
        doc = orjson.loads(line)
        if doc["_label_cost"] == 0:
            zeros += 1
            if zeros % 2:
                continue
            plain.append(orjson.dumps(doc))
            doc["pdrop"] = 0.5
        else:
            plain.append(orjson.dumps(doc))
        doc["c"]["_tag"] = f"crm-{doc['EventId']}"
        kept.append(orjson.dumps(doc))
    out = {"full": full}
    for name, lines in (("dropped", kept), ("ignored", plain)):
        (root / name).mkdir()
        (root / name / "decisions-20261207T090000.000000.dsjson").write_bytes(b"\n".join(lines) + b"\n")
        out[name] = root / name
    return out


def test_pdrop_and_tag_are_read_and_pdrop_outside_zero_one_is_a_defect(tmp_path):
    logs = dropped_logs(tmp_path, events=40)
    events = events_of(logs["dropped"])
    assert {e.pdrop for e in events} == {0.0, 0.5} and all(e.tag == f"crm-{e.event_id}" for e in events)
    assert {e.sample_weight for e in events} == {1.0, 2.0} and all("_tag" not in e.shared for e in events)
    lines = (logs["dropped"] / "decisions-20261207T090000.000000.dsjson").read_bytes().splitlines()
    bad = []
    for n, value in enumerate([1.0, -0.1, 1.5, "half"]):
        doc = orjson.loads(lines[n])
        doc["pdrop"] = value
        bad.append(orjson.dumps(doc))
    (tmp_path / "bad.dsjson").write_bytes(b"\n".join(bad + lines[4:]) + b"\n")
    out = CliRunner().invoke(main, ["replay", "validate", str(tmp_path / "bad.dsjson"), "--json",
                                    str(tmp_path / "bad.json")])
    assert out.exit_code == 0, out.output
    report = orjson.loads((tmp_path / "bad.json").read_bytes())
    assert report["kinds"]["bad_pdrop"]["count"] == 4 and report["good"] == len(lines) - 4
    assert "[0, 1)" in report["kinds"]["bad_pdrop"]["examples"][0]["reason"]


def test_tag_and_pdrop_round_trip_through_export_and_read_table(tmp_path):
    from replay.export import export_parquet
    from replay.readers.rows import event_columns
    from replay.readers.table import read_table

    logs = dropped_logs(tmp_path, events=200)
    events = events_of(logs["dropped"])
    export_parquet(logs["dropped"], tmp_path / "t.parquet")
    back = [e for chunk in read_table(tmp_path / "t.parquet") for e in chunk]
    assert back == events
    import pyarrow.parquet as pq   # the same file has the nested columns too (replay-mem's export)
    schema = pq.read_schema(tmp_path / "t.parquet")
    assert str(schema.field("tag").type) == "string" and str(schema.field("pdrop").type) == "double"
    assert str(schema.field("pmf").type).startswith("list<") and str(schema.field("context").type).startswith("map<")
    columns = event_columns(events)
    assert columns["tag"] == [e.tag for e in events] and columns["pdrop"] == [e.pdrop for e in events]
    import pyarrow as pa
    import pyarrow.csv as pcsv
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    pcsv.write_csv(table, tmp_path / "t.csv")
    assert [e for chunk in read_table(tmp_path / "t.csv") for e in chunk] == events


def test_estimators_weighted_by_pdrop_give_the_undropped_logs_estimate(tmp_path):
    """The fixed arrays behind every estimator: dropping every other zero-reward event and
    weighting the kept ones by 1/(1 − 0.5) gives the full log's value (to the rounding of
    one event in thousands); ignoring pdrop overstates it by more than a quarter."""
    from replay.estimators import estimate_all
    from replay.streaming import StreamingAll

    rng = np.random.default_rng(11)
    n, mu = 20_000, np.array(PMF)
    actions = rng.choice(3, n, p=mu)
    rewards = (rng.random(n) < np.array([0.2, 0.5, 0.8])[actions]).astype(float)
    target = np.tile([0.2, 0.3, 0.5], (n, 1))
    model = np.tile([0.3, 0.4, 0.6], (n, 1))
    zero = np.flatnonzero(rewards == 0)
    keep = np.ones(n, dtype=bool)
    keep[zero[::2]] = False
    s = np.where(rewards[keep] == 0, 2.0, 1.0)
    args = lambda rows: (rewards[rows], mu[actions][rows], actions[rows], target[rows], model[rows])
    full = estimate_all(*args(slice(None)))
    weighted = estimate_all(*args(keep), sample_weight=s)
    ignored = estimate_all(*args(keep))
    streamed = StreamingAll()
    kept = np.flatnonzero(keep)
    for start in range(0, kept.size, 3000):
        rows = kept[start:start + 3000]
        streamed.update(*args(rows), sample_weight=np.where(rewards[rows] == 0, 2.0, 1.0))
    chunked = streamed.result()
    for method in ("ips", "snips", "dr", "switch_dr"):
        assert weighted[method].value == pytest.approx(full[method].value, abs=0.003), method
        assert ignored[method].value > full[method].value + 0.1, method
        assert chunked[method].value == pytest.approx(weighted[method].value, rel=1e-12), method
        assert chunked[method].se == pytest.approx(weighted[method].se, rel=1e-9), method
        assert weighted[method].params["represented"] == pytest.approx(n, abs=1)
        assert weighted[method].n == keep.sum() and weighted[method].lower < full[method].value < weighted[method].upper
    assert weighted["dm"].value == pytest.approx(full["dm"].value)


def test_evaluate_weights_every_estimate_by_pdrop(tmp_path):
    """Through ``evaluate``: the logging policy's mean and the uniform policy's IPS and
    SNIPS (functions of the log alone, no learner in them) on the dropped log match the
    full log's; without pdrop they are biased; the tags come out per event."""
    from replay.evaluate import evaluate

    logs = dropped_logs(tmp_path)
    found = {name: evaluate(path, ["--epsilon 0.1"], workers=1, per_event=True) for name, path in logs.items()}
    full, dropped, ignored = found["full"], found["dropped"], found["ignored"]
    assert dropped.events < 0.8 * full.events and dropped.represented == pytest.approx(full.events, abs=1)
    pairs = [(lambda r: r.baseline("logging policy").value), (lambda r: r.baseline("uniform random").estimates["ips"]),
             (lambda r: r.baseline("uniform random").estimates["snips"])]
    for get in pairs:
        assert get(dropped).value == pytest.approx(get(full).value, abs=0.005)
        assert get(ignored).value > get(full).value + 0.1
        assert get(dropped).lower <= get(dropped).value <= get(dropped).upper
    table = dropped.per_event_terms()
    assert table["event_id"] == [f"e{n}" for n in range(full.events) if f"e{n}" in set(table["event_id"])]
    assert table["tag"] == [f"crm-{e}" for e in table["event_id"]]
    logged = np.array(table["logging policy"])
    assert logged.mean() == pytest.approx(dropped.baseline("logging policy").value.value)
    out = CliRunner().invoke(main, ["replay", "evaluate", str(logs["dropped"]), "--policy", "--epsilon 0.1",
                                    "--workers", "1", "--per-event", str(tmp_path / "per.csv")])
    assert out.exit_code == 0, out.output
    assert "standing for 2,999 (pdrop)" in out.output or "standing for 3,000 (pdrop)" in out.output
    import pyarrow.csv as pcsv
    written = pcsv.read_csv(tmp_path / "per.csv").to_pydict()
    assert written["event_id"] == table["event_id"] and written["tag"] == table["tag"]


def test_slate_estimates_are_weighted_by_pdrop_too(tmp_path):
    """A multi-slot log (tests.slate_logs) with every other zero-reward slate dropped and
    the others kept with pdrop 0.5: the slate's logged mean and the uniform policy's slate
    and per-slot IPS (functions of the log alone) match the full log's; ignoring pdrop
    overstates them."""
    import random

    from replay.evaluate import evaluate
    from tests.slate_logs import slate_doc

    rng = random.Random(5)
    docs = [slate_doc(i, rng) for i in range(2500)]
    kept, plain, zeros = [], [], 0
    for doc in docs:
        if doc["_nb"]["reward"] == 0:
            zeros += 1
            if zeros % 2:
                continue
            plain.append(orjson.dumps(doc))
            doc = {**doc, "pdrop": 0.5}
        else:
            plain.append(orjson.dumps(doc))
        kept.append(orjson.dumps(doc))
    paths = {}
    for name, lines in (("full", [orjson.dumps(d) for d in docs]), ("dropped", kept), ("ignored", plain)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "decisions-1.dsjson").write_bytes(b"\n".join(lines) + b"\n")
        paths[name] = tmp_path / name
    found = {name: evaluate(path, ["--epsilon 0.1"], workers=1, baselines=True, per_event=True)
             for name, path in paths.items()}
    full, dropped, ignored = found["full"], found["dropped"], found["ignored"]
    assert dropped.slates and dropped.represented == pytest.approx(full.events, abs=1)
    gets = [lambda r: r.baseline("logging policy").value,
            lambda r: r.baseline("uniform random").estimates["ips"],
            lambda r: r.baseline("uniform random").slots[0]["ips"]]
    for get in gets:
        assert get(dropped).value == pytest.approx(get(full).value, abs=0.02)
        assert get(ignored).value > get(full).value + 0.05
        assert get(dropped).lower <= get(dropped).value <= get(dropped).upper
    assert len(dropped.per_event_terms()["event_id"]) == dropped.events
    assert dropped.per_event is None   # (the PerEvent field is single-slot's: a slate's values are per slot)


def test_support_diagnostics_weight_events_by_pdrop():
    """A constant sample weight changes nothing; weights of 3 on the events whose target
    rests on a poorly explored action triple their share of the poorly explored mass."""
    from replay.support import support

    logged = np.array([[0.995, 0.005]] * 4 + [[0.5, 0.5]] * 4)
    target = np.array([[0.0, 1.0]] * 4 + [[1.0, 0.0]] * 4)
    mask = np.ones_like(logged, dtype=bool)
    plain = support(target, logged, mask)
    same = support(target, logged, mask, sample_weight=np.full(8, 2.0))
    assert (same.poor_share, same.ess) == pytest.approx((plain.poor_share, plain.ess))
    heavy = support(target, logged, mask, sample_weight=np.array([3.0] * 4 + [1.0] * 4))
    assert plain.poor_share == pytest.approx(0.5) and heavy.poor_share == pytest.approx(0.75)
    assert heavy.ess < plain.ess


def test_per_event_needs_a_parquet_or_csv_name_and_writes_parquet(tmp_path):
    import pyarrow.parquet as pq

    root = data_dir(tmp_path / "data", events=50)
    runner = CliRunner()
    base = ["replay", "evaluate", str(root), "--policy", "--epsilon 0.1", "--workers", "1"]
    bad = runner.invoke(main, [*base, "--per-event", str(tmp_path / "per.txt")])
    assert bad.exit_code == 2 and "--per-event" in bad.output and ".parquet or .csv" in bad.output
    out = runner.invoke(main, [*base, "--per-event", str(tmp_path / "per.parquet")])
    assert out.exit_code == 0, out.output
    table = pq.read_table(tmp_path / "per.parquet").to_pydict()
    assert table["event_id"] == [f"e{n}" for n in range(50)] and table["tag"] == [None] * 50
    assert "logging policy" in table and "--epsilon 0.1" in table
