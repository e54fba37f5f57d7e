-- Records how a job ended and takes it off its worker's processing list, together.
-- KEYS[1] job record   KEYS[2] result   KEYS[3] the worker's processing list   KEYS[4] cancel marker
-- KEYS[5] the owner's ledger (held)   KEYS[6] the job's event stream   KEYS[7] the owner's ledger (bytes)
-- KEYS[8] where word of the job's end is owed (absent: nowhere)
-- ARGV[1] job id   ARGV[2] worker id   ARGV[3] terminal status   ARGV[4] result JSON ('' for none)
-- ARGV[5] error ('' for none)   ARGV[6] now   ARGV[7] ttl (seconds)
-- ARGV[8] the terminal event's data (JSON: the status and the result's summary,
-- also kept on the record for the job list)   ARGV[9] the spec to keep, without
-- what no answer needs ('' keeps it whole)
-- The job's hold becomes what it keeps (record, result, events, measured) until they expire.
-- Returns 1, or 0 when this worker no longer owns the job (it was recovered meanwhile).
-- Safe to repeat: a finish that already ran for this worker (a retried call whose
-- reply was lost) returns 1 again and changes nothing.
redis.call('LREM', KEYS[3], 0, ARGV[1])
local status, worker = unpack(redis.call('HMGET', KEYS[1], 'status', 'worker'))
if status == ARGV[3] and worker == ARGV[2] then
  return 1
end
if status ~= 'running' or worker ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'finished_at', ARGV[6])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'error', ARGV[5])
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[7])
end
redis.call('DEL', KEYS[4])
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'spec', ARGV[9])
end
if ARGV[4] ~= '' then
  local summary = cjson.decode(ARGV[8])['summary']
  if summary and summary ~= cjson.null then redis.call('HSET', KEYS[1], 'summary', cjson.encode(summary)) end
end
redis.call('XADD', KEYS[6], '*', 'type', ARGV[3], 'data', ARGV[8])
redis.call('EXPIRE', KEYS[6], ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[7])
ledger.settle(KEYS[5], KEYS[7], ARGV[1], ARGV[7], KEYS[1], KEYS[2], KEYS[6])
ledger.owed_due(KEYS[8], ARGV[1])
return 1
