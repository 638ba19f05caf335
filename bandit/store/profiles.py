"""Subscriber profiles in Redis: one JSON document per subscriber, keyed by the
subscriber id's keyed hash, so a decision reads a profile in one round trip."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from bandit.store.keys import Keys


def with_accepted(profile: dict[str, Any] | None, accepted: bytes) -> dict[str, Any]:
    """The profile with the offers accepted since (``Keys.accepted``: ids separated by
    spaces, appended by the reward script) among its ``services``."""
    merged = dict(profile or {})
    services = merged.get("services")
    owned = list(services) if isinstance(services, (list, tuple, set, frozenset)) else []
    for offer_id in accepted.decode().split():
        if offer_id not in owned:
            owned.append(offer_id)
    merged["services"] = owned
    return merged


def merge(profile: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A top-level merge: a key set to null is removed."""
    merged = dict(profile)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


class ProfileStore:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    async def get(self, subscriber: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.profile(subscriber))
        return orjson.loads(raw) if raw is not None else None

    async def believed(self, subscriber: str) -> dict[str, Any] | None:
        """The profile as decisions see it: with the offers accepted since among its services."""
        raw, accepted = await self.redis.mget([self.keys.profile(subscriber), self.keys.accepted(subscriber)])
        profile = orjson.loads(raw) if raw is not None else None
        return with_accepted(profile, accepted) if accepted else profile

    async def put(self, subscriber: str, profile: dict[str, Any]) -> None:
        await self.redis.set(self.keys.profile(subscriber), orjson.dumps(profile))

    async def patch(self, subscriber: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge into an existing profile atomically; None when there is none."""
        key = self.keys.profile(subscriber)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        return None
                    profile = merge(orjson.loads(raw), patch)
                    pipe.multi()
                    pipe.set(key, orjson.dumps(profile))
                    await pipe.execute()
                    return profile
                except aioredis.WatchError:
                    continue

    async def delete(self, subscriber: str) -> bool:
        return bool(await self.redis.delete(self.keys.profile(subscriber)))
