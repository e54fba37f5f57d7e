-- Gives a job back to its queue after its worker died or its engine failed, or
-- fails it once it has used its attempts. A job whose cancel was pending ends cancelled.
-- KEYS[1] job record   KEYS[2] the processing list it sits in   KEYS[3] cancel marker
-- ARGV[1] job id   ARGV[2] max attempts   ARGV[3] reason   ARGV[4] now   ARGV[5] ttl (seconds)
-- ARGV[6] '1' when the attempt does not count (the platform failed, not the job)
-- Returns 'requeued', 'failed', 'cancelled', or 'gone' (someone else already moved it).
if redis.call('LREM', KEYS[2], 0, ARGV[1]) == 0 then
  return 'gone'
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' then
  return 'gone'
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[4])
  redis.call('DEL', KEYS[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 'cancelled'
end
if ARGV[6] == '1' and status == 'running' then
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[4],
    'error', ARGV[3] .. ' (gave up after ' .. attempts .. ' attempts)')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 'failed'
end
redis.call('HSET', KEYS[1], 'status', 'queued')
redis.call('HDEL', KEYS[1], 'worker', 'started_at')
-- The right end is popped next: a recovered job goes first.
redis.call('RPUSH', redis.call('HGET', KEYS[1], 'queue'), ARGV[1])
return 'requeued'
