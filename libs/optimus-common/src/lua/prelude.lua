-- What several scripts share, prepended to every one (the keys it touches arrive
-- in KEYS like any other).
--
-- The ledger of what an owner holds in the store. `held` is a sorted set of the owner's jobs,
-- each scored by when its hold ends (ms; '+inf' while it is queued or running);
-- `bytes` a hash of the bytes each one holds, with their sum in 'total'.
local ledger = {}

-- Job `id` holds `bytes` until `until_ms` ('+inf': while it is active).
function ledger.hold(held, bytes, id, size, until_ms)
  local old = tonumber(redis.call('HGET', bytes, id) or '0')
  redis.call('HSET', bytes, id, size)
  redis.call('HINCRBY', bytes, 'total', size - old)
  redis.call('ZADD', held, until_ms, id)
end

-- Job `id` is over: what it keeps (its record, result and events, measured) is
-- held until they expire, `ttl` seconds from now.
function ledger.settle(held, bytes, id, ttl, ...)
  local size = 0
  for _, key in ipairs({...}) do
    size = size + (redis.call('MEMORY', 'USAGE', key) or 0)
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  ledger.hold(held, bytes, id, size, now + tonumber(ttl) * 1000)
end

-- Drops the holds that ended before now (up to `max` of them, so that a script's
-- work stays bounded); returns the total after.
function ledger.reclaim(held, bytes, max)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local ended = redis.call('ZRANGEBYSCORE', held, '-inf', now, 'LIMIT', 0, max)
  if #ended > 0 then
    local freed = 0
    for _, size in ipairs(redis.call('HMGET', bytes, unpack(ended))) do
      freed = freed + (tonumber(size) or 0)
    end
    redis.call('HDEL', bytes, unpack(ended))
    redis.call('ZREM', held, unpack(ended))
    redis.call('HINCRBY', bytes, 'total', -freed)
  end
  return tonumber(redis.call('HGET', bytes, 'total') or '0')
end

-- Word of job `id`'s end is due now in `set` (a job's `owed` key, nil when no one
-- is owed it): whoever delivers it (a callback, a Kafka result) takes it next.
-- XX: only what the enqueue made owed, and not yet delivered.
function ledger.owed_due(set, id)
  if set then redis.call('ZADD', set, 'XX', 0, id) end
end

-- How many of the owner's jobs are queued or running.
function ledger.active(held)
  return redis.call('ZCOUNT', held, '+inf', '+inf')
end

-- The fair-share order of a language's queued jobs (fair.lua takes from it).
local fair = {}

-- Puts queued job `id` at the front of the order (a job given back goes first):
-- its tag is the clock.
function fair.first(order, tags, id)
  redis.call('ZADD', order, tonumber(redis.call('HGET', tags, 'clock') or '0'), id)
end

