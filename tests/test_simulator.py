"""The simulator: a seeded world with a structured truth, a run against a live service
(its own on the embedded Redis, or one at a URL), and the proof that the service learns."""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from bandit.app import create_app
from bandit.cli import main
from bandit.config import load_settings
from simulator.run import EXAMPLE_CATALOG, EXAMPLE_CONFIG, SimulationConfig, run_simulation
from simulator.service import MARKER, ServiceError, fresh_data_dir
from simulator.truth import CEILING, FLOOR, accept_probability
from simulator.world import SEGMENTS, Contact, generate_base, generate_contacts
from tests.conftest import wait_ready
from tests.harness import REPO_ROOT, _free_port, _redis_servers_on, short_tempdir, wait_until


def test_world_is_the_same_for_a_seed_and_differs_across_seeds():
    a, b, c = generate_base(500, 3), generate_base(500, 3), generate_base(500, 4)
    assert list(a.ids) == list(b.ids) and a.services == b.services and np.array_equal(a.balance, b.balance)
    assert list(a.ids) != list(c.ids)
    assert len(set(a.ids)) == 500 and all(i.startswith("+79") and len(i) == 12 for i in a.ids)
    ca, cb = generate_contacts(a, 300, 3), generate_contacts(b, 300, 3)
    assert ca == cb
    assert {c.channel for c in ca} == {"contact_center", "web", "search", "ussd"}
    center = [c for c in ca if c.channel == "contact_center"]
    assert all("reason_text" in c.context for c in center) and any("reason" in c.context for c in center)


def test_the_truth_has_structure_reason_usage_segment():
    base = generate_base(3000, 5)
    heavy = int(np.argmax(base.usage["long_distance_minutes"]))
    light = int(np.argmin(base.usage["long_distance_minutes"]))

    def call(who: int, intent: str, channel: str = "contact_center") -> Contact:
        return Contact(0, who, channel, intent, {}, 0.5, 10.0, False)

    # the reason matters most, and most when told to an agent
    assert accept_probability(base, call(heavy, "long_distance"), "home_cities") > \
        accept_probability(base, call(heavy, "sms_cost"), "home_cities") + 0.3
    assert accept_probability(base, call(heavy, "long_distance"), "home_cities") > \
        accept_probability(base, call(heavy, "long_distance", "web"), "home_cities") > \
        accept_probability(base, call(heavy, "long_distance", "ussd"), "home_cities")
    # usage matters: heavy long-distance callers take Home Cities more
    assert accept_probability(base, call(heavy, "long_distance"), "home_cities") > \
        accept_probability(base, call(light, "long_distance"), "home_cities")
    # some offers are good only for some segments
    parent = int(np.flatnonzero(base.segment == SEGMENTS.index("parent"))[0])
    other = int(np.flatnonzero(base.segment == SEGMENTS.index("traveller"))[0])
    assert accept_probability(base, call(parent, "tariff_question"), "child_locator") > \
        accept_probability(base, call(other, "tariff_question"), "child_locator")
    for who in range(200):
        for offer in ("home_cities", "roaming_discount", "unknown_offer"):
            assert FLOOR <= accept_probability(base, call(who, "roaming"), offer) <= CEILING


def test_a_data_dir_not_made_by_a_simulation_is_never_wiped(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(ServiceError, match="not made by a simulation"):
        fresh_data_dir(precious)
    assert (precious / "keep.txt").read_text() == "mine"
    ours = fresh_data_dir(tmp_path / "ours")
    (ours / "junk").write_text("x")
    assert list(fresh_data_dir(ours).iterdir()) == [ours / MARKER]


@pytest.mark.timeout(600)
async def test_the_service_learns_the_telecom_scenario(tmp_path):
    """Proof of learning: over the last 20% of a seeded run the learned policy closes at
    least 70% of the gap in value per decision between uniform random and the oracle."""
    config = SimulationConfig(contacts=40_000, subscribers=20_000, seed=7, data_dir=tmp_path / "sim",
                              json_path=tmp_path / "out" / "summary.json", report_dir=tmp_path / "out",
                              progress=False)
    result = await run_simulation(config)
    summary = result["summary"]
    policies = summary["policies"]
    assert summary["gap_closed"] >= 0.70, (   # what a failure needs to be understood, not truncated
        summary["gap_closed"], {name: round(p["value_per_decision"], 2) for name, p in policies.items()},
        summary["rewards"], result["service"]["counters"])
    assert policies["oracle"]["value_per_decision"] > policies["learned"]["value_per_decision"] > \
        policies["priority"]["value_per_decision"] > policies["random"]["value_per_decision"]
    assert policies["learned"]["decisions"] + policies["control"]["decisions"] == summary["decisions"]
    share = policies["control"]["decisions"] / summary["decisions"]
    assert 0.07 < share < 0.13   # control_share 0.1 of subscribers
    lift = summary["lift_over_control"]["value_per_decision"]
    assert lift["lower"] > 0 and lift["lower"] <= lift["difference"] <= lift["upper"]
    # every slot served was settled and learned: answers, silences (default reward), nothing lost
    counters, model = result["service"]["counters"], result["service"]["model"]
    assert sum(summary["rewards"].values()) == summary["slots_served"] >= summary["decisions"]
    # an answer that came after the reward wait (a loaded machine) was joined with the default instead
    # (counted per answer: a decision with a slot still unanswered joins at its deadline)
    assert counters["rewards_accepted"] >= summary["slots_served"] - summary["rewards"].get("silent", 0) \
        - summary["rewards"].get("late", 0)
    assert summary["per_slot"][0]["decisions"] == policies["learned"]["decisions"]
    assert model["examples_learned"] >= counters["events_joined"]
    written = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert written["summary"]["gap_closed"] == summary["gap_closed"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") == 4 and "Learning curve" in page


async def test_simulate_drives_a_running_service_over_http(redis_url, key_prefix, data_dir, aiohttp_client):
    """``--url``: profiles go in through the API, the same summary comes out (both Redis kinds)."""
    settings = load_settings(EXAMPLE_CONFIG, env={}, overrides={
        "redis_url": redis_url, "key_prefix": key_prefix, "data_dir": data_dir, "catalog": EXAMPLE_CATALOG,
        "reward_wait_seconds": 1.0, "checkpoint_every_seconds": 3600.0})
    client = await aiohttp_client(create_app(settings))
    await wait_ready(client)
    url = str(client.make_url("")).rstrip("/")
    config = SimulationConfig(contacts=600, subscribers=300, seed=11, url=url, time_scale=0.0005, progress=False)
    summary = (await run_simulation(config))["summary"]
    assert summary["contacts"] == 600 and summary["decisions"] + summary["no_eligible_offer"] == 600
    assert summary["decisions"] > 500
    assert set(summary["per_channel"]) == {"contact_center", "web", "search", "ussd"}
    for name in ("random", "priority", "oracle"):
        assert summary["policies"][name]["decisions"] == summary["decisions"]
    oracle, random = (summary["policies"][p]["value_per_decision"] for p in ("oracle", "random"))
    assert oracle > random > 0 and math.isfinite(summary["gap_closed"])
    stats = await (await client.get("/v1/stats")).json()
    assert stats["counters"]["decisions"] >= summary["decisions"]


def test_cli_simulate_writes_json_and_report_and_refuses_bad_settings(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["simulate", "--contacts", "300", "--subscribers", "400", "--quiet",
                                  "--data-dir", str(tmp_path / "sim"), "--json", str(out / "s.json"),
                                  "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "oracle" in result.output and "gap closed" in result.output
    assert orjson.loads((out / "s.json").read_bytes())["summary"]["contacts"] == 300
    assert (out / "report.html").exists()
    bad = runner.invoke(main, ["simulate", "--set", "exploration", "--contacts", "10"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    refused = runner.invoke(main, ["simulate", "--contacts", "10", "--set", "exploration=greedy",
                                   "--data-dir", str(tmp_path / "sim2"), "--quiet"])
    assert refused.exit_code == 1 and "exploration" in refused.output and "Traceback" not in refused.output


async def test_demo_serve_keeps_the_service_up_and_sigterm_stops_everything():
    """``nextbest demo --serve``: after the run the service (UI included) stays up; SIGTERM
    unwinds the demo, which stops its service and the embedded Redis."""
    data_dir = short_tempdir("nbdemo") / "demo"
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bandit.cli", "demo", "--serve", "--port", str(port), "--contacts", "200",
         "--subscribers", "300", "--quiet", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        async with aiohttp.ClientSession() as http:
            async def agent_page() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/ui/agent") as response:
                        return response.status == 200 and (data_dir.parent / "demo-report" / "report.html").exists()
                except aiohttp.ClientError:
                    return False
            await wait_until(agent_page, timeout=120, what="the demo's service to keep serving")
        assert _redis_servers_on(data_dir)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
        assert "oracle" in output and "/ui/agent" in output, output
        assert not _redis_servers_on(data_dir)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if process.poll() is None:
            process.kill()
