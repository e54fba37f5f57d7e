-- Cancels a job: a queued one leaves its queue at once; a running one gets a marker
-- its worker watches for; a finished one stays as it finished.
-- KEYS[1] job record   KEYS[2] cancel marker
-- ARGV[1] job id   ARGV[2] now   ARGV[3] ttl (seconds)
-- Returns 'missing', 'dequeued' (it was queued and is now cancelled), 'cancelling',
-- or the terminal status the job already had.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return 'missing'
end
if status == 'queued' then
  redis.call('LREM', redis.call('HGET', KEYS[1], 'queue'), 0, ARGV[1])
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 'dequeued'
end
if status == 'running' then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return 'cancelling'
end
return status
