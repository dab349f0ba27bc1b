-- Housekeeping of the events stream, run now and then by any replica:
--   * trim entries below the oldest one still pending or undelivered, never
--     by a blind MAXLEN, because a trimmed pending entry would come back
--     from XAUTOCLAIM with no fields;
--   * delete consumers of dead processes, but only once their pending list
--     is empty, since deleting a consumer drops its pending entries.
-- KEYS[1] events stream. ARGV[1] group, ARGV[2] idle ms after which an
-- empty consumer is deleted. Returns {entries trimmed, consumers deleted}.
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {0, 0}
end

local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then
    return {0, 0}
end

local last_delivered = nil
for _, g in ipairs(groups) do
    local info = {}
    for i = 1, #g, 2 do
        info[g[i]] = g[i + 1]
    end
    if info.name == ARGV[1] then
        last_delivered = info['last-delivered-id']
    end
end
if last_delivered == nil then
    return {0, 0}
end

local minid = last_delivered
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
if tonumber(summary[1]) > 0 then
    minid = summary[2]
end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', minid)

local deleted = 0
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
    local info = {}
    for i = 1, #c, 2 do
        info[c[i]] = c[i + 1]
    end
    if tonumber(info.pending) == 0 and tonumber(info.idle) > tonumber(ARGV[2]) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info.name)
        deleted = deleted + 1
    end
end
return {trimmed, deleted}
