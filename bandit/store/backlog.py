"""How far the joined stream's readers are behind: the backlog.

Every joined event stays in the stream until each consumer group (the learner, the
decision log, the analytics) has passed it, and the stream is trimmed past the slowest
only. When nothing can learn or log (no process holds the lease, the log sink stopped,
the learner stalled) the backlog grows in Redis's memory; this is the one reading of it
that ``/readyz``, the metrics, ``nextbest status`` and the bound (``backlog_limit``) share.

Exact and cheap on every Redis version: each entry carries its number (``no``, set by
the join script: entries ever appended, itself included), so the entries a group has not
been delivered are the newest number minus that of the first entry after the group's
last-delivered id, plus one: one small XRANGE per group, whatever the backlog. (Redis 7's
XINFO GROUPS ``lag`` would do on 7 only, and is missing after XGROUP SETID, which the
learner uses to rewind, and on the embedded 6.2.) Entries written before entries were
numbered fall back to ``lag``, else a server-side count (``count_cap`` > 0: a scrape,
``nextbest status``), else the stream's length as a bound (the request path's refresher,
which must stay cheap); ``exact`` says which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from bandit.store.keys import ANALYTICS_GROUP, LEARNER_GROUP, LOG_GROUP, Keys

CONSUMERS = (LEARNER_GROUP, LOG_GROUP, ANALYTICS_GROUP)
COUNT_CAP = 100_000   # a scrape or `nextbest status` counts at most this many entries when Redis cannot say

# Count the entries after ARGV[1], in pages, so only a number crosses the network; caught
# up, it is one empty XRANGE. Up to ARGV[2] entries (each page reads whole entries).
_COUNT_AFTER = """
local start, cap, n = '(' .. ARGV[1], tonumber(ARGV[2]), 0
while n < cap do
  local page = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1000)
  if #page == 0 then break end
  n = n + #page
  start = '(' .. page[#page][1]
end
return n
"""


@dataclass(frozen=True)
class ConsumerBacklog:
    """One consumer group's share of the stream it has not finished."""

    name: str
    pending: int            # delivered to the group, not acknowledged (read, not yet learned or written)
    undelivered: int        # not delivered yet
    exact: bool             # False: ``undelivered`` is an upper bound (Redis could not say)
    behind_seconds: float   # age, by the Redis clock, of the oldest entry it has not finished (0: caught up)
    last_delivered: str     # the group's last-delivered stream id ("0-0": no group yet)

    @property
    def events(self) -> int:
        return self.pending + self.undelivered


@dataclass(frozen=True)
class Backlog:
    stream_length: int
    consumers: dict[str, ConsumerBacklog]

    @property
    def slowest(self) -> ConsumerBacklog | None:
        """The consumer that holds the stream back (the stream is trimmed past it only)."""
        return max(self.consumers.values(), key=lambda c: (c.events, c.behind_seconds), default=None)

    @property
    def events(self) -> int:
        """Joined events some consumer has not finished: what ``backlog_limit`` bounds."""
        slowest = self.slowest
        return slowest.events if slowest is not None else 0

    def exceeds(self, limit: int) -> bool:
        """Past ``backlog_limit`` (0: never)."""
        return limit > 0 and self.events > limit

    def as_json(self) -> dict[str, Any]:
        return {"events": self.events, "stream_length": self.stream_length,
                "slowest": self.slowest.name if self.slowest is not None and self.events else None,
                "consumers": {name: {**asdict(c), "events": c.events} for name, c in self.consumers.items()}}


async def read_backlog(client: aioredis.Redis, keys: Keys, count_cap: int = 0) -> Backlog:
    """Every consumer's backlog in two pipelined round trips (plus, for entries joined
    before entries were numbered, one counting script per group when ``count_cap`` > 0
    and Redis reports no lag)."""
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.xlen(keys.joined)
    pipe.xinfo_groups(keys.joined)
    now, length, groups = await pipe.execute(raise_on_error=False)
    for reply in (now, length):
        if isinstance(reply, Exception):
            raise reply
    if isinstance(groups, aioredis.ResponseError):   # no stream yet: nothing joined, nothing behind
        groups = []
    elif isinstance(groups, Exception):
        raise groups
    length = int(length)
    by_name = {_text(group["name"]): group for group in groups}
    # per consumer: the first entry after its last-delivered id ("0-0": no group yet, it
    # has read nothing), its oldest pending entry; then the newest number (read last, so
    # it is at least the number of any entry read before it)
    pipe = client.pipeline(transaction=False)
    for name in CONSUMERS:
        group = by_name.get(name)
        last = _text(group["last-delivered-id"]) if group is not None else "0-0"
        pipe.xrange(keys.joined, min="-" if last == "0-0" else f"({last}", max="+", count=1)
        if group is not None and int(group["pending"]):
            pipe.xpending(keys.joined, name)
        else:
            pipe.echo("")   # keeps two replies per consumer
    pipe.hmget(keys.stats, ("events_joined", "events_defaulted", "events_dropped"))
    *replies, totals = await pipe.execute()
    newest = sum(int(v or 0) for v in totals)
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    consumers = {}
    for i, name in enumerate(CONSUMERS):
        group = by_name.get(name, {})
        following, pending_summary = replies[2 * i], replies[2 * i + 1]
        pending = int(group.get("pending") or 0)
        last = _text(group.get("last-delivered-id") or "0-0")
        exact = True
        if not following:   # caught up
            undelivered = 0
        elif b"no" in following[0][1]:
            undelivered = max(1, newest - int(following[0][1][b"no"]) + 1)
        else:   # joined before entries were numbered: Redis's lag, a count or a bound
            undelivered, exact = await _unnumbered(client, keys, group, last, length - pending, count_cap)
        oldest = (pending_summary.get("min") if pending else None) or (following[0][0] if following else None)
        behind = max(0.0, (now_ms - int(_text(oldest).partition("-")[0])) / 1000) if oldest else 0.0
        consumers[name] = ConsumerBacklog(name, pending, undelivered, exact, behind, last)
    return Backlog(length, consumers)


async def _unnumbered(client: aioredis.Redis, keys: Keys, group: dict, last: str, bound: int,
                      count_cap: int) -> tuple[int, bool]:
    """Entries after ``last`` when they carry no number (written by an older release):
    Redis 7's lag, else counted up to ``count_cap``, else at most ``bound``."""
    if group.get("lag") is not None:
        return int(group["lag"]), True
    if count_cap > 0:
        counted = int(await client.register_script(_COUNT_AFTER)(keys=[keys.joined], args=[last, count_cap]))
        return counted, counted < count_cap
    return max(1, bound), False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
