-- List active jobs, most recently created first, with the kind of each,
-- so a refresh can choose the Replicate endpoint to call. A job submitted
-- through the queue is listed by its provider id, and not at all before
-- it has one (it has not started).
-- ARGV[1] key prefix, ARGV[2] how many at most.
-- Returns {provider job id, kind or '', ...}.
local prefix = ARGV[1]
local ids = redis.call('ZREVRANGE', prefix .. 'idx:active', 0, tonumber(ARGV[2]) - 1)
local out = {}
for _, id in ipairs(ids) do
    local f = redis.call('HMGET', prefix .. 'job:' .. id, 'kind', 'provider_job_id', 'submitted')
    if f[3] ~= '1' or f[2] then
        out[#out + 1] = f[2] or id
        out[#out + 1] = f[1] or ''
    end
end
return out
