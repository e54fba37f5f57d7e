-- Stores a new job and queues it, or neither, after the owner's limits and Redis's
-- memory allow it.
-- KEYS[1] job record   KEYS[2] language queue   KEYS[3] owner's ledger (held)   KEYS[4] owner's rate state
-- KEYS[5] the job's event stream   KEYS[6] the owner's index of recent jobs   KEYS[7] the set where word
-- of the job's end is owed (the callbacks, or a Kafka bridge's outbox; unused when no one is)
-- KEYS[8] owner's ledger (bytes)   KEYS[9] the language's fair-share order   KEYS[10] its tags
-- ARGV[1] job id   ARGV[2] spec (JSON)   ARGV[3] language   ARGV[4] created_at   ARGV[5] max queue depth
-- ARGV[6] owner key id ('' anonymous: KEYS[4] unused)   ARGV[7] jobs per minute (0: no limit)
-- ARGV[8] most queued + running jobs of the owner (0: no limit)
-- ARGV[9] created_at in ms (the recent index's score)   ARGV[10] most jobs the recent index keeps
-- ARGV[11] the job's origin (JSON; '' for none)   ARGV[12] who is owed word of its end (the
-- record's `notify`: 'callback' or 'kafka:<bridge>'; '' for no one), owed in KEYS[7]
-- ARGV[19] when what is owed is first looked at (ms; the job's end makes it due sooner)
-- ARGV[13] the submit span's W3C traceparent ('' for none)
-- ARGV[14] the bytes the job will hold while it waits   ARGV[15] most bytes the owner may hold (0: no limit)
-- ARGV[16] the share of maxmemory (percent) past which no job is stored (0: no check)
-- ARGV[17] most ended holds reclaimed from the ledger in this step
-- ARGV[18] the owner's weight in fair share (1 and up: its jobs go that many times as often)
-- The record keeps the language and the owner, from which every other key of the
-- job follows (keys.rs), and never another key's name.
-- Returns {code, n}: 1 queued; 0 the queue is full; -1 over the rate (retry after n
-- ms); -2 the owner has too many jobs queued or running; -3 the owner holds too
-- many bytes (n: ms until its oldest hold ends, 0 if all are active jobs); -4 the
-- job alone is more than the owner may hold; -5 Redis is at its high-water mark
-- (n: bytes in use).
-- Nothing is written unless 1 is returned (but ended holds reclaimed).
-- Safe to repeat: a job that exists already (a retried call whose first reply was
-- lost) is left as it is, neither reset nor queued twice, and 1 is returned.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {1, 0}
end
local owner = ARGV[6]
local rate = tonumber(ARGV[7])
local new_tat = nil
if owner ~= '' and rate > 0 then
  -- GCRA: up to `rate` jobs at once, then one every 60000/rate ms.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local interval = 60000 / rate
  local tat = tonumber(redis.call('GET', KEYS[4]) or '0')
  if tat < now then tat = now end
  new_tat = tat + interval
  local allowed_at = new_tat - rate * interval
  if allowed_at > now then
    return {-1, math.ceil(allowed_at - now)}
  end
  new_tat = {new_tat, math.ceil(new_tat - now)}
end
if tonumber(ARGV[8]) > 0 and ledger.active(KEYS[3]) >= tonumber(ARGV[8]) then
  return {-2, 0}
end
local size, max_bytes = tonumber(ARGV[14]), tonumber(ARGV[15])
if max_bytes > 0 and size > max_bytes then
  return {-4, 0}
end
local total = ledger.reclaim(KEYS[3], KEYS[8], tonumber(ARGV[17]))
if max_bytes > 0 then
  if total + size > max_bytes then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    return {-3, oldest[2] and math.max(1, math.ceil(tonumber(oldest[2]) - now)) or 0}
  end
end
if tonumber(ARGV[16]) > 0 then
  local info = redis.call('INFO', 'memory')
  local used = tonumber(string.match(info, 'used_memory:(%d+)'))
  local max = tonumber(string.match(info, 'maxmemory:(%d+)'))
  if max > 0 and used + size > max / 100 * tonumber(ARGV[16]) then
    return {-5, used}
  end
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[5]) then
  return {0, 0}
end
if new_tat then
  redis.call('SET', KEYS[4], tostring(math.ceil(new_tat[1])), 'PX', new_tat[2])
end
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'language', ARGV[3], 'status', 'queued',
  'created_at', ARGV[4], 'attempts', 0)
if owner ~= '' then
  redis.call('HSET', KEYS[1], 'owner', owner)
end
ledger.hold(KEYS[3], KEYS[8], ARGV[1], size, '+inf')
redis.call('HSET', KEYS[8], 'quota', max_bytes)
redis.call('LPUSH', KEYS[2], ARGV[1])
-- Its fair-share tag: one weight's step after the owner's last, or after the clock
-- if the owner has had nothing waiting since (fair.lua takes the lowest).
local tag_owner = owner == '' and '-' or owner
local clock = tonumber(redis.call('HGET', KEYS[10], 'clock') or '0')
local tag = math.max(clock, tonumber(redis.call('HGET', KEYS[10], tag_owner) or '0')) + 1 / tonumber(ARGV[18])
redis.call('HSET', KEYS[10], tag_owner, tag)
redis.call('ZADD', KEYS[9], tag, ARGV[1])
if ARGV[11] ~= '' then
  redis.call('HSET', KEYS[1], 'origin', ARGV[11])
end
if ARGV[13] ~= '' then
  redis.call('HSET', KEYS[1], 'traceparent', ARGV[13])
end
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[1], 'notify', ARGV[12])
  redis.call('ZADD', KEYS[7], ARGV[19], ARGV[1])
end
redis.call('XADD', KEYS[5], '*', 'type', 'queued', 'data', cjson.encode({status = 'queued'}))
redis.call('ZADD', KEYS[6], ARGV[9], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(tonumber(ARGV[10]) + 1))
return {1, 0}
