"""How far the joined stream's readers are behind: the backlog.

Every joined event stays in the stream until each consumer group (the learner, the
decision log, the analytics) has passed it, and the stream is trimmed past the slowest
only. When nothing can learn or log (no process holds the lease, the log sink stopped,
the learner stalled) the backlog grows in Redis's memory; this is the one reading of it
that ``/readyz``, the metrics, ``nextbest status`` and the bound (``backlog_limit``) share.

Redis 7 says how many entries a group has not been delivered yet (XINFO GROUPS ``lag``).
Where it cannot (Redis 6.2, or a group rewound with XGROUP SETID that has not caught up
since) the entries after the group's last-delivered id are either counted by a
server-side script (``count_cap`` > 0: a scrape, ``nextbest status``) or bounded by the
stream's length (``count_cap`` 0: the request path's refresher, which must stay cheap);
``exact`` says which.
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
    """Every consumer's backlog: one pipelined round trip, a second one for the ages of
    the consumers that are behind, and (``count_cap`` > 0 on a Redis that reports no
    lag) one counting script per such group."""
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
    counts: dict[str, tuple[int, int, bool, str]] = {}
    for name in CONSUMERS:
        group = by_name.get(name)
        if group is None:   # no process has read for it yet: the whole stream waits
            counts[name] = (0, length, True, "0-0")
            continue
        pending, lag, last = int(group["pending"]), group.get("lag"), _text(group["last-delivered-id"])
        if lag is not None:
            counts[name] = (pending, int(lag), True, last)
        elif count_cap > 0:
            counted = int(await client.register_script(_COUNT_AFTER)(keys=[keys.joined], args=[last, count_cap]))
            counts[name] = (pending, counted, counted < count_cap, last)
        else:   # entries already delivered (the pending ones among them) are not undelivered
            counts[name] = (pending, max(0, length - pending), False, last)
    oldest = await _oldest_unfinished(client, keys, counts)
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    consumers = {
        name: ConsumerBacklog(name, pending, undelivered, exact,
                              max(0.0, (now_ms - oldest[name]) / 1000) if name in oldest else 0.0, last)
        for name, (pending, undelivered, exact, last) in counts.items()}
    return Backlog(length, consumers)


async def _oldest_unfinished(client: aioredis.Redis, keys: Keys,
                             counts: dict[str, tuple[int, int, bool, str]]) -> dict[str, int]:
    """The join time (ms, from the stream id) of each behind consumer's oldest entry not
    yet finished: its oldest pending entry, else the first after its last-delivered id."""
    asked: list[tuple[str, bool]] = []
    pipe = client.pipeline(transaction=False)
    for name, (pending, undelivered, _, last) in counts.items():
        if pending:
            pipe.xpending(keys.joined, name)
            asked.append((name, True))
        elif undelivered:
            pipe.xrange(keys.joined, min="-" if last == "0-0" else f"({last}", max="+", count=1)
            asked.append((name, False))
    if not asked:
        return {}
    oldest = {}
    for (name, summary), reply in zip(asked, await pipe.execute(raise_on_error=False)):
        if isinstance(reply, Exception):
            continue   # an age is a detail: the counts stand without it
        sid = (reply.get("min") if summary else (reply[0][0] if reply else None))
        if sid:
            oldest[name] = int(_text(sid).partition("-")[0])
    return oldest


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
