"""Lua scripts that make the decision/reward join atomic inside Redis.

Several service processes may post rewards and expire deadlines for the same event at
once; each script reads and changes one event in a single step, so an event is joined
exactly once and the joined stream gets exactly one entry for it. Time comes from the
Redis clock (TIME) so processes on different machines agree on deadlines.

Event hash fields: rec (the decision record, JSON bytes, dropped after the join),
st (p pending, j joined, d defaulted, x dropped: deferred and never activated),
defer/act ("0"/"1"), r (reward, or the running sum), n (rewards counted), dl (deadline).
"""

# Shared by the scripts below: append the joined event to the stream and settle the hash.
_JOIN = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function join(ev_key, deadlines, stream, stats, event_id, reward, kind, state, retention_ms, now)
  local fields = redis.call('HMGET', ev_key, 'rec', 'n', 'capk')
  local rec, n, caps = fields[1], fields[2] or '0', fields[3]
  now = now or now_ms()
  local sid = redis.call('XADD', stream, '*', 'id', event_id, 'rec', rec, 'reward', reward,
                         'kind', kind, 'n', n, 't', tostring(now))
  redis.call('HSET', ev_key, 'st', state, 'r', reward, 'jt', tostring(now), 'sid', sid)
  -- sales plans: release the served offer's acceptance reservations; count an acceptance
  if caps then
    local accepted = kind == 'joined' and tonumber(reward) > 0
    for reserved, counted, ttl in string.gmatch(caps, '(%S+)|(%S+)|(%d+)') do
      redis.call('DECR', reserved)
      if accepted then
        redis.call('INCR', counted)
        if ttl ~= '0' then redis.call('EXPIRE', counted, tonumber(ttl)) end
      end
    end
  end
  redis.call('HDEL', ev_key, 'rec', 'capk')
  redis.call('PEXPIRE', ev_key, retention_ms)
  redis.call('ZREM', deadlines, event_id)
  redis.call('HINCRBY', stats, 'events_' .. kind, 1)
  return sid
end
"""

# KEYS: event, deadlines, stats, then one counter per limit on the served offer
# ARGV: event_id, record, wait_ms, defer, retention_ms, served offer's value,
#       acceptance-cap pairs ('' or "reserved|counted|ttl ..."), decline key, decline ttl,
#       then (limit, ttl, also-counted key or '') per counter key
# A limit the served offer has reached refuses the decision: {2, index of that counter}.
CREATE = _JOIN + """
local existing = redis.call('HGET', KEYS[1], 'rec')
if existing then return {0, existing} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, false} end
local counters = #KEYS - 3
for i = 1, counters do
  local limit = tonumber(ARGV[9 + 3 * i - 2])
  local used = tonumber(redis.call('GET', KEYS[3 + i]) or '0')
  local also = ARGV[9 + 3 * i]
  if also ~= '' then used = used + tonumber(redis.call('GET', also) or '0') end
  if limit >= 0 and used + 1 > limit then return {2, i} end
end
for i = 1, counters do
  redis.call('INCR', KEYS[3 + i])
  local ttl = tonumber(ARGV[9 + 3 * i - 1])
  if ttl > 0 then redis.call('EXPIRE', KEYS[3 + i], ttl) end
end
local deadline = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'st', 'p', 'defer', ARGV[4], 'act', '0', 'n', '0',
           'dl', tostring(deadline), 'val', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'capk', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'dk', ARGV[8], 'dttl', ARGV[9]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
redis.call('HINCRBY', KEYS[3], 'decisions', 1)
return {1, false}
"""

# KEYS: event, deadlines, stream, stats, reward_ids
# ARGV: event_id, reward, mode (first|sum), reward_id ('' = none), retention_ms,
#       scale ('1': the reward is an outcome worth the served offer's value)
REWARD = _JOIN + """
redis.call('HINCRBY', KEYS[4], 'rewards_received', 1)
-- every field this script looks at, in one read (nothing below changes them before use)
local f = redis.call('HMGET', KEYS[1], 'st', 'val', 'defer', 'act', 'n', 'dk', 'dttl')
if ARGV[6] == '1' then
  local value = tonumber(f[2] or '1') or 1
  ARGV[2] = tostring(tonumber(ARGV[2]) * value)
end
local st = f[1]
if not st then
  redis.call('HINCRBY', KEYS[4], 'rewards_late', 1)
  return {'unknown', false}
end
if st == 'd' or st == 'x' then
  redis.call('HINCRBY', KEYS[4], 'rewards_late', 1)
  return {'late', st}
end
local function duplicate()
  redis.call('HINCRBY', KEYS[4], 'rewards_duplicate', 1)
  return {'duplicate', redis.call('HGET', KEYS[1], 'r') or false}
end
if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[5], ARGV[4]) == 1 then return duplicate() end
if st == 'j' then
  if ARGV[3] == 'sum' then   -- summed rewards join at the deadline: this one came too late
    redis.call('HINCRBY', KEYS[4], 'rewards_late', 1)
    return {'late', st}
  end
  return duplicate()
end
if ARGV[4] ~= '' then
  redis.call('SADD', KEYS[5], ARGV[4])
  redis.call('PEXPIRE', KEYS[5], redis.call('PTTL', KEYS[1]))
end
local activated = f[3] == '0' or f[4] == '1'
if ARGV[3] == 'sum' then
  local total = redis.call('HINCRBYFLOAT', KEYS[1], 'r', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'n', 1)
  redis.call('HINCRBY', KEYS[4], 'rewards_accepted', 1)
  return {'accumulated', total}
end
if f[5] ~= '0' then return duplicate() end
redis.call('HSET', KEYS[1], 'r', ARGV[2], 'n', '1')
redis.call('HINCRBY', KEYS[4], 'rewards_accepted', 1)
local declined = f[6]
if declined and tonumber(ARGV[2]) <= 0 then
  redis.call('SET', declined, '1', 'EX', tonumber(f[7]))
end
if activated then
  join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], 'joined', 'j', tonumber(ARGV[5]))
  return {'joined', ARGV[2]}
end
return {'stored', ARGV[2]}
"""

# KEYS: event, deadlines, stream, stats   ARGV: event_id, mode, retention_ms
ACTIVATE = _JOIN + """
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return {'unknown'} end
local act = redis.call('HGET', KEYS[1], 'act')
if redis.call('HGET', KEYS[1], 'defer') == '0' or act == '1' then return {'already'} end
if st ~= 'p' then return {'late'} end
redis.call('HSET', KEYS[1], 'act', '1')
redis.call('HINCRBY', KEYS[4], 'activations', 1)
if ARGV[2] == 'first' and redis.call('HGET', KEYS[1], 'n') ~= '0' then
  join(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], redis.call('HGET', KEYS[1], 'r'), 'joined', 'j',
       tonumber(ARGV[3]))
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
  local f = redis.call('HMGET', key, 'st', 'n', 'r', 'defer', 'act')   -- one read, not five
  local st, n = f[1], f[2]
  if st ~= 'p' then
    redis.call('ZREM', KEYS[1], event_id)
  else
    local reward = ARGV[2]
    if n ~= '0' then reward = f[3] end
    local retention = tonumber(ARGV[4])
    if f[4] == '1' and f[5] == '0' then
      join(key, KEYS[1], KEYS[2], KEYS[3], event_id, reward, 'dropped', 'x', retention, now)
    elseif n ~= '0' then
      join(key, KEYS[1], KEYS[2], KEYS[3], event_id, reward, 'joined', 'j', retention, now)
    else
      join(key, KEYS[1], KEYS[2], KEYS[3], event_id, reward, 'defaulted', 'd', retention, now)
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
