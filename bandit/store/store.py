"""The Redis store: pending decisions, the reward join, the joined-event stream,
counters and the model checkpoint. Every write that several processes may race on
is one Lua script (see ``bandit.store.lua``)."""

from __future__ import annotations

import functools
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis

from bandit.store import lua
from bandit.store.batching import Script, ScriptBatcher
from bandit.store.keys import Keys
from bandit.store.limits import Limit, ServedLimits

RewardStatus = Literal["joined", "stored", "accumulated", "duplicate", "late", "unknown", "not_shown", "no_slot",
                       "reused", "out_of_range"]


# Decisions joined per EXPIRE_DUE call. Each costs Redis ~18-25 µs, and Redis runs
# nothing else during a script: 500 per call froze every client for 10-16 ms whenever
# decisions were expiring (most decisions never get an answer); 64 keeps it at 1-2 ms.
EXPIRE_BATCH = 64


@dataclass(frozen=True)
class JoinedEvent:
    """One entry of the joined stream: the decision record plus how it was settled."""

    stream_id: str
    event_id: str
    payload: dict[str, Any] | bytes   # the decision record, or its JSON until first read
    reward: float
    kind: str          # joined | defaulted | dropped
    rewards_counted: int
    joined_ms: int
    decode: Callable[[bytes], Any] = field(default=orjson.loads, repr=False, compare=False)
    slot_rewards: tuple[float, ...] = ()   # each slot's reward (the default where none came)
    slot_counts: tuple[int, ...] = ()      # rewards counted per slot

    @functools.cached_property
    def record(self) -> Any:
        """Decoded on first use: a batch is read at once, but decoded one paced slice at a time."""
        return self.decode(self.payload) if isinstance(self.payload, bytes) else self.payload

    @property
    def learnable(self) -> bool:
        return self.kind != "dropped"


@dataclass(frozen=True)
class Checkpoint:
    blob: bytes
    version: int
    offset: str        # last stream id learned into this model
    learned: int
    saved_ms: int
    args: str
    settings: Mapping[str, Any] = field(default_factory=dict)   # Settings.decision_settings() (floor, prior, control)


class EventIdReused(Exception):
    """A client event id already names a pending decision made for another request."""


class LimitReached(Exception):
    """A shown offer hit a cap or contact limit between screening and storing."""

    def __init__(self, limit: Limit, slot: int) -> None:
        super().__init__(limit.detail)
        self.limit = limit
        self.slot = slot   # the slot (1-based) whose offer reached it


@dataclass(frozen=True)
class ShownOffer:
    """What the create script needs of an offer shown in a slot."""

    id: str
    value: float = 1.0
    limits: ServedLimits | None = None


_NO_LIMITS = ServedLimits([], "", "", 0)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Store:
    def __init__(self, client: aioredis.Redis, keys: Keys, retention_seconds: float = 2 * 86400,
                 command_timeout: float = 1.0, settled_retention_seconds: float | None = None) -> None:
        """``retention_seconds``: how long past its deadline a pending event's hash outlives a
        reaper that is down (it must still be there to be joined); ``settled_retention_seconds``
        (the setting; default: the same): how long a settled event's hash, and its reward ids,
        answer retried rewards after the join."""
        self.redis = client
        self.keys = keys
        self.command_timeout = command_timeout   # every call's deadline (redis_command_timeout_seconds)
        self._retention_ms = int(retention_seconds * 1000)
        self._settled_ms = int((retention_seconds if settled_retention_seconds is None
                                else settled_retention_seconds) * 1000)
        self._batcher = ScriptBatcher(client, command_timeout)
        # a blocking read must come back well within the client's socket timeout (the deadline)
        self._block_cap_ms = max(1, int(command_timeout * 500))
        self._create = Script(lua.CREATE)
        self._reward = Script(lua.REWARD)
        self._activate = Script(lua.ACTIVATE)
        self._expire_due = Script(lua.EXPIRE_DUE)
        self._lease = Script(lua.LEASE)
        self._steal = Script(lua.STEAL)
        self._release = Script(lua.RELEASE)
        self._log_commit = Script(lua.LOG_COMMIT)

    async def _run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        return await self._batcher.call(script, keys, args)

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        """Several values in one round trip, batched with concurrent decisions."""
        return await self._batcher.command("MGET", *keys)

    async def close(self) -> None:
        await self._batcher.close()

    # -- decisions and rewards -------------------------------------------------------
    async def create_decision(self, event_id: str, record: bytes, wait_ms: int, defer: bool,
                              shown: Sequence[ShownOffer] = (ShownOffer(""),),
                              accepted_key: str | None = None, digest: str = "") -> bytes | None:
        """Store a pending decision, checking and counting every shown offer's limits in
        the same step. Returns None when new, else the record already stored under this
        event id (a retried request with a client event id); raises LimitReached when a
        shown offer reached a limit since it was screened, and EventIdReused when the
        pending decision was made for a request with another ``digest``."""
        keys = [self.keys.event(event_id), self.keys.deadlines, self.keys.stats]
        args: list[Any] = [event_id, record, wait_ms, "1" if defer else "0", self._retention_ms, len(shown),
                           accepted_key or "", digest]
        counters: list[tuple[int, Limit]] = []
        for slot, offer in enumerate(shown, 1):
            served = offer.limits or _NO_LIMITS
            args += [offer.id, repr(float(offer.value)), served.acceptance_pairs, served.declined_key,
                     served.declined_ttl]
            counters += [(slot, limit) for limit in served.limits]
        for _, limit in counters:
            keys.append(limit.key)
            args += [limit.limit, limit.ttl, limit.also]
        status, detail = await self._run(self._create, keys, args)
        if status == 1:
            return None
        if status == 2:
            slot, limit = counters[int(detail) - 1]
            raise LimitReached(limit, slot)
        if status == 3:
            raise EventIdReused(event_id)
        return detail or b"{}"

    async def post_reward(self, event_id: str, reward: float, mode: str, reward_id: str | None,
                          scale_by_value: bool = False, offer_id: str | None = None, slot: int | None = None,
                          sale: bool = False, accepted_ttl_seconds: int = 0,
                          digest: str = "",
                          bounds: tuple[float, float] = (-1e9, 1e9)) -> tuple[RewardStatus, Any]:
        """Join (or accumulate) the reward of one slot: the one showing ``offer_id``, or
        ``slot``, or slot 1. ``scale_by_value`` multiplies it by that offer's value (an
        outcome under the value objective); ``sale`` adds the offer to the subscriber's
        accepted offers (``Keys.accepted``) for ``accepted_ttl_seconds``. ``digest`` (of the
        request) is kept with ``reward_id``: the same id with another digest is ``reused``.
        A slot never holds a reward outside ``bounds`` (a scaled or summed one: ``out_of_range``)."""
        keys = [self.keys.event(event_id), self.keys.deadlines, self.keys.joined, self.keys.stats,
                self.keys.reward_ids(event_id)]
        status, detail = await self._run(
            self._reward, keys,
            [event_id, repr(float(reward)), mode, reward_id or "", self._settled_ms, "1" if scale_by_value else "0",
             offer_id or "", "" if slot is None else slot, "1" if sale else "0", max(1, accepted_ttl_seconds), digest,
             repr(float(bounds[0])), repr(float(bounds[1]))])
        return status.decode(), detail.decode() if isinstance(detail, bytes) else detail

    async def activate(self, event_id: str, mode: str) -> str:
        (status,) = await self._run(
            self._activate, [self.keys.event(event_id), self.keys.deadlines, self.keys.joined, self.keys.stats],
            [event_id, mode, self._settled_ms])
        return status.decode()

    async def expire_due(self, default_reward: float, limit: int = EXPIRE_BATCH) -> int:
        """Join up to ``limit`` decisions past their deadline with the default reward (or
        what they accumulated); safe to run from any number of processes at once."""
        return int(await self._run(
            self._expire_due, [self.keys.deadlines, self.keys.joined, self.keys.stats],
            [self.keys.event(""), repr(float(default_reward)), limit, self._settled_ms]))

    async def event_state(self, event_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(self.keys.event(event_id))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items() if k != b"rec"}

    # -- the joined stream -----------------------------------------------------------
    async def ensure_group(self, group: str, start_id: str = "0") -> None:
        try:
            await self.redis.xgroup_create(self.keys.joined, group, id=start_id, mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def rewind_group(self, group: str, after_id: str) -> None:
        """Make the group redeliver everything after ``after_id`` (what a checkpoint lacks)."""
        await self.ensure_group(group, after_id)
        await self.redis.xgroup_setid(self.keys.joined, group, after_id)

    async def read_group(self, group: str, consumer: str, count: int, block_ms: int | None,
                         decode: Callable[[bytes], dict[str, Any]] = orjson.loads,
                         start: str = ">") -> list[JoinedEvent]:
        """``decode``: how to read each decision record (a reader that needs a few fields
        can skip the features, the bulk of a record). ``start`` ``">"``: entries never
        delivered to the group; a stream id (``"0"``): this consumer's own delivered but
        unacknowledged entries after it, e.g. a batch whose processing failed."""
        reply = await self.redis.xreadgroup(group, consumer, {self.keys.joined: start}, count=count,
                                            block=min(block_ms, self._block_cap_ms) if start == ">" and block_ms
                                            else None)
        if not reply:
            return []
        return [_joined_event(sid, fields, decode) for sid, fields in reply[0][1] if fields]

    async def ack(self, group: str, stream_ids: list[str]) -> None:
        if stream_ids:
            await self.redis.xack(self.keys.joined, group, *stream_ids)

    async def trim_stream(self, min_id: str) -> None:
        """Drop stream entries every reader has consumed. Approximate (``~``): Redis frees
        whole nodes only, so it may keep a few consumed entries but never drops a needed
        one, and it never stalls on an entry-by-entry trim (every process waits for it)."""
        await self.redis.xtrim(self.keys.joined, minid=min_id, approximate=True)

    # -- counters --------------------------------------------------------------------
    async def stats(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.stats)
        return {k.decode(): int(float(v)) for k, v in raw.items()}

    async def incr(self, field: str, amount: int = 1) -> None:
        await self.redis.hincrby(self.keys.stats, field, amount)

    async def pending_count(self) -> int:
        return int(await self.redis.zcard(self.keys.deadlines))

    async def stream_length(self) -> int:
        return int(await self.redis.xlen(self.keys.joined))

    # -- model checkpoints -----------------------------------------------------------
    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.redis.hset(self.keys.model, mapping={
            "blob": checkpoint.blob, "version": checkpoint.version, "offset": checkpoint.offset,
            "learned": checkpoint.learned, "saved_ms": checkpoint.saved_ms, "args": checkpoint.args,
            "settings": orjson.dumps(dict(checkpoint.settings)),
        })

    async def checkpoint_version(self) -> int:
        version = await self.redis.hget(self.keys.model, "version")
        return int(version) if version is not None else 0

    async def load_checkpoint(self) -> Checkpoint | None:
        raw = await self.redis.hgetall(self.keys.model)
        if not raw or b"blob" not in raw:
            return None
        return Checkpoint(
            blob=raw[b"blob"], version=int(raw[b"version"]), offset=raw[b"offset"].decode(),
            learned=int(raw[b"learned"]), saved_ms=int(raw[b"saved_ms"]), args=raw[b"args"].decode(),
            settings=orjson.loads(raw[b"settings"]) if raw.get(b"settings") else {},   # older checkpoints: none
        )

    async def checkpoint_meta(self) -> dict[str, str]:
        fields = ("version", "offset", "learned", "saved_ms", "args")
        values = await self.redis.hmget(self.keys.model, fields)
        return {f: v.decode() for f, v in zip(fields, values) if v is not None}

    # -- the worker lease (one learner and log writer per deployment) ----------------
    async def take_lease(self, owner: str, ttl_ms: int) -> str:
        holder = await self._run(self._lease, [self.keys.worker_lock], [owner, ttl_ms])
        return holder.decode()

    async def steal_lease(self, dead_holder: str, owner: str, ttl_ms: int) -> bool:
        return bool(await self._run(self._steal, [self.keys.worker_lock], [dead_holder, owner, ttl_ms]))

    async def release_lease(self, owner: str) -> None:
        await self._run(self._release, [self.keys.worker_lock], [owner])

    async def lease_holder(self) -> tuple[str, int] | None:
        """Who holds the learner lease and for how many more milliseconds; None: nobody."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.worker_lock)
        pipe.pttl(self.keys.worker_lock)
        holder, ttl_ms = await pipe.execute()
        return (holder.decode(), max(0, int(ttl_ms))) if holder is not None else None

    # -- shared settings -------------------------------------------------------------
    async def shared_secret(self, configured: str | None) -> bytes:
        """The HMAC key for subscriber ids: the configured one, or one generated once
        and shared through Redis so every process hashes the same way."""
        if configured:
            return configured.encode()
        await self.redis.set(self.keys.secret, secrets.token_hex(32), nx=True)
        return await self.redis.get(self.keys.secret)

    async def commit_log(self, group: str, offset: str, lines: int, ack: Sequence[str] = ()) -> bool:
        """Move ``nb:log:offset`` to ``offset`` and add ``lines`` to ``events_logged`` in
        one step (nothing if the offset is not ahead), and ack ``ack`` in ``group``.
        Returns whether the offset moved."""
        moved = await self._run(self._log_commit, [self.keys.log_offset, self.keys.stats, self.keys.joined],
                                [offset, lines, group, *ack])
        return bool(moved)

    async def log_offset(self) -> str | None:
        value = await self.redis.get(self.keys.log_offset)
        return value.decode() if value is not None else None

    async def analytics_offset(self) -> str | None:
        value = await self.redis.get(self.keys.agg_offset)
        return value.decode() if value is not None else None


def _joined_event(stream_id: bytes | str, fields: dict[bytes, bytes],
                  decode: Callable[[bytes], Any] = orjson.loads) -> JoinedEvent:
    return JoinedEvent(
        stream_id=stream_id.decode() if isinstance(stream_id, bytes) else stream_id,
        event_id=fields[b"id"].decode(),
        payload=fields[b"rec"],
        reward=float(fields[b"reward"]),
        kind=fields[b"kind"].decode(),
        rewards_counted=int(fields[b"n"]),
        joined_ms=int(fields[b"t"]),
        decode=decode,
        slot_rewards=tuple(float(r) for r in fields[b"sr"].split()) if b"sr" in fields else (float(fields[b"reward"]),),
        slot_counts=tuple(int(n) for n in fields[b"sn"].split()) if b"sn" in fields else (int(fields[b"n"]),),
    )


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """Orders stream ids as Redis does (milliseconds, then sequence), not as strings."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
