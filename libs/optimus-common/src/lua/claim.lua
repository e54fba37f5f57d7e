-- Marks a job that a worker has just moved to its processing list as running there.
-- KEYS[1] job record   KEYS[2] the worker's processing list   KEYS[3] the job's event stream
-- ARGV[1] job id   ARGV[2] worker id   ARGV[3] now
-- Returns {spec, attempt, created_at, owner, traceparent, notify} (the last three
-- false when the job has none), or false when the job is no longer runnable (cancelled while
-- queued, taken by another worker, or gone); it is then dropped from the list.
-- A `running` event (with the attempt) goes on the job's event stream.
-- Safe to repeat: the same worker claiming it again (a retried call whose first
-- reply was lost) gets the same answer back, and nothing changes.
local function claimed(attempt)
  local spec, created, owner, traceparent, notify =
    unpack(redis.call('HMGET', KEYS[1], 'spec', 'created_at', 'owner', 'traceparent', 'notify'))
  return {spec, attempt, created, owner, traceparent, notify}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'running' and redis.call('HGET', KEYS[1], 'worker') == ARGV[2] then
  return claimed(tonumber(redis.call('HGET', KEYS[1], 'attempts')))
end
if status ~= 'queued' then
  redis.call('LREM', KEYS[2], 0, ARGV[1])
  return false
end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3], 'worker', ARGV[2])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('XADD', KEYS[3], '*', 'type', 'running', 'data', cjson.encode({status = 'running', attempt = attempt}))
return claimed(attempt)
