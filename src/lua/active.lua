-- List active jobs, most recently created first, with the kind of each,
-- so a refresh can choose the Replicate endpoint to call.
-- ARGV[1] key prefix, ARGV[2] how many at most.
-- Returns {job_id, kind or '', job_id, kind or '', ...}.
local prefix = ARGV[1]
local ids = redis.call('ZREVRANGE', prefix .. 'idx:active', 0, tonumber(ARGV[2]) - 1)
local out = {}
for _, id in ipairs(ids) do
    local kind = redis.call('HGET', prefix .. 'job:' .. id, 'kind')
    out[#out + 1] = id
    out[#out + 1] = kind or ''
end
return out
