-- Stores a new job and queues it, or neither.
-- KEYS[1] job record   KEYS[2] language queue
-- ARGV[1] job id   ARGV[2] spec (JSON)   ARGV[3] language   ARGV[4] created_at   ARGV[5] max queue depth
-- Returns 1 when queued, 0 when the queue is full (nothing is written).
-- Safe to repeat: a job that exists already (a retried call whose first reply was
-- lost) is left as it is, neither reset nor queued twice, and 1 is returned.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[5]) then
  return 0
end
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'language', ARGV[3], 'status', 'queued',
  'created_at', ARGV[4], 'attempts', 0, 'queue', KEYS[2])
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
