"""Settings: defaults, file, environment and options; bad files fail with file:line and reason."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bandit.cli import main
from bandit.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nextbest.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    settings = load_settings(env={})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8080, Path("nextbest-data"))
    assert settings.redis_url is None
    assert (settings.header_timeout_seconds, settings.max_connections) == (10.0, 1024)
    assert load_settings(env={"NEXTBEST_MAX_CONNECTIONS": "0"}).max_connections == 0   # unbounded
    # on by default: every eligible offer at least 0.5 % / K; 0 switches it off
    assert settings.propensity_floor == 0.005
    assert load_settings(env={"NEXTBEST_PROPENSITY_FLOOR": "0"}).propensity_floor == 0.0
    assert settings.decision_settings()["propensity_floor"] == 0.005
    # the contact center shows three offers, so the deployment's model is VW's conditional bandit
    assert settings.slots == {"contact_center": 3} and settings.slots_for("web") == 1
    assert "--ccb_explore_adf --epsilon 0.1" in settings.learner.vw_args()
    assert "--cb_explore_adf --epsilon 0.1" in load_settings(env={"NEXTBEST_SLOTS": ""}, overrides={"slots": {}}
                                                             ).learner.vw_args()


def test_the_pages_language_is_english_unless_set_and_the_telecom_example_sets_russian():
    assert load_settings(env={}).ui_language == "en"
    assert load_settings(env={"NEXTBEST_UI_LANGUAGE": " RU "}).ui_language == "ru"   # case and spaces do not matter
    assert load_settings(env={}, overrides={"ui_language": "browser"}).ui_language == "browser"
    assert load_settings(ROOT / "examples" / "telecom" / "nextbest.yaml", env={}).ui_language == "ru"
    with pytest.raises(ConfigError, match="NEXTBEST_UI_LANGUAGE: setting 'ui_language': expected one of"):
        load_settings(env={"NEXTBEST_UI_LANGUAGE": "fr"})


def test_slots_and_sale_outcomes_are_checked(tmp_path):
    settings = load_settings(env={"NEXTBEST_SLOTS": "contact_center=2,web=1"})
    assert settings.slots == {"contact_center": 2, "web": 1} and settings.learner.slots
    for text, reason in (("slots: {contact_center: 0}\n", "within [1, 10]"), ("slots: [3]\n", "mapping of channel"),
                         ("sale_outcomes: [bought]\n", "not one of the outcomes")):
        with pytest.raises(ConfigError, match=re.escape(reason)) as error:
            load_settings(write(tmp_path, text), env={})
        assert "nextbest.yaml:1" in str(error.value) or "sale_outcomes" in str(error.value)


def test_file_then_environment_then_options(tmp_path):
    path = write(tmp_path, "port: 9000\nexploration: softmax\nsoftmax_lambda: 4\ninteractions: [CO, SO, CS]\n"
                           "outcomes: {accept: 1, decline: -0.1}\n")
    settings = load_settings(path, env={"NEXTBEST_PORT": "9100", "NEXTBEST_EPSILON": "0.2"}, overrides={"port": 9200})
    assert settings.port == 9200
    assert settings.outcomes == {"accept": 1.0, "decline": -0.1}
    assert settings.learner.interactions == ("CO", "SO", "CS")
    args = settings.learner.vw_args()
    assert "--softmax --lambda 4.0" in args and "--interactions CS" in args
    assert load_settings(path, env={"NEXTBEST_PORT": "9100"}).port == 9100


@pytest.mark.parametrize("text, where, reason", [
    ("port: 80\nbogus: 1\n", ":2", "unknown setting 'bogus'"),
    ("port: eighty\n", ":1", "expected int"),
    ("\n\nexploration: greedy\n", ":3", "expected one of"),
    ("reward_aggregation: max\n", ":1", "expected one of first, sum"),
    ("port: [1\n", ":2", "invalid YAML"),
    ("- a\n- b\n", ":1", "must be a mapping"),
    ("checkpoint_every_events: 0\n", ":1", "must be positive"),
    # a mistake inside the feature schema: its own line, not the line of `features:`
    ("features:\n  subscriber:\n    msisdn:\n      type: categorical\n      log: hide\n", ":5",
     "features.subscriber.msisdn.log: expected one of clear, hash, drop, got 'hide'"),
    ("features:\n  subscriber:\n    b.x: {type: numeric, transform: bucket,\n          buckets: [0, 5, 5]}\n", ":4",
     "features.subscriber.b.x.buckets[2]: edges must be strictly increasing"),
    ("port: 9000\npropensity_floor: 1.5\n", ":2", "propensity_floor': must be within [0, 1]"),
    ("propensity_floor: -0.01\n", ":1", "must be within [0, 1]"),
    ("port: 9000\n\nui_language: de\n", ":3", "setting 'ui_language': expected one of en, ru, browser, got 'de'"),
    ("ui_language: ru-RU\n", ":1", "expected one of en, ru, browser"),
])
def test_bad_file_names_file_line_and_reason(tmp_path, text, where, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert f"{path}{where}" in message and reason in message


def test_bad_environment_names_the_variable():
    with pytest.raises(ConfigError, match="NEXTBEST_PORT.*expected int"):
        load_settings(env={"NEXTBEST_PORT": "x"})


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_a_misspelt_environment_variable_is_warned_about_with_the_closest_setting(caplog):
    with caplog.at_level(logging.WARNING, logger="nextbest"):
        settings = load_settings(env={"NEXTBEST_REWARD_WIAT_SECONDS": "5", "NEXTBEST_PORT": "9000",
                                      "NEXTBEST_CONFIG": "x.yaml", "NEXTBEST_SERVE_HOST": "0.0.0.0",
                                      "NEXTBEST_ZZZZ": "1"})
    assert settings.port == 9000 and settings.reward_wait_seconds == 600.0
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "environment variable NEXTBEST_REWARD_WIAT_SECONDS is not a nextbest setting and is ignored; did you mean "
        "NEXTBEST_REWARD_WAIT_SECONDS?",
        "environment variable NEXTBEST_ZZZZ is not a nextbest setting and is ignored (see the settings in "
        "docs/api.md#configuration)"]


# --------------------------------------------------------------------------- errors outside the settings checker

SERVE_ERRORS = [
    ("vw_args: --cb_type foo\n", "setting 'vw_args': VW refused",
     "'foo' is not a valid choice for option --cb_type"),   # VW's own message, quoted
    ("vw_args: --no_such_option\n", "setting 'vw_args': VW refused", "unrecognised option '--no_such_option'"),
    ("bits: 99\n", "setting 'bits': must be within [1, 32]", "got 99"),
    ("port: 70000\n", "setting 'port': must be within [1, 65535]", "got 70000"),
]


@pytest.mark.parametrize("text, what, detail", SERVE_ERRORS)
def test_serve_refuses_a_bad_config_with_file_line_and_no_traceback(tmp_path, text, what, detail):
    """The real command, as an operator runs it: one line naming file:line, exit code 1."""
    path = write(tmp_path, f"data_dir: {tmp_path / 'data'}\n{text}")
    done = subprocess.run([sys.executable, "-m", "bandit.cli", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert f"Error: {path}:2: {what}" in output and detail in output
    assert not (tmp_path / "data").exists()   # refused before anything started


@pytest.mark.parametrize("text, reason", [
    ("epsilon: 1.5\n", "must be within [0, 1]"),
    ("control_share: -0.1\n", "must be within [0, 1]"),
    ("busy_poll_us: 20000\n", "must be within [0, 10000]"),
    ("background_max_lag_seconds: 100000\n", "must be within [0, 86400]"),
    ("value_prior_examples: -1\n", "must be 0 or more"),
    ("settled_retention_seconds: 0.5\n", "must be 1 or more"),
    ("bits: 0\n", "must be within [1, 32]"),
    ("port: 0\n", "must be within [1, 65535]"),
    ("softmax_lambda: -3\n", "must be positive"),
    ("squarecb_gamma_scale: 0\n", "must be positive"),
    ("learning_rate: -0.5\n", "must be positive"),
    ("bag_size: 0\n", "must be positive"),
    ("header_timeout_seconds: 0\n", "must be positive"),
    ("max_connections: -1\n", "must be 0 or more"),
    ("redis_url: http://localhost:6379\n", "expected a URL starting with redis://"),
    ("key_prefix: ''\n", "expected a non-empty prefix"),
    ("vw_args: -b 20\n", "-b is set by nextbest (the 'bits' setting)"),
    ("vw_args: -f /tmp/model.vw\n", "-f is not allowed"),
    ("vw_args: --cb_explore 3\n", "VW refused"),   # parsed, but no use for ADF examples: found by the probe
])
def test_every_numeric_range_and_vw_argument_is_checked_at_load(tmp_path, text, reason):
    path = write(tmp_path, f"port: 9000\n{text}")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert f"Error: {path}:2: setting '{text.split(':')[0]}'" in result.output and reason in result.output


def test_a_bad_environment_value_names_the_variable():
    result = CliRunner().invoke(main, ["serve"], env={"NEXTBEST_BITS": "40", "NEXTBEST_CONFIG": None})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Error: environment NEXTBEST_BITS: setting 'bits': must be within [1, 32]" in result.output
    with pytest.raises(ConfigError, match=r"environment NEXTBEST_VW_ARGS: setting 'vw_args': VW refused .*--x_y_z"):
        load_settings(env={"NEXTBEST_VW_ARGS": "--x_y_z"})
    assert load_settings(env={"NEXTBEST_VW_ARGS": "--cb_type ips", "NEXTBEST_BITS": "20"}).learner.bits == 20
