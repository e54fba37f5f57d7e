-- Moves jobs of a retry set whose time has come to the front of their queue: the
-- ids due.lua found, each re-checked here (still in the set, still due), since
-- either may have changed between the two calls.
-- KEYS[1] retry set   KEYS[2] queue   KEYS[3] the fair-share order   KEYS[4] its tags
-- KEYS[4 + i] the record of job i
-- ARGV[i] the id of job i
-- Returns how many were moved. A job cancelled while it waited is only dropped.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local moved = 0
for i, id in ipairs(ARGV) do
  local due = redis.call('ZSCORE', KEYS[1], id)
  if due and tonumber(due) <= now then
    redis.call('ZREM', KEYS[1], id)
    local job = KEYS[4 + i]
    if redis.call('HGET', job, 'status') == 'queued' then
      redis.call('HDEL', job, 'retry_at_ms')
      redis.call('RPUSH', KEYS[2], id)
      fair.first(KEYS[3], KEYS[4], id)
      moved = moved + 1
    end
  end
end
return moved
