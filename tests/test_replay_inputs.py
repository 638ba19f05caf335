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
