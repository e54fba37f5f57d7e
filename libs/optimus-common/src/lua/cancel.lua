-- Cancels a job: a queued one (or one waiting for a retry) leaves its queue at once;
-- a running one gets a marker its worker watches for; a finished one stays as it finished.
-- KEYS[1] job record   KEYS[2] cancel marker   KEYS[3] the language's queue
-- KEYS[4] the language's retry set   KEYS[5] the caller's ledger (held)   KEYS[6] the job's event stream
-- KEYS[7] the caller's ledger (bytes)   KEYS[8] the language's fair-share order
-- KEYS[9] where word of the job's end is owed (absent: nowhere)
-- ARGV[1] job id   ARGV[2] now   ARGV[3] ttl (seconds)   ARGV[4] the caller's key id ('' anonymous)
-- Returns 'missing' (also when the job belongs to another key), 'dequeued' (it was
-- queued and is now cancelled), 'cancelling', or the terminal status the job already had.
-- A job cancelled while queued keeps no spec: nothing will run it, and no answer shows it.
local status, owner = unpack(redis.call('HMGET', KEYS[1], 'status', 'owner'))
if not status or (owner and owner ~= ARGV[4]) then
  return 'missing'
end
if status == 'queued' then
  redis.call('LREM', KEYS[3], 0, ARGV[1])
  redis.call('ZREM', KEYS[8], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2])
  redis.call('HDEL', KEYS[1], 'retry_at_ms', 'spec')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('XADD', KEYS[6], '*', 'type', 'cancelled', 'data', cjson.encode({status = 'cancelled'}))
  redis.call('EXPIRE', KEYS[6], ARGV[3])
  -- The job is the caller's own (checked above): KEYS[5] and KEYS[7] are its owner's ledger.
  ledger.settle(KEYS[5], KEYS[7], ARGV[1], ARGV[3], KEYS[1], KEYS[6])
  ledger.owed_due(KEYS[9], ARGV[1])
  return 'dequeued'
end
if status == 'running' then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return 'cancelling'
end
return status
