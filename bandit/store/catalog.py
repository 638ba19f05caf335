"""The offer catalog: loaded from a YAML/JSON file, kept in Redis, changed live.

Every change increments a catalog version in the same Redis transaction. Each process
keeps the compiled catalog in memory and checks the version on every decision, so a
change made through any process takes effect on the next decision everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec
import orjson
import redis.asyncio as aioredis
import yaml

from bandit.store.keys import Keys
from bandit.store.yamlfile import compose, line_of, value_of
from policies.offers import Locale, Offer, OfferError, compile_offer

# The call reasons a contact-center desktop lists: code → label per language
Reasons = dict[str, dict[str, str]]
_ReasonCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
_Label = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CatalogError(ValueError):
    """A catalog refused as a whole; the message names the file, line, offer and reason."""


@dataclass(frozen=True)
class Catalog:
    version: int
    offers: dict[str, Offer] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogFile:
    offers: list[Offer]
    reasons: Reasons | None = None   # None: the file has no ``reasons:``
    decline_reasons: Reasons | None = None   # why a caller says no, for the desktop's Decline (same shape)


# The sections a catalog file may have besides ``offers``: the desktop's labelled lists
LABELLED = ("reasons", "decline_reasons")


def read_catalog_file(path: Path, channels: Sequence[str] | None = None,
                      types: Mapping[str, str] | None = None) -> list[Offer]:
    """The offers of a catalog file (see ``read_catalog``)."""
    return read_catalog(path, channels, types).offers


def read_catalog(path: Path, channels: Sequence[str] | None = None,
                 types: Mapping[str, str] | None = None) -> CatalogFile:
    """Parse and validate every offer in a file (``channels``: the ones an offer may
    name; ``types``: the feature schema's, which its rules are checked against) and its
    call and decline reasons; any error refuses the whole file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from None
    items, labelled = _json_items(path, text) if path.suffix.lower() == ".json" else _yaml_items(path, text)
    offers: list[Offer] = []
    seen: dict[str, int] = {}
    for line, raw in items:
        try:
            offer = compile_offer(raw, channels, types)
        except OfferError as exc:
            raise CatalogError(f"{path}:{line}: {exc}") from None
        if offer.id in seen:
            raise CatalogError(f"{path}:{line}: offer {offer.id!r}: duplicate id (first at line {seen[offer.id]})")
        seen[offer.id] = line
        offers.append(offer)
    return CatalogFile(offers, labelled.get("reasons"), labelled.get("decline_reasons"))


def _yaml_items(path: Path, text: str) -> tuple[list[tuple[int, Any]], dict[str, Reasons]]:
    root = compose(path, text, CatalogError)
    labelled: dict[str, Reasons] = {}
    if isinstance(root, yaml.MappingNode):   # {offers: [...], reasons: {...}, decline_reasons: {...}} or a bare list
        entries = {k.value: v for k, v in root.value}
        if "offers" not in entries or set(entries) - {"offers", *LABELLED}:
            raise CatalogError(f"{path}:{line_of(root)}: expected a list of offers or 'offers:' (and 'reasons:', "
                               "'decline_reasons:')")
        for section in LABELLED:
            if section not in entries:
                continue
            node = entries[section]
            if not isinstance(node, yaml.MappingNode):
                raise CatalogError(f"{path}:{line_of(node)}: {section}: expected a mapping of reason code to labels")
            labelled[section] = dict(_reason(f"{path}:{line_of(key)}", key.value, value_of(labels), section)
                                     for key, labels in node.value)
        root = entries["offers"]
    if not isinstance(root, yaml.SequenceNode):
        line = line_of(root) if root is not None else 1
        raise CatalogError(f"{path}:{line}: expected a list of offers")
    return [(line_of(node), value_of(node)) for node in root.value], labelled


def _json_items(path: Path, text: str) -> tuple[list[tuple[int, Any]], dict[str, Reasons]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    labelled: dict[str, Reasons] = {}
    if isinstance(data, dict) and "offers" in data and set(data) <= {"offers", *LABELLED}:
        for section in LABELLED:
            if section not in data:
                continue
            if not isinstance(data[section], dict):
                raise CatalogError(f"{path}:1: {section}: expected an object of reason code to labels")
            labelled[section] = dict(_reason(f"{path}:{_key_line(text, code)}", code, labels, section)
                                     for code, labels in data[section].items())
        data = data["offers"]
    if not isinstance(data, list):
        raise CatalogError(f"{path}:1: expected a list of offers or {{\"offers\": [...]}}")
    return [(_json_line(text, i), item) for i, item in enumerate(data)], labelled


def _reason(where: str, code: Any, labels: Any, section: str = "reasons") -> tuple[str, dict[str, str]]:
    """One call (or decline) reason: a code the desktop sends and its label in one language
    or more (``{en: "Going abroad", ru: "Поездка за границу"}``); ``section`` names the list."""
    try:
        msgspec.convert(code, _ReasonCode)
    except msgspec.ValidationError:
        raise CatalogError(f"{where}: {section}: {code!r} is not a reason code (letters, digits, _ . : -, "
                           "at most 64)") from None
    if not isinstance(labels, dict) or not labels:
        raise CatalogError(f"{where}: {section}: {code}: expected its label per language, e.g. "
                           "{en: Going abroad, ru: Поездка за границу}")
    for tag, label in labels.items():
        try:
            msgspec.convert(tag, Locale)
        except msgspec.ValidationError:
            raise CatalogError(f"{where}: {section}: {code}: {tag!r} is not a language tag: use e.g. ru, en "
                               "or pt-BR") from None
        try:
            msgspec.convert(label, _Label)
        except msgspec.ValidationError:
            raise CatalogError(f"{where}: {section}: {code}.{tag}: expected a label of 1 to 200 characters") from None
    return code, dict(labels)


def _key_line(text: str, key: str) -> int:
    """Best effort: the line of a JSON object key."""
    pos = text.find(json.dumps(key) + ":")
    return text.count("\n", 0, pos) + 1 if pos >= 0 else 1


def _json_line(text: str, index: int) -> int:
    """Best effort: the line of the index-th top-level offer object."""
    depth, count = 0, -1
    for pos, char in enumerate(text):
        if char == "{":
            depth += 1
            if depth == 2 or (depth == 1 and text.lstrip().startswith("[")):
                count += 1
                if count == index:
                    return text.count("\n", 0, pos) + 1
        elif char == "}":
            depth -= 1
    return 1


class CatalogStore:
    """Reads and changes the catalog in Redis; caches the compiled version."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._cached = Catalog(version=-1)

    async def current(self, version: int | None = None) -> Catalog:
        """The catalog as of now: one GET when unchanged (none when the caller read the
        version already, in the same round trip as something else), a reload when changed."""
        if version is None:
            version = int(await self.redis.get(self.keys.catalog_version) or 0)
        if version != self._cached.version:
            self._cached = await self._load()
        return self._cached

    async def _load(self) -> Catalog:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.catalog_version)
            pipe.hgetall(self.keys.catalog)
            version, raw = await pipe.execute()
        offers = {}
        for offer_id, spec in raw.items():
            offers[offer_id.decode()] = compile_offer(orjson.loads(spec))
        return Catalog(int(version or 0), dict(sorted(offers.items())))

    async def seed(self, offers: list[Offer]) -> tuple[bool, int, int]:
        """Make these the catalog only if Redis has never held one (version 0, no offers):
        a catalog file is a seed, and live edits made through the API survive a restart
        with the same file. Returns (seeded, version, offers now held); atomic, so several
        processes started at once with the file seed it once."""
        wanted = {o.id: orjson.dumps(o.to_json(), option=orjson.OPT_SORT_KEYS) for o in offers}
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.keys.catalog, self.keys.catalog_version)
                    version = int(await pipe.get(self.keys.catalog_version) or 0)
                    held = int(await pipe.hlen(self.keys.catalog))
                    if version != 0 or held != 0:
                        return False, version, held
                    pipe.multi()
                    if wanted:
                        pipe.hset(self.keys.catalog, mapping=wanted)
                    pipe.incr(self.keys.catalog_version)
                    return True, (await pipe.execute())[-1], len(wanted)
                except aioredis.WatchError:
                    continue

    async def replace(self, offers: list[Offer]) -> int:
        """Make these the whole catalog; a no-op (same version) when nothing differs."""
        wanted = {o.id: orjson.dumps(o.to_json(), option=orjson.OPT_SORT_KEYS) for o in offers}
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.keys.catalog, self.keys.catalog_version)
                    stored = await pipe.hgetall(self.keys.catalog)
                    if {k.decode(): v for k, v in stored.items()} == wanted:
                        return int(await pipe.get(self.keys.catalog_version) or 0)
                    pipe.multi()
                    pipe.delete(self.keys.catalog)
                    if wanted:
                        pipe.hset(self.keys.catalog, mapping=wanted)
                    pipe.incr(self.keys.catalog_version)
                    return (await pipe.execute())[-1]
                except aioredis.WatchError:
                    continue

    async def change(self, offer_id: str, edit: Callable[[dict[str, Any] | None], Offer | None]) -> tuple[int, Offer | None]:
        """Read-modify-write one offer atomically (optimistic, retried on conflict).
        ``edit`` gets the stored spec (None if absent) and returns the new offer, or
        None to delete it; it may raise to refuse the change. Returns (version, offer)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.keys.catalog)
                    stored = await pipe.hget(self.keys.catalog, offer_id)
                    offer = edit(orjson.loads(stored) if stored is not None else None)
                    pipe.multi()
                    if offer is None:
                        pipe.hdel(self.keys.catalog, offer_id)
                    else:
                        pipe.hset(self.keys.catalog, offer_id, orjson.dumps(offer.to_json(), option=orjson.OPT_SORT_KEYS))
                    pipe.incr(self.keys.catalog_version)
                    return (await pipe.execute())[-1], offer
                except aioredis.WatchError:
                    continue

    async def reasons(self) -> Reasons:
        """The call reasons the catalog file gave (code → {language: label}), in its order."""
        raw = await self.redis.get(self.keys.catalog_reasons)
        return orjson.loads(raw) if raw else {}

    async def both_reasons(self) -> tuple[Reasons, Reasons]:
        """The call reasons and the decline reasons, in one round trip (the desktop wants both)."""
        raw = await self.redis.mget(self.keys.catalog_reasons, self.keys.catalog_decline_reasons)
        calls, declines = (orjson.loads(value) if value else {} for value in raw)
        return calls, declines

    async def set_reasons(self, reasons: Reasons) -> None:
        """The file is their only source (they are not edited live): every start with a
        file that has ``reasons:`` writes them."""
        await self.redis.set(self.keys.catalog_reasons, orjson.dumps(reasons))

    async def decline_reasons(self) -> Reasons:
        """Why a caller may say no, as the catalog file listed them (code → {language: label})."""
        raw = await self.redis.get(self.keys.catalog_decline_reasons)
        return orjson.loads(raw) if raw else {}

    async def set_decline_reasons(self, reasons: Reasons) -> None:
        """Like ``set_reasons``: written from the file at every start that has ``decline_reasons:``."""
        await self.redis.set(self.keys.catalog_decline_reasons, orjson.dumps(reasons))

    async def get_spec(self, offer_id: str) -> dict[str, Any] | None:
        spec = await self.redis.hget(self.keys.catalog, offer_id)
        return orjson.loads(spec) if spec is not None else None
