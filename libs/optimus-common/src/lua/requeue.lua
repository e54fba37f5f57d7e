-- Gives a job back after its worker died or failed to judge it, or fails it once it
-- has used its attempts (its id then goes on its language's dead-letter list). A
-- counted hand-back waits in the retry set for an exponential backoff with jitter,
-- so that a job that fails every time cannot spin; an uncounted one (the platform
-- failed, not the job) goes straight back to the front of its queue. A job whose
-- cancel was pending ends cancelled.
-- KEYS[1] job record   KEYS[2] the processing list it sits in   KEYS[3] cancel marker
-- KEYS[4] the heartbeat key of the worker it is taken from   KEYS[5] the language's queue
-- KEYS[6] the language's retry set   KEYS[7] the language's dead-letter list
-- KEYS[8] the owner's ledger (held)   KEYS[9] the job's event stream   KEYS[10] the owner's ledger (bytes)
-- KEYS[11] the language's fair-share order   KEYS[12] its tags
-- KEYS[13] where word of the job's end is owed (absent: nowhere)
-- ARGV[1] job id   ARGV[2] max attempts   ARGV[3] reason   ARGV[4] now   ARGV[5] ttl (seconds)
-- ARGV[6] '1' when the attempt does not count   ARGV[7] '1' to hand back only if that
-- worker is dead (fencing: a peer recovering it re-checks in this same step)
-- ARGV[8] backoff base (ms)   ARGV[9] backoff cap (ms)   ARGV[10] jitter, a number in [0, 1)
-- Returns 'requeued', 'delayed', 'failed', 'cancelled', 'alive' (its worker beats
-- again; nothing changed), or 'gone' (someone else already moved it).
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  return 'alive'
end
if redis.call('LREM', KEYS[2], 0, ARGV[1]) == 0 then
  return 'gone'
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' then
  return 'gone'
end
-- Appends an event; a terminal one starts the stream's expiry with the job's.
local function event(kind, data, terminal)
  redis.call('XADD', KEYS[9], '*', 'type', kind, 'data', cjson.encode(data))
  if terminal then redis.call('EXPIRE', KEYS[9], ARGV[5]) end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[4])
  redis.call('DEL', KEYS[3])
  redis.call('HDEL', KEYS[1], 'spec')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  event('cancelled', {status = 'cancelled'}, true)
  ledger.settle(KEYS[8], KEYS[10], ARGV[1], ARGV[5], KEYS[1], KEYS[9])
  ledger.owed_due(KEYS[13], ARGV[1])
  return 'cancelled'
end
local uncounted = ARGV[6] == '1'
if uncounted and status == 'running' then
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if not uncounted then
  -- Each counted attempt's error is kept on the job.
  local log = cjson.decode(redis.call('HGET', KEYS[1], 'attempt_errors') or '[]')
  table.insert(log, {attempt = attempts, error = ARGV[3], at = ARGV[4]})
  redis.call('HSET', KEYS[1], 'attempt_errors', cjson.encode(log))
end
if attempts >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[4],
    'error', ARGV[3] .. ' (gave up after ' .. attempts .. ' attempts)')
  redis.call('HDEL', KEYS[1], 'worker')
  redis.call('LPUSH', KEYS[7], ARGV[1])
  -- Bounded: the newest 100,000 ids (about 5 MB); their records expire with their TTL.
  redis.call('LTRIM', KEYS[7], 0, 99999)
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  event('failed', {status = 'failed', attempts = attempts, error = ARGV[3]}, true)
  -- A dead letter keeps its spec (an operator may revive it), and holds it.
  ledger.settle(KEYS[8], KEYS[10], ARGV[1], ARGV[5], KEYS[1], KEYS[9])
  ledger.owed_due(KEYS[13], ARGV[1])
  return 'failed'
end
redis.call('HSET', KEYS[1], 'status', 'queued')
redis.call('HDEL', KEYS[1], 'worker', 'started_at')
if uncounted or attempts < 1 then
  -- The right end is popped next: a recovered job goes first.
  redis.call('RPUSH', KEYS[5], ARGV[1])
  fair.first(KEYS[11], KEYS[12], ARGV[1])
  event('requeued', {status = 'queued', attempts = attempts, reason = ARGV[3], counted = not uncounted}, false)
  return 'requeued'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Equal jitter: half the backoff is fixed, half random, so retries spread out.
local backoff = math.min(tonumber(ARGV[9]), tonumber(ARGV[8]) * 2 ^ (attempts - 1))
local due = now + math.floor(backoff / 2 + backoff / 2 * tonumber(ARGV[10]))
redis.call('ZADD', KEYS[6], due, ARGV[1])
redis.call('HSET', KEYS[1], 'retry_at_ms', due)
event('requeued', {status = 'queued', attempts = attempts, reason = ARGV[3], counted = true, retry_at_ms = due}, false)
return 'delayed'
