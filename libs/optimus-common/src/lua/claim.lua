-- Marks a job that a worker has just moved to its processing list as running there.
-- KEYS[1] job record   KEYS[2] the worker's processing list
-- ARGV[1] job id   ARGV[2] worker id   ARGV[3] now
-- Returns {spec, attempt, created_at}, or false when the job is no longer runnable (cancelled
-- while queued, taken by another worker, or gone); it is then dropped from the list.
-- A `running` event (with the attempt) goes on the job's event stream.
-- Safe to repeat: the same worker claiming it again (a retried call whose first
-- reply was lost) gets the spec back, and nothing changes.
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'running' and redis.call('HGET', KEYS[1], 'worker') == ARGV[2] then
  return {redis.call('HGET', KEYS[1], 'spec'), tonumber(redis.call('HGET', KEYS[1], 'attempts')),
    redis.call('HGET', KEYS[1], 'created_at')}
end
if status ~= 'queued' then
  redis.call('LREM', KEYS[2], 0, ARGV[1])
  return false
end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3], 'worker', ARGV[2])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local events = redis.call('HGET', KEYS[1], 'events')
if events then
  redis.call('XADD', events, '*', 'type', 'running', 'data', cjson.encode({status = 'running', attempt = attempt}))
end
return {redis.call('HGET', KEYS[1], 'spec'), attempt, redis.call('HGET', KEYS[1], 'created_at')}
