"""replay.evaluate on multi-slot (VW CCB) logs with a known truth (tests/slate_logs.py):
the on-policy check, slate IPS covering the true value of other policies, the slot-only
weights' bias, --ccb_explore_adf candidates (slot PMFs given the logged earlier slots),
tables, workers, mixed logs and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from replay.candidates import (
    EvaluationError,
    Pass,
    PolicyArgsError,
    init_worker,
    policy_args,
    run_pass,
)
from replay.cli import replay
from replay.evaluate import EvaluationResult, evaluate
from replay.export import export_parquet
from tests.slate_logs import (
    POSITION,
    RATES,
    priority_policy,
    true_value,
    uniform_policy,
    write_slate_log,
)
from tests.test_replay_logs import service_line

N = 4000
EPSILON = "--epsilon 0.1 --interactions CO"


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    return write_slate_log(tmp_path_factory.mktemp("slates") / "decisions.dsjson", N, seed=11, dropped=0.02)


@pytest.fixture(scope="module")
def evaluated(log) -> EvaluationResult:
    return evaluate(log, [EPSILON], workers=1)


def best_slates() -> float:
    """The true value of showing each segment its best offers in rate order (1.02)."""
    return sum(sum(r * p for r, p in zip(sorted(rates, reverse=True), POSITION)) for rates in RATES.values()) / 2


def covers(estimate, value: float) -> bool:
    return estimate.lower <= value <= estimate.upper


def data_events(path: Path) -> int:
    return sum(b'"_skipLearn":true' not in line for line in path.read_bytes().splitlines())


def logged_mean(path: Path) -> float:
    """The mean slate reward straight from the lines (not through replay's reader)."""
    docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    rewards = [sum(-o["_label_cost"] for o in d["_outcomes"]) for d in docs if not d.get("_skipLearn")]
    return sum(rewards) / len(rewards)


def test_the_log_is_read_as_slates(evaluated, log):
    assert evaluated.slates and evaluated.slot_events == [evaluated.events] * 3
    assert 0 < evaluated.skipped < 0.05 * N and evaluated.events + evaluated.skipped == N
    assert "--interactions SO" in evaluated.reward_model   # the Slot namespace's position × offer
    assert evaluated.offers == []


def test_on_policy_the_logging_policys_estimate_is_the_logged_mean(evaluated, log):
    logging = evaluated.baseline("logging policy")
    mean = logged_mean(log)
    assert logging.value.value == pytest.approx(mean, abs=1e-12)
    assert logging.estimates["ips"].value == pytest.approx(mean, abs=1e-12)   # its own PMFs replayed: weights 1
    assert logging.estimates["ips"].max_weight == 1.0
    assert covers(logging.estimates["dr"], mean)
    assert sum(s["on_policy"].value for s in logging.slots) == pytest.approx(mean, abs=1e-12)


@pytest.mark.parametrize("name, policy", [("uniform random", uniform_policy), ("priority by value", priority_policy)])
def test_slate_ips_covers_the_true_value_of_another_policy(evaluated, name, policy):
    truth, per_slot = true_value(policy), true_value(policy, per_slot=True)
    result = evaluated.baseline(name)
    for method in ("ips", "snips", "dr"):
        assert covers(result.estimates[method], truth), (method, result.estimates[method], truth)
    for s, slot in enumerate(result.slots):   # six more intervals: within 3 standard errors each
        for method in ("ips", "dr"):
            assert abs(slot[method].value - per_slot[s]) < 3 * slot[method].se, (s, method, slot[method], per_slot[s])
    assert result.value.method == "dr" and result.estimates["ips"].ess < evaluated.events


def test_slate_ips_intervals_cover_at_about_their_level(tmp_path):
    """Over 20 logs (seeds 100..119, 1500 events each), the 95% slate IPS interval of
    priority by value (deterministic: the largest weights, up to ~100) covers its true
    value in at least 16 (a binomial(20, 0.95) is below 16 with probability 0.3%).
    Measured over seeds 100..199: 90 of 100 (DR 92; the slot-only weights 4): the normal
    interval under-covers a little when weights are heavy-tailed."""
    truth = true_value(priority_policy)
    covered = 0
    for seed in range(100, 120):
        path = write_slate_log(tmp_path / f"log-{seed}.dsjson", 1500, seed=seed)
        covered += covers(evaluate(path, [], workers=1).baseline("priority by value").estimates["ips"], truth)
    assert covered >= 16, covered


def test_slot_only_weights_are_biased_when_slots_depend_on_each_other(evaluated):
    """Uniform's later slots: the logged earlier slots took the logging policy's
    favourites, so weighting slot s by its own ratio values the wrong slates."""
    uniform = evaluated.baseline("uniform random")
    truth = true_value(uniform_policy)
    assert not covers(uniform.estimates["ips_independent"], truth)
    assert uniform.slots[0]["ips_independent"].value == uniform.slots[0]["ips"].value   # slot 1: the same weights
    assert "independent" in uniform.estimates["ips_independent"].params["note"]


def test_a_ccb_candidate_learns_and_beats_uniform(evaluated):
    [candidate] = evaluated.candidates
    assert candidate.args.startswith("--ccb_explore_adf") and "--epsilon 0.1" in candidate.args
    assert candidate.value.lower > evaluated.baseline("uniform random").value.upper
    assert candidate.value.value < best_slates() + 0.05
    assert len(candidate.slots) == 3 and candidate.curve is not None
    assert candidate.slots[0]["dr"].value > candidate.slots[1]["dr"].value > candidate.slots[2]["dr"].value


def test_candidate_slot_pmfs_are_over_the_actions_left_by_the_logged_earlier_slots(log, tmp_path):
    """--epsilon 0.2: every action available in slot s has at least 0.2 / (4 - s + 1), so a
    PMF's smallest entry says over how many actions it was spread."""
    small = tmp_path / "small.dsjson"
    small.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:300]))
    args = policy_args("--epsilon 0.2", slates=True)
    init_worker(None)
    result = run_pass(Pass(1, "policy", args, str(small), "auto", slates=True))
    values, offset = result.values, 0
    greedy = 0
    for _ in range(result.events):
        for available in (4, 3, 2):
            pmf = values[offset: offset + available]
            offset += available
            assert pmf.sum() == pytest.approx(1.0)
            if not np.allclose(pmf, 1 / available):   # (ties, before learning: uniform)
                assert np.isclose(pmf, 0.2 / available, rtol=1e-6).sum() == available - 1, pmf
                greedy += 1
    assert offset == values.size and greedy > 0.9 * 3 * result.events


def test_candidate_arguments_for_slates():
    assert policy_args("--cb_explore_adf --epsilon 0.05", slates=True).startswith("--ccb_explore_adf --epsilon")
    assert policy_args("--ccb_explore_adf --squarecb", slates=True).startswith("--ccb_explore_adf --squarecb")
    with pytest.raises(PolicyArgsError, match="--ccb_explore_adf changes the reduction"):
        policy_args("--ccb_explore_adf")
    with pytest.raises(PolicyArgsError, match="--cb_adf changes the reduction; a candidate is a --ccb_explore_adf"):
        policy_args("--cb_adf", slates=True)


def test_a_table_and_workers_give_the_same_numbers(tmp_path, log, evaluated):
    export_parquet(log, tmp_path / "log.parquet")
    again = evaluate(tmp_path / "log.parquet", [EPSILON], workers=2)
    for a, b in zip([*evaluated.candidates, *evaluated.baselines], [*again.candidates, *again.baselines]):
        assert a.name == b.name and a.estimates == b.estimates and a.slots == b.slots


def test_mixed_logs(tmp_path):
    """Single-slot lines, then slates: as single-slot, the first slate stops the
    evaluation with a message; as slates, a single-slot event is a slate of one."""
    path = tmp_path / "mixed.dsjson"
    write_slate_log(tmp_path / "slates.dsjson", 300)
    path.write_bytes(b"".join(service_line(n) for n in range(50)) + (tmp_path / "slates.dsjson").read_bytes())
    with pytest.raises(EvaluationError, match="multi-slot .* --slates"):
        evaluate(path, [EPSILON], workers=1, slates=False)
    result = evaluate(path, [EPSILON], workers=1)   # (a slate among the first 10,000 events)
    assert result.slot_events == [350, 300, 300] and result.events == 350
    assert result.baseline("logging policy").estimates["ips"].value == pytest.approx(
        result.baseline("logging policy").value.value, abs=1e-12)
    assert result.baseline("priority by value") is None   # the single-slot lines carry no values


def test_cli_evaluate_a_ccb_log(tmp_path, log):
    runner = CliRunner()
    result = runner.invoke(replay, ["evaluate", str(log), "--policy", EPSILON, "--json", str(tmp_path / "r.json"),
                                    "--report", str(tmp_path / "report"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"slot 1 ({data_events(log):,})" in result.output
    assert "priority by value" in result.output and "Traceback" not in result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["slot_events"] == [data["events"]] * 3
    candidate = data["candidates"][0]
    assert len(candidate["slots"]) == 3 and set(candidate["slots"][0]) == {"ips", "snips", "dr", "ips_independent"}
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Per slot</h2>" in html and "slot-only IPS" in html
    assert np.isfinite(candidate["estimates"]["dr"]["value"])


@pytest.mark.parametrize("slates", [True, False])
def test_features_vw_cannot_read_stop_with_a_message_not_a_crash(tmp_path, slates):
    """A nested array passes the checks (JSON is JSON) but not VW's parser, which then
    hands back too few examples; finishing those crashed VW. Now: one line, naming the event."""
    good = write_slate_log(tmp_path / "s.dsjson", 20).read_bytes() if slates else \
        b"".join(service_line(n) for n in range(20))
    doc = orjson.loads(good.splitlines()[0])
    doc["EventId"], doc["c"]["Profile"] = "odd", {"tenure": [[1]]}
    path = tmp_path / "log.dsjson"
    path.write_bytes(good + orjson.dumps(doc) + b"\n")
    with pytest.raises(EvaluationError, match=r"event 'odd': VW read 1 example\(s\) .* not in a form VW's JSON"):
        evaluate(path, [EPSILON], workers=1)
