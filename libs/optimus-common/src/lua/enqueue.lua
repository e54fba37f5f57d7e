-- Stores a new job and queues it, or neither, after the owner's limits allow it.
-- KEYS[1] job record   KEYS[2] language queue   KEYS[3] owner's active set   KEYS[4] owner's rate state
-- KEYS[5] the job's event stream   KEYS[6] the owner's index of recent jobs   KEYS[7] the set of callbacks owed
-- ARGV[1] job id   ARGV[2] spec (JSON)   ARGV[3] language   ARGV[4] created_at   ARGV[5] max queue depth
-- ARGV[6] owner key id ('' anonymous: KEYS[3], KEYS[4] unused)   ARGV[7] jobs per minute (0: no limit)
-- ARGV[8] most queued + running jobs of the owner (0: no limit)
-- ARGV[9] created_at in ms (the recent index's score)   ARGV[10] most jobs the recent index keeps
-- ARGV[11] the job's origin (JSON; '' for none)   ARGV[12] '1': a callback is owed (KEYS[7], due now)
-- ARGV[13] the submit span's W3C traceparent ('' for none)
-- The record keeps the language and the owner, from which every other key of the
-- job follows (keys.rs), and never another key's name.
-- Returns {code, retry_after_ms}: 1 queued; 0 the queue is full; -1 over the rate
-- (retry after that many ms); -2 the owner has too many jobs queued or running.
-- Nothing is written unless 1 is returned.
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
if owner ~= '' and tonumber(ARGV[8]) > 0 and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[8]) then
  return {-2, 0}
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
  redis.call('SADD', KEYS[3], ARGV[1])
end
redis.call('LPUSH', KEYS[2], ARGV[1])
if ARGV[11] ~= '' then
  redis.call('HSET', KEYS[1], 'origin', ARGV[11])
end
if ARGV[13] ~= '' then
  redis.call('HSET', KEYS[1], 'traceparent', ARGV[13])
end
if ARGV[12] == '1' then
  redis.call('ZADD', KEYS[7], ARGV[9], ARGV[1])
end
redis.call('XADD', KEYS[5], '*', 'type', 'queued', 'data', cjson.encode({status = 'queued'}))
redis.call('ZADD', KEYS[6], ARGV[9], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(tonumber(ARGV[10]) + 1))
return {1, 0}
