-- Accept one webhook delivery: dedupe by webhook-id and append the event,
-- atomically, so a delivery is either recorded once or not at all.
-- KEYS[1] delivery key, KEYS[2] events stream
-- ARGV[1] dedupe TTL in seconds, ARGV[2..] the event's field/value pairs
-- Returns {1, entry id} for a new delivery, {0, first entry id} for a repeat.
local seen = redis.call('GET', KEYS[1])
if seen then
    return {0, seen}
end

local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[1], id, 'EX', tonumber(ARGV[1]))
return {1, id}
