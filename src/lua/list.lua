-- List jobs newest first with the exact number of matches.
-- ARGV[1] key prefix, ARGV[2] offset, ARGV[3] limit, ARGV[4] provider or '',
-- ARGV[5] comma-separated statuses or '', ARGV[6] a unique temporary key
-- suffix. Returns {total, job1 flat fields, job2 flat fields, ...}.
-- A job named by an index but whose hash is gone (deleted between the two
-- reads is impossible inside a script, but an index repaired by hand may
-- lag) is skipped.
local prefix = ARGV[1]
local offset = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local provider = ARGV[4]

local statuses = {}
for s in string.gmatch(ARGV[5], '[^,]+') do
    statuses[#statuses + 1] = prefix .. 'idx:status:' .. s
end

local source = prefix .. 'idx:all'
local temp = nil
if #statuses == 1 and provider == '' then
    source = statuses[1]
elseif #statuses == 0 and provider ~= '' then
    source = prefix .. 'idx:provider:' .. provider
elseif #statuses > 0 then
    temp = prefix .. 'tmp:list:' .. ARGV[6]
    redis.call('ZUNIONSTORE', temp, #statuses, unpack(statuses))
    if provider ~= '' then
        -- Weight 0 keeps the created_at score of the status index.
        redis.call('ZINTERSTORE', temp, 2, temp, prefix .. 'idx:provider:' .. provider,
                   'WEIGHTS', 1, 0)
    end
    source = temp
end

local total = redis.call('ZCARD', source)
local ids = redis.call('ZREVRANGE', source, offset, offset + limit - 1)
if temp then
    redis.call('DEL', temp)
end

local out = {total}
for _, id in ipairs(ids) do
    local job = redis.call('HGETALL', prefix .. 'job:' .. id)
    if #job > 0 then
        out[#out + 1] = job
    end
end
return out
