-- The active jobs one poller tick requests from the provider, with the kind
-- of each (it picks the endpoint).
-- ARGV[1] key prefix, ARGV[2] now (ms), ARGV[3] stale-after (ms), ARGV[4]
-- how many at most.
-- With stale-after 0 every active job is returned (polling is on).
-- Otherwise only jobs without a visible change for that long, and not
-- checked for that long either: the check time goes into a sorted set, so
-- an unchanged job is asked about once per period, not on every tick, and
-- any replica that takes over the lease continues where the last one was.
-- A job submitted through the queue is asked about by its provider id,
-- and not at all before it has one (it has not started).
-- Returns {provider job id, kind or '', ...}.
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local stale = tonumber(ARGV[3])
local active = prefix .. 'idx:active'
local checked = prefix .. 'poller:checked'
local ids = redis.call('ZREVRANGE', active, 0, tonumber(ARGV[4]) - 1)
local out = {}

if stale > 0 then
    -- Forget jobs that finished or were deleted (weight 0 keeps our scores).
    redis.call('ZINTERSTORE', checked, 2, checked, active, 'WEIGHTS', 1, 0)
end

for _, id in ipairs(ids) do
    local f = redis.call('HMGET', prefix .. 'job:' .. id, 'kind', 'updated_ms', 'created_ms',
                         'provider_job_id', 'submitted')
    local started = f[5] ~= '1' or f[4]
    local due = started and stale == 0
    if started and not due then
        local last = tonumber(f[2] or '') or tonumber(f[3] or '') or 0
        local seen = tonumber(redis.call('ZSCORE', checked, id) or '') or 0
        if seen > last then
            last = seen
        end
        due = now - last >= stale
        if due then
            redis.call('ZADD', checked, now, id)
        end
    end
    if due then
        out[#out + 1] = f[4] or id
        out[#out + 1] = f[1] or ''
    end
end
return out
