-- Chooses the job a worker takes, fairly between owners, after its BLMOVE moved
-- the longest-waiting id X from the queue to its processing list.
-- Start-time fair queuing: each queued job has a tag in the order set (enqueue.lua:
-- its owner's last tag, or the clock if that is behind, plus 1/weight), and the
-- lowest tag goes next; the clock follows the tags taken. A key with 10,000 jobs
-- waiting has tags far ahead of the clock, so another key's new job (tagged
-- clock + 1) goes before all but about one of them.
-- KEYS[1] the language's queue   KEYS[2] the worker's processing list
-- KEYS[3] the language's order set   KEYS[4] the language's tags
-- ARGV[1] X
-- Returns the id the worker claims: X, or the job whose turn it is (which then
-- takes X's place on the processing list, X going back to the queue's right end,
-- next to be popped). An id of the order set no longer queued (a stale entry) is
-- dropped; with no order at all (jobs queued before fair share) X is taken.
-- An X without a tag is taken too: it was queued before fair share, or another
-- worker's pop ran between this one's BLMOVE and this script, found X's tag the
-- lowest and X not on the queue, and dropped it as stale, so X's turn is now.
-- (Swapping such an X back would leave it queued without a tag, passed over by
-- every pop while other jobs wait: lost behind a flood.)
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return ARGV[1]
end
for _ = 1, 16 do
  local head = redis.call('ZPOPMIN', KEYS[3])
  if #head == 0 then
    return ARGV[1]
  end
  local id, tag = head[1], tonumber(head[2])
  if tag > tonumber(redis.call('HGET', KEYS[4], 'clock') or '0') then
    redis.call('HSET', KEYS[4], 'clock', head[2])
  end
  if id == ARGV[1] then
    return id
  end
  if redis.call('LREM', KEYS[1], 1, id) == 1 then
    redis.call('LREM', KEYS[2], 1, ARGV[1])
    redis.call('LPUSH', KEYS[2], id)
    redis.call('RPUSH', KEYS[1], ARGV[1])
    return id
  end
end
return ARGV[1]
