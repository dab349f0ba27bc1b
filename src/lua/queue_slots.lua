-- Slot accounting of the submission queue. Counting the slots and taking
-- one happen in this one script, so replicas that run it at the same time
-- can never start more than max_concurrent jobs between them.
--
-- queue:pending is the line (score: submission order), queue:slots the
-- jobs that hold a slot (score: when it was taken, ms), queue:slot_users
-- the user id of each slot holder, queue:job:<id> the submission.
-- A slot is taken here and released by apply.lua when the job finishes.
-- This script also takes back slots that no longer belong to a live job:
--   * the job is gone (deleted) or finished;
--   * a claim whose create call never returned (its replica died) goes
--     back in line at its old place after claim expiry ms.
-- It also lists started jobs without news for verify-after ms. The caller
-- asks the provider about them, and fails a job the provider does not
-- know, which frees its slot.
--
-- ARGV[1] key prefix, ARGV[2] mode, ARGV[3] now (ms), then
--   mode 'claim': ARGV[4] max concurrent, ARGV[5] max per user (0: none),
--     ARGV[6] claim expiry (ms), ARGV[7] verify-after (ms), ARGV[8] most
--     claims in one call;
--   mode 'unclaim': ARGV[4] job id, put back in line after a transient
--     provider error.
-- 'claim' returns {claims, verify, slots used, jobs in line, slots freed},
-- claims being {job id, {submission field/value, ...}} pairs and verify
-- {job id, provider id, kind} triples, flat. 'unclaim' returns 1 or 0.
local prefix = ARGV[1]
local now = tonumber(ARGV[3])
local pending = prefix .. 'queue:pending'
local slots = prefix .. 'queue:slots'
local slot_users = prefix .. 'queue:slot_users'
local checked = prefix .. 'queue:checked'
local terminal = {completed = true, failed = true, cancelled = true}

local function release(id)
    redis.call('ZREM', slots, id)
    redis.call('HDEL', slot_users, id)
end

-- Back in line at the place it was given when submitted.
local function requeue(id)
    release(id)
    local seq = redis.call('HGET', prefix .. 'queue:job:' .. id, 'seq')
    redis.call('ZADD', pending, tonumber(seq or '') or now, id)
end

if ARGV[2] == 'unclaim' then
    local id = ARGV[4]
    local f = redis.call('HMGET', prefix .. 'job:' .. id, 'status', 'provider_job_id')
    if redis.call('ZSCORE', slots, id) and f[1] == 'pending' and not f[2] then
        requeue(id)
        return 1
    end
    return 0
end

local max_slots = tonumber(ARGV[4])
local per_user = tonumber(ARGV[5])
local claim_expiry = tonumber(ARGV[6])
local verify_after = tonumber(ARGV[7])
local max_claims = tonumber(ARGV[8])
local freed = 0
local verify = {}

-- Forget check times of jobs that no longer hold a slot (weight 0 keeps ours).
redis.call('ZINTERSTORE', checked, 2, checked, slots, 'WEIGHTS', 1, 0)

local holders = redis.call('ZRANGE', slots, 0, -1, 'WITHSCORES')
for i = 1, #holders, 2 do
    local id, taken_ms = holders[i], tonumber(holders[i + 1])
    local f = redis.call('HMGET', prefix .. 'job:' .. id, 'status', 'provider_job_id',
                         'updated_ms', 'kind')
    if not f[1] or terminal[f[1]] then
        release(id)
        freed = freed + 1
    elseif not f[2] then
        if f[1] == 'pending' and now - taken_ms > claim_expiry then
            requeue(id)
            freed = freed + 1
        end
    else
        local last = math.max(tonumber(f[3] or '') or 0,
                              tonumber(redis.call('ZSCORE', checked, id) or '') or 0, taken_ms)
        if now - last >= verify_after then
            redis.call('ZADD', checked, now, id)
            verify[#verify + 1] = id
            verify[#verify + 1] = f[2]
            verify[#verify + 1] = f[4] or 'training'
        end
    end
end

-- Slots in use, in all and per user.
local used = redis.call('ZCARD', slots)
local by_user = {}
for _, user in ipairs(redis.call('HVALS', slot_users)) do
    by_user[user] = (by_user[user] or 0) + 1
end

-- Claim from the head of the line. A job whose user is at its limit keeps
-- its place, and the jobs of other users behind it may start.
local claims = {}
if used < max_slots and max_claims > 0 then
    for _, id in ipairs(redis.call('ZRANGE', pending, 0, -1)) do
        local status = redis.call('HGET', prefix .. 'job:' .. id, 'status')
        local sub_key = prefix .. 'queue:job:' .. id
        if status ~= 'pending' then
            -- Deleted, cancelled or started by another path: not in line any more.
            redis.call('ZREM', pending, id)
        else
            local user = redis.call('HGET', sub_key, 'user_id') or ''
            if per_user == 0 or user == '' or (by_user[user] or 0) < per_user then
                redis.call('ZREM', pending, id)
                redis.call('ZADD', slots, now, id)
                if user ~= '' then
                    redis.call('HSET', slot_users, id, user)
                    by_user[user] = (by_user[user] or 0) + 1
                end
                used = used + 1
                claims[#claims + 1] = id
                claims[#claims + 1] = redis.call('HGETALL', sub_key)
            end
        end
        if used >= max_slots or #claims >= 2 * max_claims then
            break
        end
    end
end

return {claims, verify, used, redis.call('ZCARD', pending), freed}
