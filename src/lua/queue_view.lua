-- The state behind GET /api/cloud/queue, read at one instant: the line in
-- order, the jobs that hold slots, the leader and its record of its last
-- round.
-- ARGV[1] key prefix, ARGV[2] how many jobs in line to list at most.
-- Returns {line, jobs in line, holders, leader or '', {field, value, ...}};
-- line is {job id, user id, model, destination, created_at} per job and
-- holders {job id, status, provider id, user id, taken (ms)} per slot,
-- flat, with '' for a missing value.
local prefix = ARGV[1]
local pending = prefix .. 'queue:pending'
local line, holders = {}, {}

for _, id in ipairs(redis.call('ZRANGE', pending, 0, tonumber(ARGV[2]) - 1)) do
    local f = redis.call('HMGET', prefix .. 'job:' .. id, 'user_id', 'model', 'destination',
                         'created_at')
    line[#line + 1] = id
    for i = 1, 4 do
        line[#line + 1] = f[i] or ''
    end
end

local slots = redis.call('ZRANGE', prefix .. 'queue:slots', 0, -1, 'WITHSCORES')
for i = 1, #slots, 2 do
    local id = slots[i]
    local f = redis.call('HMGET', prefix .. 'job:' .. id, 'status', 'provider_job_id', 'user_id')
    holders[#holders + 1] = id
    for k = 1, 3 do
        holders[#holders + 1] = f[k] or ''
    end
    holders[#holders + 1] = slots[i + 1]
end

return {line, redis.call('ZCARD', pending), holders,
        redis.call('GET', prefix .. 'queue:leader') or '',
        redis.call('HGETALL', prefix .. 'queue:status')}
