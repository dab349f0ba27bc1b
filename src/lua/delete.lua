-- Delete a finished job from the store: its hash and every index entry,
-- atomically, so a list never names a job whose hash is gone. Active jobs
-- are refused here, not only by the caller, because a webhook may have
-- moved the job between the caller's read and this script.
-- A job_deleted change record lets the browsers on every replica drop the job.
--
-- KEYS[1] change stream
-- ARGV[1] key prefix, ARGV[2] job id, ARGV[3] now (ISO 8601),
-- ARGV[4] change stream MAXLEN.
-- Returns {1, status} when deleted, {0, ''} for an unknown job and
-- {-1, status} for a job that is still active.
local prefix = ARGV[1]
local id = ARGV[2]
local job_key = prefix .. 'job:' .. id
local terminal = {completed = true, failed = true, cancelled = true}

local status = redis.call('HGET', job_key, 'status')
if not status then
    return {0, ''}
end
if not terminal[status] then
    return {-1, status}
end

local provider = redis.call('HGET', job_key, 'provider') or 'replicate'
local provider_id = redis.call('HGET', job_key, 'provider_job_id')
redis.call('DEL', job_key)
-- A submitted job also leaves its alias and submission (its slot and
-- place in line went when it finished).
if provider_id then
    redis.call('DEL', prefix .. 'alias:' .. provider_id)
end
-- A tombstone keeps a sync or a late delivery from bringing the job back:
-- Replicate still lists it. 30 days outlasts the 100 newest jobs a sync
-- reads for any team that deletes jobs.
local tombstone_s = 30 * 86400
redis.call('SET', prefix .. 'deleted:' .. id, '1', 'EX', tombstone_s)
if provider_id then
    redis.call('SET', prefix .. 'deleted:' .. provider_id, '1', 'EX', tombstone_s)
end
redis.call('DEL', prefix .. 'queue:job:' .. id)
redis.call('ZREM', prefix .. 'idx:all', id)
redis.call('ZREM', prefix .. 'idx:status:' .. status, id)
redis.call('ZREM', prefix .. 'idx:provider:' .. provider, id)
redis.call('ZREM', prefix .. 'idx:active', id)

local data = cjson.encode({
    type = 'job_deleted',
    job_id = id,
    provider = provider,
    status = status,
    updated_at = ARGV[3],
})
redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
           'job_id', id, 'status', status, 'data', data)
return {1, status}
