-- Cancels a job: a queued one (or one waiting for a retry) leaves its queue at once;
-- a running one gets a marker its worker watches for; a finished one stays as it finished.
-- KEYS[1] job record   KEYS[2] cancel marker
-- ARGV[1] job id   ARGV[2] now   ARGV[3] ttl (seconds)   ARGV[4] the caller's key id ('' anonymous)
-- Returns 'missing' (also when the job belongs to another key), 'dequeued' (it was
-- queued and is now cancelled), 'cancelling', or the terminal status the job already had.
local status, owner = unpack(redis.call('HMGET', KEYS[1], 'status', 'owner'))
if not status or (owner and owner ~= ARGV[4]) then
  return 'missing'
end
if status == 'queued' then
  redis.call('LREM', redis.call('HGET', KEYS[1], 'queue'), 0, ARGV[1])
  local retry_set = redis.call('HGET', KEYS[1], 'retry_set')
  if retry_set then redis.call('ZREM', retry_set, ARGV[1]) end
  local active = redis.call('HGET', KEYS[1], 'active')
  if active then redis.call('SREM', active, ARGV[1]) end
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'retry_at_ms')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  local events = redis.call('HGET', KEYS[1], 'events')
  if events then
    redis.call('XADD', events, '*', 'type', 'cancelled', 'data', cjson.encode({status = 'cancelled'}))
    redis.call('EXPIRE', events, ARGV[3])
  end
  return 'dequeued'
end
if status == 'running' then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return 'cancelling'
end
return status
