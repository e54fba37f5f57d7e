-- Moves the jobs of a retry set whose time has come to the front of their queue.
-- KEYS[1] retry set   KEYS[2] queue
-- ARGV[1] job record key prefix   ARGV[2] most jobs moved in one call
-- Returns how many were moved. A job cancelled while it waited is only dropped.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local job = ARGV[1] .. id
  if redis.call('HGET', job, 'status') == 'queued' then
    redis.call('HDEL', job, 'retry_at_ms')
    redis.call('RPUSH', KEYS[2], id)
    moved = moved + 1
  end
end
return moved
