"""One settings object for the service, read from defaults ← config file ← NEXTBEST_*
environment ← command line. A bad file fails at load with the file, line and reason."""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from bandit.http.auth import ApiKey, parse_api_keys
from bandit.store.yamlfile import compose, line_at, line_of, value_of
from policies.baselines import BASELINES
from policies.schema import FeatureSchema, SchemaError, parse_schema
from policies.exploration import ALGORITHMS, Exploration
from policies.learner import MAX_BITS, LearnerSettings, vw_args_problem


log = logging.getLogger("nextbest")


class ConfigError(ValueError):
    """A bad setting; the message names where it came from and why."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("nextbest-data")
    redis_url: str | None = None           # None → the embedded Redis in data_dir
    redis_command_timeout_seconds: float = 1.0   # every Redis call's deadline; past it: 503 redis_unavailable
    key_prefix: str = "nb"
    catalog: Path | None = None            # offer catalog file (YAML/JSON): seeds an empty catalog at start
    catalog_replace: bool = False          # the file replaces the catalog in Redis, live edits included
    # rewards
    reward_wait_seconds: float = 600.0
    default_reward: float = 0.0
    reward_aggregation: Literal["first", "sum"] = "first"
    # Every reward, and the reward a slot holds (a sum, a value-scaled outcome), stays within
    # these: a sum that overflowed to infinity would poison the learner, the log and analytics.
    reward_min: float = -1e9
    reward_max: float = 1e9
    outcomes: Mapping[str, float] = field(default_factory=lambda: {"accept": 1.0, "decline": 0.0})
    sale_outcomes: tuple[str, ...] = ("accept",)   # these outcomes make the offer an owned service
    accepted_offers_ttl_days: float = 30.0  # how long a sale counts as owned before the profile feed must say so
    # A settled event's hash answers retried and late rewards (duplicate, late) and GET /v1/events
    # this long after its join; then they are 404 unknown_event. Redis holds one small hash per event
    # settled in this window (join rate × this × ~0.3 KB): the bound of the store's memory.
    settled_retention_seconds: float = 172_800.0
    # decisions
    # The channels a decision may name: a channel is a feature and narrows the eligible offers,
    # so a misspelt one ("Web") must be refused, not decided for.
    channels: tuple[str, ...] = ("contact_center", "web", "search", "ussd")
    slots: Mapping[str, int] = field(default_factory=lambda: {"contact_center": 3})   # channel → offers shown; others 1
    default_k: int = 3                     # length of the deprecated `ranking` of a one-slot decision
    value_prior_examples: float = 100.0    # a cold model follows prior × value with weight n/(n + examples learned)
    # Every eligible offer in every slot is served with probability at least this / K (K: the
    # offers eligible in the slot): the log then supports any policy replay is asked about
    # (policies.exploration.apply_floor). 0: off.
    propensity_floor: float = 0.005
    max_offers: int = 200
    max_body_bytes: int = 1 << 20
    body_timeout_seconds: float = 10.0     # a request body must arrive within this (else 408)
    header_timeout_seconds: float = 10.0   # a request line and headers must arrive within this (else closed)
    max_connections: int = 1024            # per process; past it 503 too_many_connections (0: unbounded)
    subscriber_secret: str | None = None   # HMAC key for subscriber ids in logs; generated once if unset
    # arbitration
    # the agent desktop: numbers without a country code are read in this region (ISO code, e.g. RU) and
    # every number is normalised to E.164 (+79877398022); None: the desktop takes ids as typed
    phone_region: str | None = None
    # phone: every subscriber id the API takes (decide, the profile API, the bulk loader) is a phone
    # number, normalised to E.164 as the desktop does (a bad one: 400 / a skipped row); text: ids as sent
    subscriber_ids: Literal["text", "phone"] = "text"
    # the pages' language when the visitor has not chosen one (?lang, or the switch the browser
    # remembers): a language code, or browser: the first of the UI's languages in navigator.languages
    ui_language: Literal["en", "ru", "browser"] = "en"
    max_offers_per_subscriber_per_day: int | None = None   # contact rule across all offers
    control_share: float = 0.0             # share of subscribers served by the baseline policy
    control_policy: Literal["uniform", "priority"] = "uniform"
    reward_objective: Literal["acceptance", "value"] = "acceptance"   # value: accept → the offer's value
    # features
    features: FeatureSchema = field(default_factory=FeatureSchema.default)   # docs/features.md
    # learning
    learner: LearnerSettings = field(default_factory=LearnerSettings)
    run_learner: bool = True               # False: predict with checkpoints another process writes
    checkpoint_every_events: int = 1000
    checkpoint_every_seconds: float = 30.0
    keep_checkpoints: int = 5
    # background work
    reaper_interval_seconds: float = 0.2
    model_poll_seconds: float = 1.0
    busy_poll_us: float = 200.0            # serve: poll this long before the event loop sleeps (0: off)
    background_max_lag_seconds: float = 10.0   # learner/log/analytics use idle time unless this far behind
    lease_duty_failures: int = 3           # failed duty checks (one a second) before the leader lets go
    lease_backoff_seconds: float = 30.0    # a process that let go tries to lead again after this long
    # joined events not yet learned or logged past which decide, reward and activate answer 503 backlog_full
    # (bandit.http.backpressure); 0: unbounded
    backlog_limit: int = 1_000_000
    # decision log
    log_rotate_bytes: int = 64 << 20
    log_compress: bool = True
    # access
    api_keys: tuple[ApiKey, ...] = ()      # none: the API is open (local use only)
    insecure: bool = False                 # allow listening beyond loopback with no keys
    # embedded redis
    redis_appendfsync: Literal["always", "everysec", "no"] = "everysec"
    redis_restart_timeout_seconds: float = 30.0   # embedded Redis down (restarts failing) this long: /healthz 503
    access_log: bool = False
    log_format: Literal["text", "json"] = "text"   # json: one object per line (bandit.observe.logging_json)

    def __post_init__(self) -> None:
        # One model per deployment: VW's conditional bandit as soon as a channel shows several offers.
        multi = any(count > 1 for count in self.slots.values())
        if self.learner.slots != multi:
            object.__setattr__(self, "learner", dataclasses.replace(self.learner, slots=multi))

    def decision_settings(self) -> dict[str, Any]:
        """What, besides the VW arguments, shapes the PMF the service draws from and logs:
        recorded with each checkpoint so that replay compares candidates with the deployed
        policy as it really chose (``replay.deployed``)."""
        return {"propensity_floor": self.propensity_floor, "value_prior_examples": self.value_prior_examples,
                "control_share": self.control_share, "control_policy": self.control_policy,
                "slots": dict(self.slots)}

    def slots_for(self, channel: str) -> int:
        return self.slots.get(channel, 1)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "decisions"

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"


# Flat names accepted in the config file, environment (NEXTBEST_<NAME>) and CLI.
_LEARNER_KEYS = {"exploration", "epsilon", "softmax_lambda", "bag_size", "cover_size", "squarecb_gamma_scale",
                 "bits", "interactions", "learning_rate", "vw_args"}
_TOP_KEYS = {f.name for f in dataclasses.fields(Settings)} - {"learner"}
KNOWN_KEYS = _TOP_KEYS | _LEARNER_KEYS


def load_settings(config_file: Path | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    nodes: dict[str, yaml.Node] = {}   # the file's value nodes: a nested mistake's line
    if config_file is not None:
        for key, (value, line, node) in _read_config_file(config_file).items():
            raw[key] = value
            sources[key] = f"{config_file}:{line}"
            nodes[key] = node
    for key, value in _from_env(os.environ if env is None else env).items():
        raw[key] = value
        sources[key] = f"environment NEXTBEST_{key.upper()}"
        nodes.pop(key, None)
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
            sources[key] = f"option --{key.replace('_', '-')}"
            nodes.pop(key, None)
    return _build(raw, sources, config_file, nodes)


def _read_config_file(path: Path) -> dict[str, tuple[Any, int, yaml.Node]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    root = compose(path, text, ConfigError)
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}:{line_of(root)}: the config must be a mapping of settings")
    out: dict[str, tuple[Any, int, yaml.Node]] = {}
    for key_node, value_node in root.value:
        line = line_of(key_node)
        key = key_node.value
        if key not in KNOWN_KEYS:
            raise ConfigError(f"{path}:{line}: unknown setting {key!r}; known: {', '.join(sorted(KNOWN_KEYS))}")
        out[key] = (value_of(value_node), line, value_node)
    return out


# NEXTBEST_* variables that are not settings: the config file's path, the simulator's key,
# and click's per-command option variables (NEXTBEST_SERVE_HOST, NEXTBEST_FEATURES_LOAD_STRICT).
_ENV_NOT_SETTINGS = {"config", "api_key", "verbose"}
_ENV_COMMAND_PREFIXES = ("serve_", "learner_", "features_", "demo_", "simulate_", "replay_")


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for name, value in env.items():
        if name.startswith("NEXTBEST_"):
            key = name[len("NEXTBEST_"):].lower()
            if key in KNOWN_KEYS:
                found[key] = value
            elif key not in _ENV_NOT_SETTINGS and not key.startswith(_ENV_COMMAND_PREFIXES):
                log.warning("%s", unknown_env_message(name))
    return found


def unknown_env_message(name: str) -> str:
    """A misspelt variable would be ignored in silence, and the default used: say so,
    with the closest setting's variable."""
    key = name[len("NEXTBEST_"):].lower()
    close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.6)
    hint = f"; did you mean NEXTBEST_{close[0].upper()}?" if close else \
        " (see the settings in docs/api.md#configuration)"
    return f"environment variable {name} is not a nextbest setting and is ignored{hint}"


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _coerce(key: str, value: Any, kind: str) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
    elif kind in ("int", "float"):
        if isinstance(value, str):
            try:
                value = float(value) if kind == "float" else int(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if kind == "int" and float(value).is_integer():
                return int(value)
            if kind == "float":
                return float(value)
    elif kind == "str":
        if isinstance(value, (str, Path)):
            return str(value)
    raise ValueError(f"expected {kind}, got {value!r}")


_KINDS = {
    "host": "str", "port": "int", "data_dir": "str", "catalog": "str", "redis_url": "str", "key_prefix": "str",
    "reward_wait_seconds": "float", "default_reward": "float", "reward_aggregation": "str",
    "reward_min": "float", "reward_max": "float",
    "default_k": "int", "max_offers": "int", "max_body_bytes": "int", "body_timeout_seconds": "float",
    "header_timeout_seconds": "float", "max_connections": "int", "subscriber_secret": "str",
    "run_learner": "bool", "checkpoint_every_events": "int", "checkpoint_every_seconds": "float",
    "keep_checkpoints": "int", "reaper_interval_seconds": "float", "model_poll_seconds": "float",
    "busy_poll_us": "float", "background_max_lag_seconds": "float",
    "lease_duty_failures": "int", "lease_backoff_seconds": "float", "redis_command_timeout_seconds": "float",
    "backlog_limit": "int", "redis_restart_timeout_seconds": "float",
    "log_rotate_bytes": "int", "log_compress": "bool", "redis_appendfsync": "str",
    "access_log": "bool", "log_format": "str", "catalog_replace": "bool", "insecure": "bool", "max_offers_per_subscriber_per_day": "int", "control_share": "float", "control_policy": "str", "reward_objective": "str",
    "accepted_offers_ttl_days": "float", "settled_retention_seconds": "float", "value_prior_examples": "float",
    "propensity_floor": "float", "phone_region": "str", "subscriber_ids": "str",
    "ui_language": "str",
    "exploration": "str", "epsilon": "float", "softmax_lambda": "float", "bag_size": "int", "cover_size": "int",
    "squarecb_gamma_scale": "float", "bits": "int", "learning_rate": "float", "vw_args": "str",
}
_CHOICES = {"reward_aggregation": ("first", "sum"), "redis_appendfsync": ("always", "everysec", "no"),
            "control_policy": BASELINES, "reward_objective": ("acceptance", "value"),
            "exploration": ALGORITHMS, "log_format": ("text", "json"),
            "ui_language": ("en", "ru", "browser"), "subscriber_ids": ("text", "phone")}   # the languages of bandit/ui/static/i18n.js and words.py
_POSITIVE = {"max_offers_per_subscriber_per_day", "default_k", "max_offers", "max_body_bytes", "checkpoint_every_events",
             "checkpoint_every_seconds", "keep_checkpoints", "reaper_interval_seconds", "model_poll_seconds",
             "log_rotate_bytes", "reward_wait_seconds", "accepted_offers_ttl_days", "softmax_lambda",
             "squarecb_gamma_scale", "learning_rate", "bag_size", "cover_size",
             "lease_duty_failures", "lease_backoff_seconds", "redis_command_timeout_seconds",
             "redis_restart_timeout_seconds", "body_timeout_seconds", "header_timeout_seconds"}
# Closed ranges [low, high] (None: unbounded), with why where the bound is not obvious.
_RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "port": (1, 65535, "a TCP port"),
    "bits": (1, MAX_BITS, f"VW's weight table has 2^bits entries of 16 bytes or more: {MAX_BITS} bits is 64 GiB"),
    "epsilon": (0.0, 1.0, "a share of exploration"),
    "control_share": (0.0, 1.0, "a share of subscribers"),
    "value_prior_examples": (0.0, None, "0 turns the prior off"),
    "busy_poll_us": (0.0, 10_000, "microseconds; 0 turns it off"),
    "background_max_lag_seconds": (0.0, 86_400, "seconds"),
    "backlog_limit": (0, None, "events; 0: unbounded"),
    "max_connections": (0, None, "connections per process; 0: unbounded"),
    "settled_retention_seconds": (1.0, None, "seconds a settled event answers retried rewards"),
    "propensity_floor": (0.0, 1.0, "a share of each slot's probability, spread over its offers; 0: off"),
}
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _build(raw: Mapping[str, Any], sources: Mapping[str, str], config_file: Path | None = None,
           nodes: Mapping[str, yaml.Node] | None = None) -> Settings:
    """``nodes``: the value nodes of the settings that come from ``config_file``."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = sources.get(key, key)
        try:
            values[key] = _convert(key, value)
        except ValueError as exc:
            if isinstance(exc, SchemaError) and nodes and key in nodes:   # the nested mistake's own line
                where = f"{config_file}:{line_at(nodes[key], exc.path.partition('.')[2])}"
            raise ConfigError(f"{where}: setting {key!r}: {exc}") from exc
    learner_values = {k: values.pop(k) for k in list(values) if k in _LEARNER_KEYS}
    try:
        learner = _learner_settings(learner_values)
    except ValueError as exc:
        keys = ", ".join(sorted(learner_values)) or "learner defaults"
        raise ConfigError(f"{', '.join(sources.get(k, k) for k in learner_values) or 'defaults'}: {keys}: {exc}") from exc
    for key in ("data_dir", "catalog"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    if values.get("phone_region") is not None:
        import phonenumbers   # only a deployment that sets it pays for the metadata

        values["phone_region"] = values["phone_region"].strip().upper()
        if values["phone_region"] not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(f"{sources.get('phone_region', 'phone_region')}: setting 'phone_region': "
                              f"{values['phone_region']!r} is not a region code phonenumbers knows (RU, KZ, DE, …)")
    settings = Settings(learner=learner, **values)
    _check_vw_args(settings, sources)
    for warning in settings.features.unmarked_personal():
        log.warning("%s: %s", sources.get("features", "features"), warning)
    if settings.catalog_replace and settings.catalog is None:
        raise ConfigError(f"{sources.get('catalog_replace', 'catalog_replace')}: catalog_replace needs a catalog "
                          "file (--catalog FILE)")
    _check_reward_bounds(settings, sources)
    unknown_channels = [name for name in settings.slots if name not in settings.channels]
    if unknown_channels:
        raise ConfigError(f"{sources.get('slots', 'slots')}: slots: channel {unknown_channels[0]!r} is not one of the "
                          f"channels ({', '.join(settings.channels)})")
    unknown = [name for name in settings.sale_outcomes if name not in settings.outcomes]
    if unknown:
        raise ConfigError(f"{sources.get('sale_outcomes', 'sale_outcomes')}: sale outcome {unknown[0]!r} is not one "
                          f"of the outcomes ({', '.join(settings.outcomes)})")
    return settings


def _check_vw_args(settings: Settings, sources: Mapping[str, str]) -> None:
    """VW itself judges the command line the learner settings make (``vw_args`` above all),
    here at load rather than as a traceback when the learner starts."""
    problem = vw_args_problem(settings.learner)
    if problem is not None:
        named = [key for key in ("vw_args", *sorted(_LEARNER_KEYS - {"vw_args"}), "slots") if key in sources]
        where = sources[named[0]] if named else "learner defaults"
        raise ConfigError(f"{where}: setting {(named or ['vw_args'])[0]!r}: {problem}")


def _check_reward_bounds(settings: Settings, sources: Mapping[str, str]) -> None:
    """The default reward and every outcome must be rewards the bounds allow."""
    low, high = settings.reward_min, settings.reward_max
    where = sources.get("reward_min") or sources.get("reward_max") or "reward_min/reward_max"
    if not low < high:
        raise ConfigError(f"{where}: reward_min ({low!r}) must be below reward_max ({high!r})")
    named = {"default_reward": settings.default_reward,
             **{f"outcome {name!r}": reward for name, reward in settings.outcomes.items()}}
    for name, reward in named.items():
        if not low <= reward <= high:
            source = sources.get("default_reward" if name == "default_reward" else "outcomes", where)
            raise ConfigError(f"{source}: {name} ({reward!r}) is outside [reward_min, reward_max] = [{low!r}, {high!r}]")


def _convert(key: str, value: Any) -> Any:
    if key == "outcomes":
        if isinstance(value, str):   # from the environment: "accept=1,decline=0"
            pairs = [item.partition("=") for item in value.split(",") if item.strip()]
            value = {name.strip(): reward for name, sep, reward in pairs if sep} if all(p[1] for p in pairs) else None
        if not isinstance(value, Mapping) or not value:
            raise ValueError("expected a mapping of outcome name to reward (accept=1,decline=0 in the environment)")
        return {str(name): _coerce(key, reward, "float") for name, reward in value.items()}
    if key == "slots":
        if isinstance(value, str):   # from the environment: "contact_center=3,web=1"
            pairs = [item.partition("=") for item in value.split(",") if item.strip()]
            value = {name.strip(): count for name, sep, count in pairs if sep} if all(p[1] for p in pairs) else None
        if not isinstance(value, Mapping):
            raise ValueError("expected a mapping of channel to the number of offers shown (contact_center=3 in "
                             "the environment)")
        counts = {str(name): _coerce(key, count, "int") for name, count in value.items()}
        bad = [name for name, count in counts.items() if not 1 <= count <= 10]
        if bad:
            raise ValueError(f"channel {bad[0]!r}: the number of slots must be within [1, 10]")
        return counts
    if key == "channels":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and 1 <= len(i.strip()) <= 64
                                                                for i in items):
            raise ValueError("expected a non-empty list of channel names of 1 to 64 characters such as "
                             "[contact_center, web] (contact_center,web in the environment)")
        names = tuple(i.strip() for i in items)
        repeated = [name for name in names if names.count(name) > 1]
        if repeated:
            raise ValueError(f"channel {repeated[0]!r} is listed twice")
        return names
    if key == "sale_outcomes":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            raise ValueError("expected a list of outcome names such as [accept]")
        return tuple(i.strip() for i in items)
    if key == "api_keys":
        return parse_api_keys(value)
    if key == "features":
        if isinstance(value, str):   # from the environment: JSON
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected a JSON object: {exc.msg}") from None
        if not isinstance(value, Mapping):
            raise ValueError("expected a mapping (subscriber, context, strict)")
        return parse_schema(value, "features")
    if key == "interactions":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and len(i.strip()) >= 2 for i in items):
            raise ValueError("expected a list of namespace pairs such as [CO, SO]")
        return tuple(i.strip() for i in items)
    if key in ("redis_url", "subscriber_secret", "learning_rate", "catalog",
               "max_offers_per_subscriber_per_day") and value in (None, ""):
        return None
    if key == "ui_language" and isinstance(value, str):
        value = value.strip().lower()   # RU, " ru " are ru
    converted = _coerce(key, value, _KINDS[key])
    if key in _CHOICES and converted not in _CHOICES[key]:
        raise ValueError(f"expected one of {', '.join(_CHOICES[key])}, got {converted!r}")
    if key in _RANGES:
        low, high, why = _RANGES[key]
        if (low is not None and converted < low) or (high is not None and converted > high):
            bounds = f"[{low:g}, {high:g}]" if high is not None else f"{low:g} or more"
            raise ValueError(f"must be {'within ' if high is not None else ''}{bounds} ({why}), got {converted!r}")
    if key in _POSITIVE and converted <= 0:
        raise ValueError(f"must be positive, got {converted!r}")
    if key == "redis_url" and not converted.startswith(_REDIS_SCHEMES):
        raise ValueError(f"expected a URL starting with {', '.join(_REDIS_SCHEMES)}, got {converted!r}")
    if key == "key_prefix" and (not converted or any(c.isspace() for c in converted)):
        raise ValueError(f"expected a non-empty prefix without spaces, got {converted!r}")
    return converted


def _learner_settings(values: Mapping[str, Any]) -> LearnerSettings:
    exploration_fields = {f.name for f in dataclasses.fields(Exploration)}
    exploration_args = {("algorithm" if k == "exploration" else k): v for k, v in values.items()
                        if k == "exploration" or k in exploration_fields}
    learner_args: dict[str, Any] = {k: v for k, v in values.items() if k in ("bits", "interactions", "learning_rate")}
    if "vw_args" in values:
        learner_args["extra_args"] = values["vw_args"]
    return LearnerSettings(exploration=Exploration(**exploration_args), **learner_args)
