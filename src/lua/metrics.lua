-- The dashboard metrics' inputs, in one round trip and without scanning
-- jobs: the daily totals apply.lua keeps for each requested day, and how
-- many jobs created since the period began are still active.
-- ARGV[1] key prefix, ARGV[2] period start (ms), ARGV[3..] days
-- (YYYY-MM-DD), oldest first.
-- Returns {{pending, uploading, queued, running}, {day, {field, value,
-- ...}, ...}} with only the days that have totals.
local prefix = ARGV[1]
local active = {}
for _, s in ipairs({'pending', 'uploading', 'queued', 'running'}) do
    active[#active + 1] = redis.call('ZCOUNT', prefix .. 'idx:status:' .. s, ARGV[2], '+inf')
end
local days = {}
for i = 3, #ARGV do
    local totals = redis.call('HGETALL', prefix .. 'daily:' .. ARGV[i])
    if #totals > 0 then
        days[#days + 1] = ARGV[i]
        days[#days + 1] = totals
    end
end
return {active, days}
