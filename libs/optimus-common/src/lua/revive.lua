-- Gives a dead-lettered job a new set of attempts: it leaves the dead-letter list
-- and goes to the front of its queue, its attempt log kept.
-- KEYS[1] job record   KEYS[2] the language's dead-letter list
-- ARGV[1] job id
-- Returns 'requeued', 'missing' (the record expired; the id is dropped from the
-- list), or the status of a job that is not failed (it is dropped from the list too).
redis.call('LREM', KEYS[2], 0, ARGV[1])
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return 'missing'
end
if status ~= 'failed' then
  return status
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0)
redis.call('HDEL', KEYS[1], 'error', 'finished_at', 'worker', 'started_at', 'retry_at_ms')
redis.call('PERSIST', KEYS[1])
local active = redis.call('HGET', KEYS[1], 'active')
if active then redis.call('SADD', active, ARGV[1]) end
redis.call('RPUSH', redis.call('HGET', KEYS[1], 'queue'), ARGV[1])
local events = redis.call('HGET', KEYS[1], 'events')
if events then
  redis.call('PERSIST', events)
  redis.call('XADD', events, '*', 'type', 'requeued', 'data', cjson.encode({status = 'queued', reason = 'retried by an operator'}))
end
return 'requeued'
