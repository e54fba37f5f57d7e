-- Gives a dead-lettered job a new set of attempts: it leaves the dead-letter list
-- and goes to the front of its queue, its attempt log kept.
-- KEYS[1] job record   KEYS[2] the language's dead-letter list   KEYS[3] the language's queue
-- KEYS[4] the owner's ledger (held)   KEYS[5] the job's event stream   KEYS[6] the owner's ledger (bytes)
-- KEYS[7] the language's fair-share order   KEYS[8] its tags
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
-- Active again: it holds what it held, until it ends again.
ledger.hold(KEYS[4], KEYS[6], ARGV[1], tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '0'), '+inf')
redis.call('RPUSH', KEYS[3], ARGV[1])
fair.first(KEYS[7], KEYS[8], ARGV[1])
redis.call('PERSIST', KEYS[5])
redis.call('XADD', KEYS[5], '*', 'type', 'requeued', 'data', cjson.encode({status = 'queued', reason = 'retried by an operator'}))
return 'requeued'
