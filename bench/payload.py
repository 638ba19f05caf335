"""Request bodies shared by the wrk Lua scripts, the open-loop client and the reference
server, so every phase sends byte-for-byte the same kind of traffic.

A decide body has a context of 4 features (2 strings, 1 number, 1 string that varies
with the request number), ``offers`` candidate offers (default 8) with 4 features each
(a string, a number, a bool and a list of strings: every encoder branch), a subscriber
id and a unique client ``event_id``. Request ``n`` (1-based) of a phase is the same in
Lua and Python, so the ids a wrk decide phase created are known to the reward phase.
"""

from __future__ import annotations

import json

PLANS = ("prepaid", "postpaid", "family")
REGIONS = ("north", "south", "east", "west")
DEVICES = ("android", "ios")
OFFER_TYPES = ("data", "voice", "roaming", "content")


def offers_json(count: int) -> str:
    """The candidate offers: constant for a run (the context and ids vary)."""
    offers = [
        {"id": f"offer-{i}", "features": {
            "type": OFFER_TYPES[i % len(OFFER_TYPES)],
            "price": round(4.99 + 2.5 * i, 2),
            "bundle": i % 2 == 0,
            "tags": ["promo", f"tier{i % 3}"],
        }}
        for i in range(1, count + 1)
    ]
    return json.dumps(offers, separators=(",", ":"))


# %d subscriber, %s plan, %d tenure, %s region, %s device, then offers, then %s event id.
_HEAD = ('{"channel":"web","subscriber_id":"sub-%d","context":{"plan":"%s","tenure_months":%d.0,'
         '"region":"%s","device":"%s"},"offers":')
_TAIL = ',"event_id":"%s"}'


def event_id(prefix: str, tid: int, n: int) -> str:
    """Client event ids: ``<prefix><thread>-<n>``, within [A-Za-z0-9._:-]{1,128}."""
    return f"{prefix}{tid}-{n}"


def decide_body(offers: str, prefix: str, tid: int, n: int) -> bytes:
    head = _HEAD % (n % 10000, PLANS[n % 3], n % 60, REGIONS[n % 4], DEVICES[n % 2])
    return (head + offers + _TAIL % event_id(prefix, tid, n)).encode()


def reward_body(event: str, n: int) -> bytes:
    return ('{"event_id":"%s","reward":%s}' % (event, "1.0" if n % 3 == 0 else "0.0")).encode()


def _lua_string(text: str) -> str:
    if "]==]" in text:
        raise ValueError("cannot embed this text in a Lua long string")
    return f"[==[{text}]==]"


# Per-thread state, a monotonic clock (LuaJIT ffi) and a done() that writes the summary
# as JSON: wrk's own text output is only printed for the operator.
_LUA_COMMON = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } nb_timespec;
int clock_gettime(int clk, nb_timespec *tp);
]]
local nb_ts = ffi.new("nb_timespec")
local function now()
  ffi.C.clock_gettime(1, nb_ts)  -- CLOCK_MONOTONIC
  return tonumber(nb_ts.tv_sec) + tonumber(nb_ts.tv_nsec) * 1e-9
end

local threads = {}
tid = 0
counter = 0
started = 0
stopped = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  started = now()
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    parts[#parts + 1] = string.format('{"tid":%d,"counter":%d,"started":%.6f,"stopped":%.6f}',
      t:get("tid"), t:get("counter"), t:get("started"), t:get("stopped"))
  end
  local e = summary.errors
  local out = assert(io.open(RESULT_PATH, "w"))
  out:write(string.format(
    '{"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"threads":[%s]}',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ",")))
  out:close()
end
"""


def lua_decide(result_path: str, path: str, offers: str, prefix: str, channel: str = "web") -> str:
    """Every request a new decision: unique event id ``<prefix><tid>-<n>``; ``channel``
    picks the number of slots (the service's ``slots``: web 1, contact_center 3)."""
    head = _HEAD.replace('"channel":"web"', f'"channel":"{channel}"')
    return f"""
RESULT_PATH = {_lua_string(result_path)}
local PATH = {_lua_string(path)}
local HEAD = {_lua_string(head + offers + _TAIL)}
local PREFIX = {_lua_string(prefix)}
local PLANS = {{"{'", "'.join(PLANS)}"}}
local REGIONS = {{"{'", "'.join(REGIONS)}"}}
local DEVICES = {{"{'", "'.join(DEVICES)}"}}
{_LUA_COMMON}
function request()
  counter = counter + 1
  local n = counter
  local body = string.format(HEAD, n % 10000, PLANS[n % 3 + 1], n % 60, REGIONS[n % 4 + 1],
                             DEVICES[n % 2 + 1], PREFIX .. tid .. "-" .. n)
  return wrk.format(nil, PATH, nil, body)
end
"""


def lua_reward(result_path: str, path: str, prefix: str, pool: list[int]) -> str:
    """Thread ``t`` rewards ``<prefix><t>-1`` .. ``<prefix><t>-pool[t]`` in order, then
    stops (its stop time is recorded, so the rate is over the time it actually ran)."""
    return f"""
RESULT_PATH = {_lua_string(result_path)}
local PATH = {_lua_string(path)}
local PREFIX = {_lua_string(prefix)}
local POOL = {{{", ".join(str(p) for p in pool)}}}
local last = nil
{_LUA_COMMON}
function request()
  local limit = POOL[tid + 1] or 0
  if counter >= limit then
    if stopped == 0 then stopped = now() end
    wrk.thread:stop()
    -- whatever is returned now is never counted: resend the last reward (a duplicate)
    return last or wrk.format(nil, PATH, nil, '{{"event_id":"none","reward":0.0}}')
  end
  counter = counter + 1
  local n = counter
  local reward = (n % 3 == 0) and "1.0" or "0.0"
  last = wrk.format(nil, PATH, nil, '{{"event_id":"' .. PREFIX .. tid .. "-" .. n .. '","reward":' .. reward .. '}}')
  return last
end
"""
