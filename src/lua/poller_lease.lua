-- The poller's leader lease and the polling override, read together so
-- every replica decides from the same state. A replica that wants the
-- lease (polling is on, or the stale-job check is) renews it when it holds
-- it and takes it when no replica does; one that no longer wants it, or is
-- stopping, gives it back so another can take over at once.
-- KEYS[1] leader key, KEYS[2] override key
-- ARGV[1] replica id, ARGV[2] lease ms, ARGV[3] polling on by configuration
-- (0/1), ARGV[4] stale check on (0/1), ARGV[5] 1 when stopping.
-- Returns {override ('' when automatic), polling on (0/1), leader or ''}.
local override = redis.call('GET', KEYS[2]) or ''
local enabled = ARGV[3]
if override == '0' or override == '1' then
    enabled = override
end
local want = (enabled == '1' or ARGV[4] == '1') and ARGV[5] ~= '1'
local leader = redis.call('GET', KEYS[1])
if leader == ARGV[1] then
    if want then
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
    else
        redis.call('DEL', KEYS[1])
        leader = false
    end
elseif not leader and want then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    leader = ARGV[1]
end
return {override, tonumber(enabled), leader or ''}
