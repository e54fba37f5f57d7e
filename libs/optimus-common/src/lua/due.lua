-- The jobs of a retry set whose backoff has passed, by Redis's clock (so that the
-- hosts' clocks never decide it). Reads only.
-- KEYS[1] retry set
-- ARGV[1] most ids returned
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
