"""``nextbest status``: what an operator asks first when decisions or rewards are refused
or the log stops growing — who leads, how far each consumer of the joined stream is
behind, and which model is served — read from the configured Redis alone, so it answers
whichever process (or none) is running."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from bandit.config import Settings
from bandit.store.backlog import COUNT_CAP, read_backlog
from bandit.store.embedded import EmbeddedRedis
from bandit.store.keys import Keys
from bandit.store.store import Store


class StatusError(RuntimeError):
    """Redis cannot be read; the message says which and why."""


def redis_url(settings: Settings) -> str:
    """The configured Redis, or the data directory's embedded one, which status never
    starts (it reads a deployment, it does not run one)."""
    if settings.redis_url is not None:
        return settings.redis_url
    if not settings.data_dir.is_dir():
        raise StatusError(f"no data directory {settings.data_dir}: pass the service's --data-dir, or --redis-url")
    return EmbeddedRedis(settings.data_dir).url


async def read_status(settings: Settings) -> dict[str, Any]:
    url = redis_url(settings)
    deadline = settings.redis_command_timeout_seconds
    client = aioredis.Redis.from_url(url, socket_timeout=deadline, socket_connect_timeout=deadline)
    keys = Keys(settings.key_prefix)
    try:
        store = Store(client, keys, command_timeout=deadline)
        lease = await store.lease_holder()
        checkpoint = await store.checkpoint_meta()
        pending = await store.pending_count()
        backlog = await read_backlog(client, keys, COUNT_CAP)
    except (aioredis.RedisError, OSError) as exc:
        where = "the embedded Redis (is `nextbest serve` running on this data dir?)" if settings.redis_url is None \
            else "Redis"
        raise StatusError(f"cannot read {where}: {exc}") from None
    finally:
        await client.aclose()
    saved_ms = int(checkpoint.get("saved_ms", 0))
    return {
        "leader": {"identity": lease[0], "lease_expires_in_seconds": lease[1] / 1000} if lease else None,
        "model": {"checkpoint_version": int(checkpoint.get("version", 0)),
                  "examples_learned": int(checkpoint.get("learned", 0)),
                  "stream_offset": checkpoint.get("offset"),
                  "age_seconds": round(time.time() - saved_ms / 1000, 3) if saved_ms else None},
        "pending_decisions": pending,
        "backlog": {**backlog.as_json(), "limit": settings.backlog_limit,
                    "full": backlog.exceeds(settings.backlog_limit)},
    }


def render(status: dict[str, Any]) -> str:
    """The status as a few aligned lines for a terminal."""
    leader, model, backlog = status["leader"], status["model"], status["backlog"]
    lines = []
    if leader is None:
        lines.append("leader     none: no process holds the learner lease, so nothing learns or writes the log")
    else:
        lines.append(f"leader     {leader['identity']} (lease expires in {leader['lease_expires_in_seconds']:.1f} s "
                     "unless renewed)")
    if model["checkpoint_version"]:
        lines.append(f"model      checkpoint {model['checkpoint_version']}, {model['examples_learned']:,} examples, "
                     f"saved {model['age_seconds']:.0f} s ago (stream offset {model['stream_offset']})")
    else:
        lines.append("model      no checkpoint yet (a new model)")
    lines.append(f"pending    {status['pending_decisions']:,} decisions waiting for a reward or their deadline")
    bound = f"backlog_limit {backlog['limit']:,}" if backlog["limit"] else "unbounded (backlog_limit 0)"
    state = "  FULL: decide and reward answer 503 backlog_full" if backlog["full"] else ""
    lines.append(f"backlog    {backlog['events']:,} joined events behind ({bound}); the stream holds "
                 f"{backlog['stream_length']:,}{state}")
    for name, consumer in backlog["consumers"].items():
        estimate = "" if consumer["exact"] else "at most "
        lines.append(f"  {name:<10} {estimate}{consumer['events']:,} events ({consumer['pending']:,} read, not "
                     f"finished; {consumer['undelivered']:,} not read), lag {consumer['behind_seconds']:.1f} s")
    return "\n".join(lines)
