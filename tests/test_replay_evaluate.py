"""replay.evaluate / replay.search: counterfactual evaluation of VW policies on logs with a
known truth (a uniform logging policy, Bernoulli rewards from a table), the baselines,
the settings search, namespace ablation, the CLI and its report, and a real service log."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from bandit.learn.decision_log import dsjson_record
from bandit.decide.record import read_record
from bandit.store.store import JoinedEvent
from policies.vwtext import encode_features, encode_offer
from replay.candidates import EvaluationError, PolicyArgsError, log_namespaces, policy_args
from replay.cli import replay
from replay.evaluate import EvaluationResult, evaluate
from replay.export import export_parquet
from replay.html import Raw, table
from replay.search import ablation, default_grid, optimize
from tests.conftest import OFFERS
from tests.harness import REPO_ROOT, wait_until, read_lines

# The world: the segment (Context) decides which offer pays; tenure (Subscriber) is noise.
# A quarter of the events offer only the first three. Logging is uniform over the offers.
TRUTH = {"a": [0.1, 0.9, 0.3, 0.1], "b": [0.6, 0.3, 0.5, 0.1]}
OFFER_IDS = ["o0", "o1", "o2", "o3"]
SHORT_SET = 0.25          # share of events without o3
DROPPED = 0.02            # share of dropped (skip_learn) events
N = 3000
EPSILON = "--epsilon 0.1 --interactions CO --interactions SO"
SQUARECB = "--squarecb --interactions CO"


def true_value(pick) -> float:
    """The exact expected reward of a policy ``pick(segment, offers) -> {offer index: probability}``."""
    total = 0.0
    for segment, rates in TRUTH.items():
        for share, k in ((1 - SHORT_SET, 4), (SHORT_SET, 3)):
            total += 0.5 * share * sum(p * rates[a] for a, p in pick(segment, k).items())
    return total


TRUE_UNIFORM = true_value(lambda segment, k: {a: 1 / k for a in range(k)})
TRUE_O1 = true_value(lambda segment, k: {1: 1.0})   # o1 is offered in every event
TRUE_BEST = true_value(lambda segment, k: {max(range(k), key=lambda a: TRUTH[segment][a]): 1.0})


def write_log(path: Path, n: int = N, seed: int = 7) -> None:
    """Lines exactly as the service writes them (bandit.learn.decision_log.dsjson_record)."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        segment = rng.choice("ab")
        ids = OFFER_IDS if rng.random() >= SHORT_SET else OFFER_IDS[:3]
        chosen = rng.randrange(len(ids))
        reward = float(rng.random() < TRUTH[segment][chosen])
        kind = "dropped" if rng.random() < DROPPED else "joined"
        record = {"ts": 1795598572597 + i, "model": "0.0", "policy": "control" if rng.random() < 0.2 else "model",
                  "shared": {"Context": encode_features({"segment": segment, "channel": "web"}),
                             "Subscriber": encode_features({"tenure": round(rng.random() * 10, 3)})},
                  "actions": [encode_offer(o, {"price": 1.0 + j}) for j, o in enumerate(ids)],
                  "pmf": [1 / len(ids)] * len(ids), "chosen": chosen, "catalog": None, "channel": "web",
                  "sid": None, "offers": ids, "defer": False}
        event = JoinedEvent(f"{1795598572600 + i}-0", f"ev-{i}", orjson.dumps(record),
                            0.0 if kind == "dropped" else reward, kind, int(kind == "joined"), 1795598572700 + i,
                            decode=read_record)
        lines.append(orjson.dumps(dsjson_record(event)) + b"\n")
    path.write_bytes(b"".join(lines))


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("evaluate") / "decisions.dsjson"
    write_log(path)
    return path


@pytest.fixture(scope="module")
def evaluated(log) -> EvaluationResult:
    return evaluate(log, [EPSILON], workers=1)


def covers(estimate, value: float) -> bool:
    return estimate.lower <= value <= estimate.upper


# --------------------------------------------------------------------------- estimates against the truth

def test_uniform_and_logging_baselines_cover_the_true_uniform_value(evaluated):
    assert evaluated.events + evaluated.skipped == N and 0 < evaluated.skipped < 3 * DROPPED * N
    uniform = evaluated.baseline("uniform random")
    for method in ("ips", "snips", "dr", "switch_dr"):
        assert covers(uniform.estimates[method], TRUE_UNIFORM), (method, uniform.estimates[method])
    assert uniform.estimates["dr"].matched == 1.0 and uniform.estimates["ips"].max_weight == pytest.approx(1.0)
    logged = evaluated.baseline("logging policy")   # the log *is* uniform: its on-policy value is the same
    assert logged.headline == "on_policy" and covers(logged.value, TRUE_UNIFORM)
    assert {b.name for b in evaluated.baselines} >= {"logging policy (model)", "logging policy (control)"}


def test_the_best_single_offer_is_the_known_best(evaluated):
    best = evaluated.baseline("best single offer")
    assert best.name == "best single offer (o1)" and covers(best.value, TRUE_O1)
    offers = {o.offer: o for o in evaluated.offers}
    assert [o.offer for o in evaluated.offers][0] == "o1" and set(offers) == set(OFFER_IDS)
    assert offers["o1"].events == evaluated.events and 0.7 < offers["o3"].events / evaluated.events < 0.8
    assert sum(o.served for o in evaluated.offers) == evaluated.events


def test_a_learning_candidate_beats_uniform_with_confidence(evaluated):
    [candidate] = evaluated.candidates
    dr, uniform = candidate.value, evaluated.baseline("uniform random").value
    assert candidate.args == f"--cb_explore_adf {EPSILON} --quiet" and candidate.name == EPSILON
    assert dr.lower > uniform.upper and dr.value < TRUE_BEST
    assert dr.value == pytest.approx(candidate.terms.mean()) and dr.n == evaluated.events
    assert all(candidate.estimates[m].lower > uniform.upper for m in ("ips", "snips", "dm", "switch_dr"))
    curve = candidate.curve
    assert curve.events[-1] == evaluated.events and curve.value[-1] == pytest.approx(dr.value)
    assert candidate.events_per_second > 500 and evaluated.best is candidate
    json.dumps(evaluated.to_json(), allow_nan=False)   # plain JSON: no NaN, no numpy types


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("args, message", [
    ("--epsilon abc", r"policy '--epsilon abc': VW refused the arguments \(about --epsilon abc\): Failed to convert"),
    ("--foo 3", r"about --foo 3\): unrecognised option '--foo'"),
    ("--cb_adf --epsilon 0.1", "--cb_adf changes the reduction"),
    ("--cb_type zz", r"about --cb_type zz\).*not a valid choice"),
    ("--epsilon 0.1 -d other.dat", "-d is not allowed"),
    ("--epsilon '0.1", "cannot split"),
])
def test_bad_vw_arguments_are_refused_by_name(args, message):
    with pytest.raises(PolicyArgsError, match=message):
        policy_args(args)


def test_unreadable_and_empty_logs(tmp_path, log):
    with pytest.raises(EvaluationError, match="no such file"):
        evaluate(tmp_path / "missing.dsjson", [EPSILON])
    (tmp_path / "empty.dsjson").write_text("\n")
    with pytest.raises(EvaluationError, match="no events to evaluate"):
        evaluate(tmp_path / "empty.dsjson", [EPSILON])
    dropped = [line for line in log.read_bytes().splitlines(keepends=True) if b"_skipLearn" in line]
    (tmp_path / "dropped.dsjson").write_bytes(b"".join(dropped))
    with pytest.raises(EvaluationError, match="every good event is skip_learn"):
        evaluate(tmp_path / "dropped.dsjson", [EPSILON], workers=1)
    with pytest.raises(PolicyArgsError, match="--foo"):   # arguments are checked before anything runs
        evaluate(log, [EPSILON, "--foo"])
    with pytest.raises(EvaluationError, match="ci must be one of"):
        evaluate(log, [EPSILON], ci="poisson")   # bernstein and cs are kinds now (docs/replay.md, Intervals that hold)


# --------------------------------------------------------------------------- parallel, formats

def comparable(result: EvaluationResult) -> dict[str, Any]:
    data = result.to_json()
    for key in ("seconds", "workers", "source"):
        del data[key]
    for policy in data["candidates"]:
        del policy["seconds"], policy["events_per_second"]
    return data


def test_workers_and_formats_give_the_same_numbers(tmp_path, log):
    options: dict[str, Any] = {"ci": "bootstrap", "baselines": False}   # baselines: computed alike anyway
    serial = evaluate(log, [EPSILON, SQUARECB], workers=1, **options)
    seen: list[tuple[float, int]] = []
    parallel = evaluate(log, [EPSILON, SQUARECB], workers=2, **options,
                        progress=lambda share, events: seen.append((share, events)))
    assert parallel.workers == 2 and comparable(parallel) == comparable(serial)
    assert seen[-1] == (1.0, 3 * serial.events) and serial.candidates[0].value.params == {"n_boot": 1000}
    export_parquet(log, tmp_path / "log.parquet")
    table_ = evaluate(tmp_path / "log.parquet", [EPSILON, SQUARECB], workers=1, **options)
    assert comparable(table_) == comparable(serial)


# --------------------------------------------------------------------------- search and ablation

def test_ablation_finds_the_informative_namespace(log):
    found = ablation(log, EPSILON, workers=1)
    rows = {row.initial: row for row in found.rows}
    assert set(rows) == {"C", "S", "O"} and rows["C"].names == ["Context"]
    assert rows["C"].drop.lower > 0.05 and rows["C"].result.args.endswith("--ignore C --quiet")
    assert covers(rows["S"].drop, 0.0) and abs(rows["S"].drop.value) < 0.02   # noise: no loss without it
    assert found.rows[-1].initial == "S" and found.evaluation.baselines == []
    json.dumps(found.to_json(), allow_nan=False)


def test_optimize_ranks_settings_by_dr_lower_bound(log):
    namespaces = log_namespaces(str(log))
    assert namespaces.pairs == ["CO", "SO"] and 18 <= len(default_grid(namespaces)) <= 24
    grid = {"exploration": ["--epsilon 0.1", "--epsilon 1"], "features": ["--interactions CO", "--ignore C"]}
    found = optimize(log, grid=grid, budget=3, seed=1, workers=1)
    names = [r.name for r in found.ranked]
    # no deployed settings next to this log: the service's default is the incumbent, always evaluated
    default = "--epsilon 0.1 -l 0.5 --interactions CO --interactions SO"
    assert len(names) == 3 and default in names and found.incumbent.name == default and found.best.name == names[0]
    assert found.incumbent_info.deployed is None and "service's default" in found.incumbent_info.source
    lowers = [r.value.lower for r in found.ranked]
    assert lowers == sorted(lowers, reverse=True)
    data = found.to_json()
    assert data["best"]["name"] == names[0] and data["incumbent"]["name"] == default
    recommendation = found.recommendation
    if recommendation.change:   # only with a lower bound above the incumbent's value
        assert recommendation.policy.value.lower > found.incumbent.value.value
    else:
        assert recommendation.policy is found.incumbent and "keep the service's default" in recommendation.reason


# --------------------------------------------------------------------------- CLI and report

def test_cli_evaluate_writes_json_and_a_report_with_plots(tmp_path, log):
    runner = CliRunner()
    result = runner.invoke(replay, ["evaluate", str(log), "--policy", EPSILON, "--policy", "--epsilon 1",
                                    "--json", str(tmp_path / "out" / "r.json"), "--report", str(tmp_path / "report"),
                                    "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "uniform random" in result.output and "best single offer (o1)" in result.output
    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert data["best"] == EPSILON and [c["name"] for c in data["candidates"]] == [EPSILON, "--epsilon 1"]
    assert set(data["candidates"][0]["estimates"]) == {"ips", "snips", "dm", "dr", "switch_dr"}
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("<svg") >= 2 and "running DR estimate" in page and "<script" not in page
    assert f"<code>{EPSILON}</code>" in page

    bad = runner.invoke(replay, ["evaluate", str(log), "--policy", "--epsilon abc"])
    assert bad.exit_code == 1 and "--epsilon abc" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(replay, ["evaluate", str(tmp_path / "nope"), "--policy", EPSILON])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "empty.dsjson").write_text("")
    empty = runner.invoke(replay, ["evaluate", str(tmp_path / "empty.dsjson"), "--policy", EPSILON])
    assert empty.exit_code == 1 and "no events to evaluate" in empty.output and "Traceback" not in empty.output


def test_cli_optimize_and_ablate(tmp_path, log):
    runner = CliRunner()
    result = runner.invoke(replay, ["optimize", str(log), "--budget", "2", "--json", "-", "--workers", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["ranked"]) == 2 and data["best"]["name"] == data["ranked"][0]
    assert "--epsilon 0.1 -l 0.5 --interactions CO --interactions SO" in data["ranked"]   # the service's default
    result = runner.invoke(replay, ["ablate", str(log), "--policy", EPSILON, "--report", str(tmp_path / "a"),
                                    "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "C (Context)" in result.output and "S (Subscriber)" in result.output
    assert "<svg" in (tmp_path / "a" / "report.html").read_text()


def test_html_table_escapes_cells():
    html = table(["a<b", "c"], [["<script>x</script>", Raw("<b>ok</b>")], [None, 1.5]])
    assert "&lt;script&gt;" in html and "<b>ok</b>" in html and "a&lt;b" in html and "–" in html


def test_evaluation_imports_no_service_module():
    code = ("import sys, replay.evaluate, replay.search, replay.report, replay.cli; print(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('bandit', 'aiohttp', 'redis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- a real service's log

async def test_evaluates_what_a_real_service_logged(make_client, data_dir):
    client = await make_client(control_share=0.2)
    rng = random.Random(5)
    rewards = []
    for i in range(80):
        segment = rng.choice("ab")
        body = {"channel": "web", "context": {"segment": segment}, "offers": OFFERS, "event_id": f"real-{i}"}
        decision = await (await client.post("/v1/decide", json=body)).json()
        served = decision["ranking"][0]["offer_id"]
        reward = float(served == ("offer1" if segment == "a" else "offer2"))
        await client.post("/v1/reward", json={"event_id": decision["event_id"], "reward": reward})
        rewards.append(reward)

    async def logged():
        try:
            return len(read_lines(data_dir / "decisions")) == len(rewards)
        except OSError:
            return False
    await wait_until(logged, what="80 logged lines")

    result = evaluate(data_dir / "decisions", ["--epsilon 0.1 --interactions CO", "--squarecb --interactions CO"],
                      workers=1)
    assert result.events == 80 and result.skipped == 0 and result.report.defects == 0
    assert result.reward_model.split("--interactions ")[1:] == ["CO --quiet"]
    assert result.baseline("logging policy").value.value == pytest.approx(sum(rewards) / len(rewards))
    for candidate in result.candidates:
        assert all(math.isfinite(e.value) for e in candidate.estimates.values())
        assert 0 < candidate.value.ess <= 80 and candidate.value.matched > 0
    assert {o.offer for o in result.offers} == {o["id"] for o in OFFERS}


# ----------------------------------------------------------------- memory: compact arrays


def test_passes_keep_float32_and_int32_arrays(log):
    from replay.candidates import Pass, log_namespaces, reward_model_args, run_pass

    model = reward_model_args(log_namespaces(str(log)).pairs)
    result = run_pass(Pass(0, "reward", model, str(log)))
    facts = result.facts
    assert result.values.dtype == facts.logged_p.dtype == facts.logged_pmf.dtype == "float32"
    assert facts.chosen.dtype == facts.counts.dtype == facts.offer_codes.dtype == "int32"
    assert facts.rewards.dtype == "float64"   # any real reward: full precision
    assert result.values.size == facts.logged_pmf.size == int(facts.counts.sum()) > 0


def _estimates(result: EvaluationResult) -> dict[str, float]:
    out = {}
    for policy in [*result.candidates, *result.baselines]:
        for method, estimate in policy.estimates.items():
            for part in ("value", "lower", "upper", "se"):
                out[f"{policy.name} {method} {part}"] = getattr(estimate, part)
    for offer in result.offers:
        out.update({f"offer {offer.offer} {m}": e.value for m, e in offer.estimates.items()})
    return out


@pytest.mark.parametrize("uneven", [True, False], ids=["some events with fewer actions", "all events alike"])
def test_compact_arrays_give_the_float64_estimates_within_1e_6(log, tmp_path, monkeypatch, uneven):
    """The same evaluation with the float64/int64 arrays of before (TYPECODES) as the
    reference: every estimate, interval end and se within 1e-6 relative."""
    from replay import candidates
    from tests.test_replay_logs import service_line

    if not uneven:   # every event with all three actions: the flat arrays are viewed, not padded
        log = tmp_path / "even.dsjson"
        rng = random.Random(3)
        log.write_bytes(b"".join(service_line(n, chosen=rng.randrange(3), pmf=[0.2, 0.3, 0.5],
                                              reward=float(rng.random() < 0.3)) for n in range(1500)))
    compact = _estimates(evaluate(log, [EPSILON], workers=1))
    monkeypatch.setattr(candidates, "TYPECODES", {"value": "d", "probability": "d", "index": "q"})
    wide = _estimates(evaluate(log, [EPSILON], workers=1))
    assert compact.keys() == wide.keys() and len(compact) > 20
    for key, value in wide.items():
        if value is None or not math.isfinite(value):
            assert compact[key] == value or (math.isnan(value) and math.isnan(compact[key])), key
        else:
            assert abs(compact[key] - value) <= 1e-6 * max(abs(value), 1e-3), (key, compact[key], value)


def test_support_by_blocks_of_rows_equals_one_block(monkeypatch):
    import numpy as np

    from replay import support as diagnostics

    rng = np.random.default_rng(0)
    n, k = 1000, 4
    mask = np.ones((n, k), dtype=bool)
    mask[::3, 3] = False
    logged = np.where(mask, rng.dirichlet(np.ones(k), n), 0.0)
    logged[::7, 1] = 0.001         # poorly explored
    logged[::11] = np.nan          # events logged without a PMF
    target = np.where(mask, rng.dirichlet(np.ones(k) / 2, n), 0.0)
    target /= target.sum(axis=1, keepdims=True)
    rule = diagnostics.SupportRule(threshold=0.01, max_share=0.05, min_ess=100)
    whole = diagnostics.support(target, logged, mask, rule)
    monkeypatch.setattr(diagnostics, "BLOCK_ROWS", 64)
    blocks = diagnostics.support(target, logged, mask, rule)
    assert whole.events == blocks.events == n - len(range(0, n, 11)) and whole.reasons == blocks.reasons
    for field in ("poor_share", "unsupported_share", "ess", "max_weight"):
        assert getattr(blocks, field) == pytest.approx(getattr(whole, field), rel=1e-12), field
    s = rng.choice([1.0, 2.0, 4.0], n)   # pdrop's sample weights, summed block by block alike
    monkeypatch.setattr(diagnostics, "BLOCK_ROWS", 65_536)
    weighted = diagnostics.support(target, logged, mask, rule, sample_weight=s)
    monkeypatch.setattr(diagnostics, "BLOCK_ROWS", 64)
    weighted_blocks = diagnostics.support(target, logged, mask, rule, sample_weight=s)
    assert weighted.ess != pytest.approx(whole.ess, rel=1e-3)   # the weights do change it
    for field in ("poor_share", "unsupported_share", "ess", "max_weight"):
        assert getattr(weighted_blocks, field) == pytest.approx(getattr(weighted, field), rel=1e-12), field

    from replay import finite   # the weights' and DR terms' limits alike
    chosen = np.array([int(np.flatnonzero(row)[0]) for row in mask])
    logged_p = np.where(np.isnan(logged[np.arange(n), chosen]), 0.5, logged[np.arange(n), chosen])
    reward_hat = rng.random((n, k))
    weights = finite.possible_weights(target, logged, mask, chosen, logged_p)
    expected = (float(weights.max()), *finite.dr_term_bounds(weights, target, reward_hat, mask, (0.0, 1.0)))
    monkeypatch.setattr(finite, "BLOCK_ROWS", 64)
    assert finite.weight_limits(target, logged, mask, chosen, logged_p, reward_hat, (0.0, 1.0)) == expected
