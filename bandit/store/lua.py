"""Lua scripts that make the decision/reward join atomic inside Redis.

Several service processes may post rewards and expire deadlines for the same event at
once; each script reads and changes one event in a single step, so an event is joined
exactly once and the joined stream gets exactly one entry for it. Time comes from the
Redis clock (TIME) so processes on different machines agree on deadlines.

Event hash fields: rec (the decision record, JSON bytes, dropped after the join),
st (p pending, j joined, d defaulted, x dropped: deferred and never activated),
defer/act ("0"/"1"), dl (deadline), ns (slots; absent in events of the one-slot release:
1), ak (the subscriber's accepted-offers key), bd (digest of the decide request, when the
client named the event), rd:<reward id> (digest of the reward request that counted it), and
per slot s, with the suffix '' for
slot 1 (the one-slot release's names) and s for the others: o (offer id), val (its
value), r (reward, or the running sum), n (rewards counted), capk (acceptance-cap
reservations), dk/dttl (decline cool-down key and seconds); of:<offer id> → its slot.
"""

# Shared by the scripts below: slots, and appending the joined event to the stream.
_JOIN = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function sfx(s) if s == 1 then return '' end return tostring(s) end
local function slot_count(ev_key) return tonumber(redis.call('HGET', ev_key, 'ns') or '1') end
-- how many of the event's slots have a reward
local function rewarded(ev_key, ns)
  local count = 0
  for s = 1, ns do
    if (redis.call('HGET', ev_key, 'n' .. sfx(s)) or '0') ~= '0' then count = count + 1 end
  end
  return count
end
-- append the event to the stream with each slot's reward (the default where none came)
-- and settle the hash
local function join(ev_key, deadlines, stream, stats, event_id, default, kind, state, retention_ms, now)
  local rec = redis.call('HGET', ev_key, 'rec')
  local ns = slot_count(ev_key)
  now = now or now_ms()
  local rewards, counts, total, counted = {}, {}, 0, 0
  for s = 1, ns do
    local x = sfx(s)
    local f = redis.call('HMGET', ev_key, 'r' .. x, 'n' .. x, 'capk' .. x)
    local n = f[2] or '0'
    local reward = default
    if n ~= '0' then reward = f[1] end
    rewards[s], counts[s] = reward, n
    total, counted = total + tonumber(reward), counted + tonumber(n)
    -- sales plans: release the shown offer's acceptance reservations; count an acceptance
    if f[3] then
      local accepted = kind == 'joined' and tonumber(reward) > 0
      for reserved, counter, ttl in string.gmatch(f[3], '(%S+)|(%S+)|(%d+)') do
        redis.call('DECR', reserved)
        if accepted then
          redis.call('INCR', counter)
          if ttl ~= '0' then redis.call('EXPIRE', counter, tonumber(ttl)) end
        end
      end
      redis.call('HDEL', ev_key, 'capk' .. x)
    end
  end
  local sum = rewards[1]
  if ns > 1 then sum = tostring(total) end
  -- the entry's number (no): entries ever appended, this one included; a reader's backlog is
  -- the newest number minus that of the entry it reached (bandit.store.backlog, any Redis version)
  redis.call('HINCRBY', stats, 'events_' .. kind, 1)
  local c = redis.call('HMGET', stats, 'events_joined', 'events_defaulted', 'events_dropped')
  local no = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0)
  local sid = redis.call('XADD', stream, '*', 'id', event_id, 'rec', rec, 'reward', sum, 'kind', kind,
                         'n', tostring(counted), 't', tostring(now),
                         'sr', table.concat(rewards, ' '), 'sn', table.concat(counts, ' '), 'no', tostring(no))
  -- the record (over hash-max-*-value bytes) made the hash a hashtable, and Redis never
  -- converts back: 1.3 KB for a dozen short fields kept for the whole retention. The
  -- fields left, with the join's (later ones win), written into a new hash are a compact
  -- list (0.25 KB).
  redis.call('HDEL', ev_key, 'rec')
  local settled = redis.call('HGETALL', ev_key)
  for _, v in ipairs({'st', state, 'r', rewards[1], 'jt', tostring(now), 'sid', sid}) do
    settled[#settled + 1] = v
  end
  redis.call('DEL', ev_key)
  redis.call('HSET', ev_key, unpack(settled))
  redis.call('PEXPIRE', ev_key, retention_ms)
  redis.call('PEXPIRE', ev_key .. ':rids', retention_ms)   -- the reward ids (Keys.reward_ids) go with it
  redis.call('ZREM', deadlines, event_id)
  return sid
end
"""

# KEYS: event, deadlines, stats, then the counters of every limit of every shown offer
# ARGV: event_id, record, wait_ms, defer, retention_ms, slots, accepted-offers key ('' = none),
#       request digest ('' = none), then per slot (offer id, value, acceptance-cap pairs '' or
#       "reserved|counted|ttl ...", decline key, decline ttl), then (limit, ttl, also-counted
#       key or '') per counter key
# A limit reached refuses the decision: {2, index of that counter}. Two slots may count
# on the same counter (the subscriber's offers a day): each adds one. A pending event whose
# stored request digest differs from this one's: {3, false} (the id was reused for another
# request); an event stored without a digest (before digests) matches any request.
CREATE = _JOIN + """
local existing = redis.call('HGET', KEYS[1], 'rec')
if existing then
  local digest = redis.call('HGET', KEYS[1], 'bd')
  if digest and ARGV[8] ~= '' and digest ~= ARGV[8] then return {3, false} end
  return {0, existing}
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, false} end
local slots = tonumber(ARGV[6])
local base = 9 + 5 * slots
local counters = #KEYS - 3
local adding = {}
for i = 1, counters do
  local key, a = KEYS[3 + i], base + 3 * (i - 1)
  local limit, also = tonumber(ARGV[a]), ARGV[a + 2]
  adding[key] = (adding[key] or 0) + 1
  local used = tonumber(redis.call('GET', key) or '0')
  if also ~= '' then used = used + tonumber(redis.call('GET', also) or '0') end
  if limit >= 0 and used + adding[key] > limit then return {2, i} end
end
for i = 1, counters do
  redis.call('INCR', KEYS[3 + i])
  local ttl = tonumber(ARGV[base + 3 * (i - 1) + 1])
  if ttl > 0 then redis.call('EXPIRE', KEYS[3 + i], ttl) end
end
local deadline = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'st', 'p', 'defer', ARGV[4], 'act', '0',
           'dl', tostring(deadline), 'ns', tostring(slots))
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'ak', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'bd', ARGV[8]) end
for s = 1, slots do
  local a, x = 9 + 5 * (s - 1), sfx(s)
  redis.call('HSET', KEYS[1], 'o' .. x, ARGV[a], 'of:' .. ARGV[a], tostring(s), 'val' .. x, ARGV[a + 1],
             'n' .. x, '0')
  if ARGV[a + 2] ~= '' then redis.call('HSET', KEYS[1], 'capk' .. x, ARGV[a + 2]) end
  if ARGV[a + 3] ~= '' then redis.call('HSET', KEYS[1], 'dk' .. x, ARGV[a + 3], 'dttl' .. x, ARGV[a + 4]) end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
redis.call('HINCRBY', KEYS[3], 'decisions', 1)
return {1, false}
"""

# KEYS: event, deadlines, stream, stats, reward_ids
# ARGV: event_id, reward, mode (first|sum), reward_id ('' = none), retention_ms,
#       scale ('1': the reward is an outcome worth the offer's value),
#       offer id ('' = none), slot ('' = none; neither: slot 1),
#       sale ('1': the outcome is a sale: the offer joins the subscriber's accepted offers),
#       accepted-offers ttl (seconds), request digest (kept with the reward id: the same id
#       with another request is {'reused', false}), reward_min, reward_max (the reward the
#       slot would hold, value-scaled or summed, outside them: {'out_of_range', that reward})
# Returns {status, detail}; a multi-slot event joins once every slot has its reward (and it
# is active), else at its deadline.
REWARD = _JOIN + """
redis.call('HINCRBY', KEYS[4], 'rewards_received', 1)
local f = redis.call('HMGET', KEYS[1], 'st', 'defer', 'act', 'ns', 'ak')
local st = f[1]
if not st then
  redis.call('HINCRBY', KEYS[4], 'rewards_late', 1)
  return {'unknown', false}
end
local ns = tonumber(f[4] or '1')
local slot = 1
if ARGV[7] ~= '' then
  local s = redis.call('HGET', KEYS[1], 'of:' .. ARGV[7])
  if not s then return {'not_shown', tostring(ns)} end
  slot = tonumber(s)
elseif ARGV[8] ~= '' then
  slot = tonumber(ARGV[8])
  if slot > ns then return {'no_slot', tostring(ns)} end
end
if st == 'd' or st == 'x' then
  redis.call('HINCRBY', KEYS[4], 'rewards_late', 1)
  return {'late', st}
end
local x = sfx(slot)
local g = redis.call('HMGET', KEYS[1], 'val' .. x, 'n' .. x, 'dk' .. x, 'dttl' .. x, 'o' .. x)
if ARGV[6] == '1' then
  local value = tonumber(g[1] or '1') or 1
  ARGV[2] = tostring(tonumber(ARGV[2]) * value)
end
local function duplicate()
  redis.call('HINCRBY', KEYS[4], 'rewards_duplicate', 1)
  return {'duplicate', redis.call('HGET', KEYS[1], 'r' .. x) or false}
end
local rid = ARGV[4]
if rid ~= '' and slot > 1 then rid = x .. '|' .. rid end   -- reward ids count per slot
if rid ~= '' and redis.call('SISMEMBER', KEYS[5], rid) == 1 then
  local digest = redis.call('HGET', KEYS[1], 'rd:' .. rid)
  if digest and ARGV[11] ~= '' and digest ~= ARGV[11] then return {'reused', false} end
  return duplicate()
end
if st == 'j' then
  if ARGV[3] == 'sum' then   -- summed rewards join at the deadline: this one came too late
    redis.call('HINCRBY', KEYS[4], 'rewards_late', 1)
    return {'late', st}
  end
  return duplicate()
end
if ARGV[3] ~= 'sum' and g[2] ~= '0' then return duplicate() end
local held = tonumber(ARGV[2])
if ARGV[3] == 'sum' then held = held + tonumber(redis.call('HGET', KEYS[1], 'r' .. x) or '0') end
if not (held >= tonumber(ARGV[12]) and held <= tonumber(ARGV[13])) then   -- also NaN and infinity
  return {'out_of_range', tostring(held)}
end
if rid ~= '' then
  redis.call('SADD', KEYS[5], rid)
  redis.call('PEXPIRE', KEYS[5], redis.call('PTTL', KEYS[1]))
  if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'rd:' .. rid, ARGV[11]) end
end
if ARGV[9] == '1' and f[5] and g[5] then   -- a sale: the next decision knows the offer as owned
  redis.call('APPEND', f[5], ' ' .. g[5])
  redis.call('EXPIRE', f[5], tonumber(ARGV[10]))
end
if ARGV[3] == 'sum' then
  local total = redis.call('HINCRBYFLOAT', KEYS[1], 'r' .. x, ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'n' .. x, 1)
  redis.call('HINCRBY', KEYS[4], 'rewards_accepted', 1)
  return {'accumulated', total}
end
redis.call('HSET', KEYS[1], 'r' .. x, ARGV[2], 'n' .. x, '1')
redis.call('HINCRBY', KEYS[4], 'rewards_accepted', 1)
if g[3] and tonumber(ARGV[2]) <= 0 then
  redis.call('SET', g[3], '1', 'EX', tonumber(g[4]))
end
local activated = f[2] == '0' or f[3] == '1'
if activated and (ns == 1 or rewarded(KEYS[1], ns) == ns) then
  join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], '0', 'joined', 'j', tonumber(ARGV[5]))
  return {'joined', ARGV[2]}
end
return {'stored', ARGV[2]}
"""

# KEYS: event, deadlines, stream, stats   ARGV: event_id, mode, retention_ms
ACTIVATE = _JOIN + """
local f = redis.call('HMGET', KEYS[1], 'st', 'defer', 'act')
local st = f[1]
if not st then return {'unknown'} end
if f[2] == '0' or f[3] == '1' then return {'already'} end
if st ~= 'p' then return {'late'} end
redis.call('HSET', KEYS[1], 'act', '1')
redis.call('HINCRBY', KEYS[4], 'activations', 1)
local ns = slot_count(KEYS[1])
if ARGV[2] == 'first' and rewarded(KEYS[1], ns) == ns then
  join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], '0', 'joined', 'j', tonumber(ARGV[3]))
  return {'joined'}
end
return {'activated'}
"""

# KEYS: deadlines, stream, stats   ARGV: event key prefix, default_reward, limit, retention_ms
EXPIRE_DUE = _JOIN + """
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local done = 0
for _, event_id in ipairs(due) do
  local key = ARGV[1] .. event_id
  local f = redis.call('HMGET', key, 'st', 'defer', 'act', 'ns', 'n')   -- one read for a one-slot event
  if f[1] ~= 'p' then
    redis.call('ZREM', KEYS[1], event_id)
  else
    local retention = tonumber(ARGV[4])
    local ns = tonumber(f[4] or '1')
    local any = f[5] ~= '0'
    if ns > 1 then any = rewarded(key, ns) > 0 end
    if f[2] == '1' and f[3] == '0' then
      join(key, KEYS[1], KEYS[2], KEYS[3], event_id, ARGV[2], 'dropped', 'x', retention, now)
    elseif any then
      join(key, KEYS[1], KEYS[2], KEYS[3], event_id, ARGV[2], 'joined', 'j', retention, now)
    else
      join(key, KEYS[1], KEYS[2], KEYS[3], event_id, ARGV[2], 'defaulted', 'd', retention, now)
    end
    done = done + 1
  end
end
return done
"""

# KEYS: lock   ARGV: owner, ttl_ms — take or renew the lease; returns the holder
LEASE = """
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return ARGV[1]
end
return holder
"""

# KEYS: lock   ARGV: expected holder, new owner, ttl_ms — take over a lease whose holder is dead
STEAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
  return 1
end
return 0
"""

# KEYS: lock   ARGV: owner
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# The decision log's commit: the offset, the events_logged counter and the acks in one
# step, so the counter never disagrees with the offset (a crash between two separate
# calls used to leave it behind). The offset only moves forward, and only a forward move
# counts: a commit repeated after its reply was lost counts nothing twice.
# KEYS: log offset, stats, joined stream. ARGV: new offset, lines written, group, ids to ack...
LOG_COMMIT = """
local function key(id)
  local ms, seq = string.match(id, '^(%d+)-?(%d*)$')
  return tonumber(ms), tonumber(seq ~= '' and seq or '0')
end
local current = redis.call('GET', KEYS[1])
local ahead = true
if current then
  local cm, cs = key(current)
  local nm, ns = key(ARGV[1])
  ahead = nm > cm or (nm == cm and ns > cs)
end
if ahead then
  redis.call('SET', KEYS[1], ARGV[1])
  if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[2], 'events_logged', ARGV[2]) end
end
if #ARGV > 3 then redis.call('XACK', KEYS[3], ARGV[3], unpack(ARGV, 4)) end
return ahead and 1 or 0
"""
