"""Deployment-wide analytics: per-minute and per-hour counters of settled decisions,
by channel, offer and policy, kept in Redis so every process (and the dashboard) sees
the same numbers.

The lease holder consumes the joined stream with a third consumer group, ``analytics``.
One Lua script per batch XACKs each entry and counts it only when that XACK removed it
from the group's pending list, so an entry is counted exactly once: a crash before the
script leaves it pending (the next leader claims and counts it), a crash after it leaves
it acknowledged (never counted again), and a stale leader racing a new one loses the
XACK. Buckets are the minute/hour in which the decision was *made*, so a cohort's
acceptance rate fills in as its rewards arrive.

Each bucket hash has fields ``<metric>|<channel>|<offer>|<policy>``: ``d`` settled
decisions (joined or defaulted), ``a`` acceptances (reward > 0), ``v`` reward sum, ``s``
sum of squared rewards (for variances), ``x`` dropped (deferred, never shown).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import redis.asyncio as aioredis

from bandit.decide.record import read_brief
from bandit.store.keys import ANALYTICS_GROUP, Keys
from bandit.learn.pacing import Pace
from bandit.store.store import JoinedEvent, Store, _joined_event, stream_id_key

log = logging.getLogger("nextbest.analytics")

MINUTE_TTL = 2 * 86400     # minute buckets serve the 15 min and 1 h windows
HOUR_TTL = 8 * 86400       # hour buckets serve 24 h and 7 d
BATCH = 256
Z95 = NormalDist().inv_cdf(0.975)
WINDOWS: dict[str, tuple[str, int]] = {"15m": ("m", 15), "1h": ("m", 60), "24h": ("h", 24), "7d": ("h", 168)}
_SECONDS = {"m": 60, "h": 3600}

# KEYS: stream, offset, then the bucket keys this batch touches
# ARGV: group, N bucket keys, N TTLs (one per bucket key), the batch's newest stream id,
#       then per entry six values: stream id, minute key index, hour key index, field
#       suffix, kind ('c' count, 'x' dropped, '' acknowledge only: unreadable), reward
# Redis runs nothing else while a script runs, so the increments are summed in Lua
# first: one HINCRBY per bucket field the batch touches rather than ~8 per entry (a
# batch of 256 took 3.9-4.3 ms of Redis, every other client waiting; now 0.9-1.4 ms,
# most of it the one XACK per entry that exactly-once needs).
COUNT = """
local function newer(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local nkeys = tonumber(ARGV[2])
local newest = ARGV[3 + nkeys]
local first_entry = 4 + nkeys
if first_entry > #ARGV then return 0 end
local taken, counted, ints, floats = 0, 0, {}, {}
local function add(sums, index, field, amount)
  local fields = sums[index]
  if not fields then fields = {}; sums[index] = fields end
  fields[field] = (fields[field] or 0) + amount
end
for i = first_entry, #ARGV, 6 do
  local id = ARGV[i]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    taken = taken + 1
    local kind, suffix = ARGV[i + 4], ARGV[i + 3]
    if kind ~= '' then
      local r = tonumber(ARGV[i + 5])
      for _, index in ipairs({tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])}) do
        if kind == 'x' then
          add(ints, index, 'x|' .. suffix, 1)
        else
          add(ints, index, 'd|' .. suffix, 1)
          if r > 0 then add(ints, index, 'a|' .. suffix, 1) end
          if r ~= 0 then
            add(floats, index, 'v|' .. suffix, r)
            add(floats, index, 's|' .. suffix, r * r)
          end
        end
      end
      counted = counted + 1
    end
  end
end
if taken == 0 then return 0 end
for index, fields in pairs(ints) do
  for field, amount in pairs(fields) do redis.call('HINCRBY', KEYS[index], field, amount) end
end
for index, fields in pairs(floats) do
  for field, amount in pairs(fields) do
    redis.call('HINCRBYFLOAT', KEYS[index], field, string.format('%.17g', amount))
  end
end
for index = 3, 2 + nkeys do
  if ints[index] or floats[index] then redis.call('EXPIRE', KEYS[index], tonumber(ARGV[index])) end
end
local offset = redis.call('GET', KEYS[2]) or '0-0'
if newer(newest, offset) then redis.call('SET', KEYS[2], newest) end
return counted
"""


def _clean(value: object) -> str:
    """Field parts are joined with '|': keep them free of it."""
    return str(value).replace("|", "/")


class Analytics:
    """The counting duty (run by the lease holder, supervised like the learner)."""

    def __init__(self, store: Store, consumer: str, max_lag_seconds: float = 0.0) -> None:
        self.store = store
        self.keys = store.keys
        self.consumer = consumer
        self._script = store.redis.register_script(COUNT)
        self._stopping = asyncio.Event()
        self.pace = Pace(max_lag_seconds)

    async def prepare(self) -> None:
        """Create the group (after the last counted entry if it was ever deleted)."""
        offset = await self.store.redis.get(self.keys.agg_offset)
        await self.store.ensure_group(ANALYTICS_GROUP, offset.decode() if offset else "0")

    async def run(self) -> None:
        await self.claim_pending()
        while not self._stopping.is_set():
            events = await self.store.read_group(ANALYTICS_GROUP, self.consumer, BATCH, block_ms=200,
                                                 decode=read_brief)
            if events:
                await self.count(events)

    async def claim_pending(self) -> int:
        """Count what a previous leader read but did not get to count."""
        cursor, counted = "0-0", 0
        while True:
            reply = await self.store.redis.xautoclaim(self.keys.joined, ANALYTICS_GROUP, self.consumer, 0,
                                                      cursor, count=BATCH)
            cursor = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            live = [_joined_event(sid, fields, read_brief) for sid, fields in reply[1] if sid is not None and fields]
            if live:
                counted += await self.count(live)
            if cursor == "0-0":   # entries trimmed before they were counted are simply gone
                return counted

    async def count(self, events: list[JoinedEvent]) -> int:
        """Count and acknowledge a batch in one script; returns how many were new."""
        bucket_index: dict[str, int] = {}
        ttls: list[int] = []
        entries: list[Any] = []

        def index(key: str, ttl: int) -> int:
            if key not in bucket_index:
                bucket_index[key] = len(bucket_index) + 3   # KEYS[1], KEYS[2] come first
                ttls.append(ttl)
            return bucket_index[key]

        async for event in self.pace.each(events):   # when requests leave the loop idle
            try:
                brief = event.record
                suffix = "|".join(_clean(v) for v in (brief.channel, brief.first_offer, brief.policy or "model"))
                ts = (brief.ts or event.joined_ms) // 1000
            except (AttributeError, KeyError, IndexError, TypeError, ValueError):
                log.warning("joined event %s (stream id %s) has no readable decision; not counted",
                            event.event_id, event.stream_id,
                            extra={"event_id": event.event_id, "stream_id": event.stream_id})
                entries += [event.stream_id, 1, 1, "", "", "0"]
                continue
            minute = index(self.keys.agg_bucket("m", ts // 60), MINUTE_TTL)
            hour = index(self.keys.agg_bucket("h", ts // 3600), HOUR_TTL)
            kind = "x" if event.kind == "dropped" else "c"
            entries += [event.stream_id, minute, hour, suffix, kind, repr(float(event.reward))]
        keys = [self.keys.joined, self.keys.agg_offset, *bucket_index]
        newest = max((event.stream_id for event in events), key=stream_id_key, default="0-0")
        args = [ANALYTICS_GROUP, len(ttls), *ttls, newest, *entries]
        return int(await self._script(keys=keys, args=args))

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def stop(self) -> None:
        self._stopping.set()


# -- reading the counters -------------------------------------------------------------

@dataclass
class Tally:
    decisions: int = 0
    accepts: int = 0
    value: float = 0.0
    value_sq: float = 0.0
    dropped: int = 0

    def add(self, metric: str, amount: float) -> None:
        if metric == "d":
            self.decisions += int(amount)
        elif metric == "a":
            self.accepts += int(amount)
        elif metric == "v":
            self.value += amount
        elif metric == "s":
            self.value_sq += amount
        elif metric == "x":
            self.dropped += int(amount)

    def to_json(self) -> dict[str, Any]:
        n = self.decisions
        return {"decisions": n, "accepts": self.accepts, "value": round(self.value, 6), "dropped": self.dropped,
                "acceptance_rate": self.accepts / n if n else None, "value_per_decision": self.value / n if n else None}


def mean_difference(n_a: int, sum_a: float, sq_a: float, n_b: int, sum_b: float, sq_b: float,
                    z: float = Z95) -> dict[str, Any]:
    """mean(a) − mean(b) with Welch's normal interval, from counts, sums and sums of
    squares (what the buckets hold): s² = (Σx² − (Σx)²/n)/(n − 1),
    se = √(s_a²/n_a + s_b²/n_b), interval = difference ± z·se."""
    mean_a = sum_a / n_a if n_a else None
    mean_b = sum_b / n_b if n_b else None
    out: dict[str, Any] = {"model": mean_a, "control": mean_b, "n_model": n_a, "n_control": n_b,
                           "difference": None, "relative": None, "se": None, "lower": None, "upper": None}
    if mean_a is None or mean_b is None:
        return out
    out["difference"] = mean_a - mean_b
    out["relative"] = (mean_a - mean_b) / mean_b if mean_b else None
    if n_a >= 2 and n_b >= 2:
        var_a = max(0.0, (sq_a - sum_a * sum_a / n_a) / (n_a - 1))
        var_b = max(0.0, (sq_b - sum_b * sum_b / n_b) / (n_b - 1))
        se = math.sqrt(var_a / n_a + var_b / n_b)
        out.update(se=se, lower=out["difference"] - z * se, upper=out["difference"] + z * se)
    return out


def lift(model: Tally, control: Tally) -> dict[str, Any]:
    """The model's lift over the control group: acceptance (a 0/1 outcome, Σx² = Σx)
    and value per decision."""
    return {
        "acceptance_rate": mean_difference(model.decisions, model.accepts, model.accepts,
                                           control.decisions, control.accepts, control.accepts),
        "value_per_decision": mean_difference(model.decisions, model.value, model.value_sq,
                                              control.decisions, control.value, control.value_sq),
    }


def window_buckets(window: str, now: float) -> tuple[str, list[int]]:
    """The whole buckets a window spans, oldest first, ending with the current one."""
    resolution, count = WINDOWS[window]
    current = int(now) // _SECONDS[resolution]
    return resolution, list(range(current - count + 1, current + 1))


async def query(client: aioredis.Redis, keys: Keys, window: str, now: float | None = None) -> dict[str, Any]:
    """Totals by offer, channel and policy, a time series and the lift over control for
    one window ("15m", "1h": per minute; "24h", "7d": per hour)."""
    resolution, buckets = window_buckets(window, time.time() if now is None else now)
    async with client.pipeline(transaction=False) as pipe:
        for bucket in buckets:
            pipe.hgetall(keys.agg_bucket(resolution, bucket))
        hashes = await pipe.execute()
    total, series = Tally(), []
    groups: dict[str, dict[str, Tally]] = {"offer": {}, "channel": {}, "policy": {"model": Tally(), "control": Tally()}}
    for bucket, raw in zip(buckets, hashes):
        point = Tally()
        for field, amount in _fields(raw):
            metric, channel, offer, policy = field
            point.add(metric, amount)
            total.add(metric, amount)
            for name, part in (("offer", offer), ("channel", channel), ("policy", policy)):
                groups[name].setdefault(part, Tally()).add(metric, amount)
        series.append({"t": bucket * _SECONDS[resolution] * 1000, **point.to_json()})
    return {
        "window": window, "resolution": "minute" if resolution == "m" else "hour",
        "from_ms": buckets[0] * _SECONDS[resolution] * 1000,
        "to_ms": (buckets[-1] + 1) * _SECONDS[resolution] * 1000,
        "totals": total.to_json(),
        **{f"by_{name}": [{name: part, **tally.to_json()} for part, tally in sorted(
            tallies.items(), key=lambda item: (-item[1].decisions, item[0]))] for name, tallies in groups.items()},
        "series": series,
        "lift": lift(groups["policy"]["model"], groups["policy"]["control"]),
    }


def _fields(raw: dict[bytes, bytes]) -> Iterable[tuple[tuple[str, str, str, str], float]]:
    for name, amount in raw.items():
        parts = name.decode().split("|")
        if len(parts) == 4:
            yield (parts[0], parts[1], parts[2], parts[3]), float(amount)
