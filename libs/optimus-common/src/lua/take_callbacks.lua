-- Leases the callbacks that are due: each is pushed to the lease's end, so that
-- another API process takes it only if this one dies before settling it.
-- KEYS[1] the set of callbacks owed
-- ARGV[1] now (ms)   ARGV[2] the lease's end (ms)   ARGV[3] most callbacks taken
-- Returns the ids taken.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return due
