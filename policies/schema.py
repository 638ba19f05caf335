"""The feature schema: which subscriber and context features the model sees, in which
VW namespace and encoded how (docs/features.md).

A schema comes from the service config (the mapping under ``features:``) through
``parse_schema``, which validates it strictly and names the path of any mistake.
``FeatureSchema.encode`` turns a subscriber profile, a call's context and its channel
into the shared features ``{namespace: {token: value}}`` that ``vwtext.shared_line``
writes and the decision log stores.

Every name, value and text term goes through ``vwtext.escape``, so no input can break
VW's parser. Output order is fixed (docs/features.md, "Order"): namespaces Context,
Subscriber, then the others by first declaration; within a namespace the declared
features in declaration order (subscriber section first), then the undeclared profile
fields and context fields in input order, then ``channel``. A namespace with no
features is left out, except Context, which always holds the channel.

A field marked ``log: hash`` encodes the keyed hash of each value instead of the value,
and one marked ``log: drop`` is checked but encodes nothing (``policies.privacy``): the
encoding is what the model sees and what the log and the joined stream carry.

``FeatureSchema.default()`` declares nothing and is not strict: it encodes exactly as
the service did before schemas, ``{"Context": encode_features({**context, "channel":
channel})}`` plus ``{"Subscriber": encode_features(profile)}`` for a profile.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from policies.encoders import KeyedHash, feature_encoder
from policies.privacy import LOG_MODES, LogMode, unmarked_by_name
from policies.text import tokenize
from policies.vwtext import (ACTION_NAMESPACE, CONTEXT_NAMESPACE, SUBSCRIBER_NAMESPACE, Encoded, FeatureError,
                             encode_features, escape)

__all__ = ["TRANSFORMS", "TYPES", "FeatureSchema", "FeatureSpec", "SchemaError", "parse_schema", "tokenize"]

FeatureType = Literal["categorical", "numeric", "set", "text"]
TYPES: tuple[str, ...] = ("categorical", "numeric", "set", "text")
TRANSFORMS: tuple[str, ...] = ("log", "bucket")
SOURCES = ("subscriber", "context")
CHANNEL = "channel"
DEFAULT_NAMESPACES = {"subscriber": SUBSCRIBER_NAMESPACE, "context": CONTEXT_NAMESPACE}

_SCHEMA_KEYS = ("strict", "subscriber", "context")
_FEATURE_KEYS = ("type", "namespace", "transform", "buckets", "weight", "log")

# VW keys interactions on a namespace's first byte: an ASCII letter can be named in
# --interactions; no whitespace (ends the namespace), "|" (starts one), ":" (weight).
_NAMESPACE = re.compile(r"[A-Za-z][^\s|:\x00-\x1f\x7f]*")


class SchemaError(ValueError):
    """A bad schema; the message starts with the path of the mistake (``path``), so a
    config file can point at its line."""

    @property
    def path(self) -> str:
        return str(self).partition(": ")[0]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    source: Literal["subscriber", "context"]
    type: FeatureType
    namespace: str
    transform: Literal["log", "bucket"] | None = None
    buckets: tuple[float, ...] = ()
    weight: float = 1.0
    log: LogMode | None = None   # policies.privacy; None: not marked, written in clear


@dataclass(frozen=True)
class FeatureSchema:
    subscriber: Mapping[str, FeatureSpec] = field(default_factory=lambda: MappingProxyType({}))
    context: Mapping[str, FeatureSpec] = field(default_factory=lambda: MappingProxyType({}))
    strict: bool = False

    def __post_init__(self) -> None:
        for source in SOURCES:
            object.__setattr__(self, source, MappingProxyType(dict(getattr(self, source))))
        _check(self, "schema")
        declared = [*self.subscriber.values(), *self.context.values()]
        order = [CONTEXT_NAMESPACE, SUBSCRIBER_NAMESPACE]
        order += [ns for ns in dict.fromkeys(spec.namespace for spec in declared) if ns not in order]
        object.__setattr__(self, "_order", tuple(order))
        object.__setattr__(self, "_encoders", {
            source: {name: (spec.namespace, feature_encoder(spec)) for name, spec in getattr(self, source).items()}
            for source in SOURCES})
        object.__setattr__(self, "_hashes", any(spec.log == "hash" for spec in declared))
        # A field that arrives undeclared but whose name is declared for the other
        # source in the namespace it would fall into: its tokens would collide.
        object.__setattr__(self, "_taken", {
            source: {spec.name: spec for spec in getattr(self, other).values()
                     if spec.namespace == DEFAULT_NAMESPACES[source]}
            for source, other in (("subscriber", "context"), ("context", "subscriber"))})

    def types(self) -> dict[str, str]:
        """Every declared feature's type, by the name rules read it under (the context's
        override the profile's, as in a decision's rule environment)."""
        return {name: spec.type for source in SOURCES for name, spec in getattr(self, source).items()}

    @classmethod
    def default(cls) -> FeatureSchema:
        """No declared features, not strict: the encoding the service had before schemas."""
        return cls()

    def namespaces(self) -> list[str]:
        """Every namespace ``encode`` can emit, in output order."""
        return list(self._order)  # type: ignore[attr-defined]

    def unmarked_personal(self, where: str = "features") -> list[str]:
        """Warnings for declared fields named like phone numbers or e-mails with no ``log:``."""
        return unmarked_by_name((f"{where}.{spec.source}.{spec.name}", spec.name, spec.log)
                                for source in SOURCES for spec in getattr(self, source).values())

    def encode(self, profile: Mapping[str, Any] | None, context: Mapping[str, Any],
               channel: str, keyed_hash: KeyedHash | None = None) -> dict[str, dict[str, float]]:
        """(profile, context, channel) → ``{namespace: {token: value}}``. Raises
        ``FeatureError`` naming the field for a value its type cannot take, an unknown
        context field of a strict schema, or a context field named ``channel``.
        ``keyed_hash`` (the deployment's subscriber hasher) is required when a field is
        marked ``log: hash``: there is no unkeyed fallback that could leak a value."""
        if keyed_hash is None and self._hashes:  # type: ignore[attr-defined]
            raise ValueError("the feature schema has 'log: hash' fields: encode needs the keyed hash")
        if CHANNEL in context:
            raise FeatureError(CHANNEL, "reserved: the top-level 'channel' field gives the channel")
        if not isinstance(channel, str):
            raise FeatureError(CHANNEL, f"expected a string, got {type(channel).__name__}")
        if not (self.subscriber or self.context or self.strict):   # the default schema: nothing to look up
            shared = {CONTEXT_NAMESPACE: encode_features(context)}
            shared[CONTEXT_NAMESPACE][f"{CHANNEL}={escape(channel)}"] = 1
            if profile and (subscriber := encode_features(profile)):
                shared[SUBSCRIBER_NAMESPACE] = subscriber
            return shared
        out: dict[str, Encoded] = {ns: {} for ns in self._order}  # type: ignore[attr-defined]
        profile = profile or {}
        encoders = self._encoders  # type: ignore[attr-defined]
        for source, values in (("subscriber", profile), ("context", context)):
            for name, (namespace, encode) in encoders[source].items():
                value = values.get(name)
                if value is not None:
                    encode(value, out[namespace], keyed_hash)
        for source, values in (("subscriber", profile), ("context", context)):
            known, taken = encoders[source], self._taken[source]  # type: ignore[attr-defined]
            undeclared = {name: value for name, value in values.items() if name not in known}
            if not undeclared:
                continue
            if source == "context" and self.strict:
                name = next(iter(undeclared))
                raise FeatureError(name, f"unknown context feature {name!r} (strict schema)")
            for name, value in undeclared.items():
                if name in taken and value is not None:
                    spec = taken[name]
                    raise FeatureError(name, f"the schema declares {name!r} as a {spec.source} feature in namespace "
                                             f"{spec.namespace}; it cannot also come from the {source}")
            out[DEFAULT_NAMESPACES[source]].update(encode_features(undeclared))
        out[CONTEXT_NAMESPACE][f"{CHANNEL}={escape(channel)}"] = 1
        return {ns: tokens for ns, tokens in out.items() if tokens}


# --------------------------------------------------------------------------- parsing

def parse_schema(raw: Mapping[str, Any] | None, where: str = "schema") -> FeatureSchema:
    """The mapping under ``features:`` → a ``FeatureSchema``; ``SchemaError`` names the
    path (``where`` is its root) of the first mistake."""
    if raw is None:
        return FeatureSchema.default()
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: expected a mapping with {', '.join(_SCHEMA_KEYS)}, got {_kind(raw)}")
    _no_unknown_keys(raw, _SCHEMA_KEYS, where)
    strict = raw.get("strict", False)
    if not isinstance(strict, bool):
        raise SchemaError(f"{where}.strict: expected true or false, got {_kind(strict)}")
    sections: dict[str, dict[str, FeatureSpec]] = {}
    for source in SOURCES:
        section = raw.get(source)
        path = f"{where}.{source}"
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise SchemaError(f"{path}: expected a mapping of feature name to feature, got {_kind(section)}")
        sections[source] = {}
        for name, spec in section.items():
            if not isinstance(name, str) or not name:
                raise SchemaError(f"{path}.{name}: feature names must be non-empty strings "
                                  f"(quote names such as yes, no, on, off or numbers in YAML)")
            sections[source][name] = _parse_feature(name, source, spec, f"{path}.{name}")
    _check_sections(sections, strict, where)
    return FeatureSchema(sections["subscriber"], sections["context"], strict)


def _parse_feature(name: str, source: str, raw: Any, path: str) -> FeatureSpec:
    if isinstance(raw, str):   # shorthand: `tariff: categorical`
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{path}: expected a mapping with {', '.join(_FEATURE_KEYS)} (or a type name), "
                          f"got {_kind(raw)}")
    _no_unknown_keys(raw, _FEATURE_KEYS, path)
    if "type" not in raw:
        raise SchemaError(f"{path}.type: required (expected {', '.join(TYPES)})")
    type_ = raw["type"]
    if type_ not in TYPES:
        raise SchemaError(f"{path}.type: unknown type {type_!r} (expected {', '.join(TYPES)})")
    namespace = raw.get("namespace", DEFAULT_NAMESPACES[source])
    _check_namespace(namespace, f"{path}.namespace")
    transform = raw.get("transform")
    if transform is not None:
        if type_ != "numeric":
            raise SchemaError(f"{path}.transform: only numeric features take a transform ({name!r} is {type_})")
        if transform not in TRANSFORMS:
            raise SchemaError(f"{path}.transform: unknown transform {transform!r} (expected {', '.join(TRANSFORMS)})")
    buckets: tuple[float, ...] = ()
    if "buckets" in raw:
        if transform != "bucket":
            raise SchemaError(f"{path}.buckets: buckets need 'transform: bucket'")
        buckets = _parse_buckets(raw["buckets"], f"{path}.buckets")
    elif transform == "bucket":
        raise SchemaError(f"{path}.buckets: required with 'transform: bucket' (a list of increasing edges)")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
        raise SchemaError(f"{path}.weight: expected a finite number > 0, got {weight!r}")
    log = raw.get("log")
    if log is not None:
        _check_log(log, type_, f"{path}.log")
    return FeatureSpec(name, source, type_, namespace, transform, buckets, float(weight), log)  # type: ignore[arg-type]


def _check_log(log: Any, type_: str, path: str) -> None:
    if log not in LOG_MODES:
        raise SchemaError(f"{path}: expected one of {', '.join(LOG_MODES)}, got {log!r}")
    if log == "hash" and type_ == "numeric":
        raise SchemaError(f"{path}: a numeric feature cannot be hashed (a hash is no number): declare it "
                          f"categorical with 'log: hash', or use 'log: drop'")


def _parse_buckets(raw: Any, path: str) -> tuple[float, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise SchemaError(f"{path}: expected a non-empty list of increasing numbers, got {_kind(raw)}")
    edges: list[float] = []
    for index, edge in enumerate(raw):
        if isinstance(edge, bool) or not isinstance(edge, (int, float)) or not math.isfinite(edge):
            raise SchemaError(f"{path}[{index}]: expected a finite number, got {edge!r}")
        if edges and edge <= edges[-1]:
            raise SchemaError(f"{path}[{index}]: edges must be strictly increasing ({edge!r} after {edges[-1]!r})")
        edges.append(edge)
    return tuple(edges)


def _check_namespace(namespace: Any, path: str) -> None:
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise SchemaError(f"{path}: a namespace is a name starting with an ASCII letter, without spaces, "
                          f"'|' or ':'; got {namespace!r}")
    if namespace[0] == ACTION_NAMESPACE[0]:
        raise SchemaError(f"{path}: {namespace!r} starts with {ACTION_NAMESPACE[0]!r}, the letter of the offer "
                          f"namespace {ACTION_NAMESPACE!r}: VW would merge their features")


def _check(schema: FeatureSchema, where: str) -> None:
    """What a directly built schema must satisfy too."""
    sections = {source: dict(getattr(schema, source)) for source in SOURCES}
    for source, specs in sections.items():
        for name, spec in specs.items():
            path = f"{where}.{source}.{name}"
            if spec.name != name or spec.source != source:
                raise SchemaError(f"{path}: the spec says {spec.source}.{spec.name}")
            if spec.type not in TYPES:
                raise SchemaError(f"{path}.type: unknown type {spec.type!r} (expected {', '.join(TYPES)})")
            _check_namespace(spec.namespace, f"{path}.namespace")
            if spec.transform is not None and (spec.type != "numeric" or spec.transform not in TRANSFORMS):
                raise SchemaError(f"{path}.transform: {spec.transform!r} is not a transform of a {spec.type} feature")
            if (spec.transform == "bucket") != bool(spec.buckets):
                raise SchemaError(f"{path}.buckets: buckets go with 'transform: bucket', and only with it")
            if any(b <= a for a, b in itertools.pairwise(spec.buckets)):
                raise SchemaError(f"{path}.buckets: edges must be strictly increasing")
            if not (math.isfinite(spec.weight) and spec.weight > 0):
                raise SchemaError(f"{path}.weight: expected a finite number > 0, got {spec.weight!r}")
            if spec.log is not None:
                _check_log(spec.log, spec.type, f"{path}.log")
    _check_sections(sections, schema.strict, where)


def _check_sections(sections: Mapping[str, Mapping[str, FeatureSpec]], strict: Any, where: str) -> None:
    if not isinstance(strict, bool):
        raise SchemaError(f"{where}.strict: expected true or false, got {_kind(strict)}")
    seen: dict[tuple[str, str], str] = {}
    for source in SOURCES:
        for name, spec in sections[source].items():
            path = f"{where}.{source}.{name}"
            if name == CHANNEL and spec.namespace == CONTEXT_NAMESPACE:
                raise SchemaError(f"{path}: 'channel' is reserved in namespace {CONTEXT_NAMESPACE} "
                                  f"(the channel goes there as channel=<value>)")
            if source == "context" and name == CHANNEL:
                raise SchemaError(f"{path}: 'channel' is not a context field: the request's channel is always "
                                  f"encoded as channel=<value> in {CONTEXT_NAMESPACE}")
            key = (spec.namespace, name)
            if key in seen:
                raise SchemaError(f"{path}: {seen[key]} already puts a feature named {name!r} in namespace "
                                  f"{spec.namespace}")
            seen[key] = f"{where}.{source}.{name}"


def _no_unknown_keys(raw: Mapping[str, Any], known: tuple[str, ...], path: str) -> None:
    for key in raw:
        if key not in known:
            raise SchemaError(f"{path}.{key}: unknown key {key!r} (expected {', '.join(known)})")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
