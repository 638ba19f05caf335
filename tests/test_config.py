"""Settings: defaults, file, environment and options; bad files fail with file:line and reason."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from bandit.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nextbest.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    settings = load_settings(env={})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8080, Path("nextbest-data"))
    assert settings.redis_url is None
    # on by default: every eligible offer at least 0.5 % / K; 0 switches it off
    assert settings.propensity_floor == 0.005
    assert load_settings(env={"NEXTBEST_PROPENSITY_FLOOR": "0"}).propensity_floor == 0.0
    assert settings.decision_settings()["propensity_floor"] == 0.005
    # the contact center shows three offers, so the deployment's model is VW's conditional bandit
    assert settings.slots == {"contact_center": 3} and settings.slots_for("web") == 1
    assert "--ccb_explore_adf --epsilon 0.1" in settings.learner.vw_args()
    assert "--cb_explore_adf --epsilon 0.1" in load_settings(env={"NEXTBEST_SLOTS": ""}, overrides={"slots": {}}
                                                             ).learner.vw_args()


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
    ("port: 9000\npropensity_floor: 1.5\n", ":2", "propensity_floor': must be within [0, 1]"),
    ("propensity_floor: -0.01\n", ":1", "must be within [0, 1]"),
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
