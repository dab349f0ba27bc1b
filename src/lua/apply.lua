-- Apply normalised status events to their jobs. This script is the only
-- code that changes a job record, so every merge rule lives here:
--   * status only moves forward (pending < uploading < queued < running <
--     terminal) and a terminal status never changes;
--   * created_at, started_at and completed_at keep their first value;
--   * stage, progress and last_log only come from logs at least as long as
--     the ones already stored, so a late delivery cannot rewind them;
--   * a visible change bumps revision, updates the indexes and appends one
--     record to the change stream.
--   * the daily totals behind GET /api/cloud/metrics (`daily:<YYYY-MM-DD>`,
--     by the UTC day the job was created) count a job when it is created
--     and when it finishes, and follow every change of its cost, so the
--     metrics never scan jobs.
--   * jobs submitted through the queue keep their local id: an event that
--     names the provider's id is applied to the local job its alias
--     (`alias:<provider id>`) or its `local_job_id` field points at;
--   * the queue follows the job: a pending job shows its place in line
--     (`queue_position`), a job that leaves pending leaves the line, and a
--     finished one frees its slot, whichever path brought the news.
-- An events-stream entry is acknowledged in the same script that applies
-- it, so a crash between apply and ack cannot apply it twice.
--
-- KEYS[1] change stream, KEYS[2] events stream
-- ARGV[1] key prefix, ARGV[2] now (ISO 8601), ARGV[3] now (ms),
-- ARGV[4] change stream MAXLEN, ARGV[5] mode, ARGV[6] consumer group, then
--   mode 'event': ARGV[7..] one event's field/value pairs (not acked);
--   mode 'entries': ARGV[7..] events-stream entry ids, read here with
--   XRANGE, so a batch costs one round trip and no copy of its fields;
--   mode 'submit': ARGV[7] new job id, ARGV[8] Idempotency-Key or '',
--   ARGV[9] request digest, ARGV[10] key TTL (s), ARGV[11] max pending
--   jobs, ARGV[12..] the submission's field/value pairs;
--   mode 'positions': ARGV[7..] ids of jobs that just left the line.
-- Returns, per event, {created, changed, change id or '', status}, flat;
-- created is -1 for an entry without an event (trimmed while pending),
-- which is only acked. Mode 'submit' returns {outcome, job id, job hash}
-- (outcome 'created', 'replay', 'mismatch', 'gone' or 'full'), and mode
-- 'positions' returns {jobs whose position changed}.

local prefix = ARGV[1]
local rank = {pending = 1, uploading = 2, queued = 3, running = 4,
              completed = 5, failed = 5, cancelled = 5}
local visible = {'status', 'provider_status', 'stage', 'progress', 'last_log',
                 'created_at', 'started_at', 'completed_at', 'cost_usd',
                 'predict_time', 'error_message', 'hardware', 'model', 'version',
                 'output', 'kind', 'queue_position', 'provider_job_id'}
local pending_key = prefix .. 'queue:pending'
local slots_key = prefix .. 'queue:slots'

-- Days since 1970-01-01 of a proleptic Gregorian date, and back; integer
-- arithmetic only, so every replica's Lua computes the same day.
local function days_from_civil(y, m, d)
    if m <= 2 then
        y = y - 1
    end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

local function day_name(ms)
    local z = math.floor(ms / 86400000) + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) -
                            math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local d = doy - math.floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    local y = yoe + era * 400 + (m <= 2 and 1 or 0)
    return string.format('%04d-%02d-%02d', y, m, d)
end

-- Seconds since the epoch of a stored timestamp (2025-06-10T09:14:02.118304Z).
local function iso_seconds(t)
    if type(t) ~= 'string' then
        return nil
    end
    local y, mo, d, h, mi, sec = string.match(t, '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d%.]+)')
    if y == nil then
        return nil
    end
    return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400 +
           tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

-- Daily totals are kept about 13 months, longer than the metrics' 365 days.
local daily_ttl_ms = 400 * 86400000

local apply_event

-- Drops a record that sync or the poller made under the provider's id
-- before the queue recorded that id, and merges what it knew into the
-- local job as an older event would.
-- NOTE: the daily totals keep counting the dropped record as created.
local function merge_duplicate(provider_id, local_id)
    local dup_key = prefix .. 'job:' .. provider_id
    local flat = redis.call('HGETALL', dup_key)
    if #flat == 0 then
        return
    end
    local dup = {}
    for i = 1, #flat, 2 do
        dup[flat[i]] = flat[i + 1]
    end
    redis.call('DEL', dup_key)
    for _, idx in ipairs({'idx:all', 'idx:active', 'idx:status:' .. (dup.status or ''),
                          'idx:provider:' .. (dup.provider or 'replicate')}) do
        redis.call('ZREM', prefix .. idx, provider_id)
    end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[4]), '*', 'job_id', provider_id,
               'status', dup.status or '', 'data', cjson.encode({
                   type = 'job_deleted', job_id = provider_id, status = dup.status or cjson.null,
                   merged_into = local_id, updated_at = ARGV[2]}))
    for _, f in ipairs({'revision', 'updated_at', 'updated_ms', 'created_at', 'created_ms'}) do
        dup[f] = nil
    end
    dup.job_id = local_id
    apply_event(dup, nil)
end

-- Points an event that names the provider's id at the local job it
-- belongs to, if any. local_job_id (from the webhook URL the queue gave
-- Replicate) links the two ids the first time, so a webhook that arrives
-- before the create call's response is applied still finds its job. Only a
-- queued job without another provider id may be linked.
local function resolve_job(ev)
    local provider_id = ev.job_id
    local alias = redis.call('GET', prefix .. 'alias:' .. provider_id)
    if alias then
        ev.job_id = alias
        ev.provider_job_id = provider_id
        return
    end
    local local_id = ev.local_job_id
    if local_id == nil or local_id == '' or local_id == provider_id then
        return
    end
    local f = redis.call('HMGET', prefix .. 'job:' .. local_id, 'submitted', 'provider_job_id')
    if f[1] ~= '1' or (f[2] and f[2] ~= provider_id) then
        return
    end
    redis.call('SET', prefix .. 'alias:' .. provider_id, local_id)
    ev.job_id = local_id
    ev.provider_job_id = provider_id
    merge_duplicate(provider_id, local_id)
end

-- Moves the queue with the job's new status; returns true when the job
-- left the line, so the jobs behind it move up.
local function queue_update(job_id, status, cur, upd)
    local left = false
    if (cur.submitted or upd.submitted) ~= '1' then
        return false -- not a submission, so never in line and never in a slot
    end
    if status == 'pending' then
        local place = redis.call('ZRANK', pending_key, job_id)
        local position = place and tostring(place + 1) or false
        if position ~= (cur.queue_position or false) then
            upd.queue_position = position
        end
        return false
    end
    left = redis.call('ZREM', pending_key, job_id) == 1
    if cur.queue_position ~= nil then
        upd.queue_position = false
    end
    if rank[status] == 5 then
        redis.call('ZREM', slots_key, job_id)
        redis.call('HDEL', prefix .. 'queue:slot_users', job_id)
    elseif (cur.submitted or upd.submitted) == '1' then
        -- Started at the provider: the job occupies a slot until it finishes,
        -- also when its claim had been given up (a create call that timed
        -- out and yet succeeded).
        redis.call('ZADD', slots_key, 'NX', tonumber(ARGV[3]), job_id)
    end
    return left
end

-- Gives every job in line its current place; returns how many moved.
local function renumber()
    local moved = 0
    for i, id in ipairs(redis.call('ZRANGE', pending_key, 0, -1)) do
        local key = prefix .. 'job:' .. id
        local stored = redis.call('HGET', key, 'queue_position')
        if stored ~= tostring(i) and redis.call('EXISTS', key) == 1 then
            apply_event({job_id = id, status = 'pending', source = 'queue'}, nil)
            moved = moved + 1
        end
    end
    return moved
end

apply_event = function(ev, ack_id)
    local function ack()
        if ack_id ~= nil then
            redis.call('XACK', KEYS[2], ARGV[6], ack_id)
        end
    end

    if ev.job_id == nil or ev.job_id == '' or ev.status == nil then
        ack()
        return {-1, 0, '', ''}
    end
    resolve_job(ev)
    local job_key = prefix .. 'job:' .. ev.job_id
    local cur = {}
    local flat = redis.call('HGETALL', job_key)
    for i = 1, #flat, 2 do
        cur[flat[i]] = flat[i + 1]
    end

    local created = cur.status == nil
    -- A job deleted here stays deleted, whichever path reports it again.
    if created and redis.call('EXISTS', prefix .. 'deleted:' .. ev.job_id) == 1 then
        ack()
        return {0, 0, '', 'deleted'}
    end
    local old_status = cur.status
    local old_rank = rank[old_status or ''] or 0
    local new_rank = rank[ev.status] or 0
    local upd = {}

    -- A finished job has its final record. An event that claims another
    -- outcome (succeeded after canceled) contradicts it and changes nothing.
    if old_rank == 5 and ev.status ~= old_status then
        ack()
        return {0, 0, '', old_status}
    end

    local function put(field, value)
        if value ~= nil and cur[field] ~= value then
            upd[field] = value
        end
    end

    local function fill(field, value)
        if cur[field] == nil or cur[field] == '' then
            put(field, value)
        end
    end

    -- The event is "current" when it describes the job's present state: it
    -- advances the status, or repeats the stored one.
    local advances = old_rank < 5 and new_rank > old_rank
    local current = advances or ev.status == old_status

    if advances then
        put('status', ev.status)
    end
    if current then
        put('provider_status', ev.provider_status)
    end

    for _, f in ipairs({'created_at', 'started_at', 'completed_at', 'kind', 'provider',
                        'provider_job_id', 'submitted', 'destination', 'user_id'}) do
        fill(f, ev[f])
    end

    -- Facts that only a current event may overwrite; a stale one may still
    -- fill a field that is empty.
    for _, f in ipairs({'error_message', 'output', 'predict_time', 'cost_usd',
                        'cost_estimated', 'hardware', 'model', 'version'}) do
        if current then
            put(f, ev[f])
        else
            fill(f, ev[f])
        end
    end

    local logs_len = tonumber(ev.logs_len or '-1')
    if ev.logs_len ~= nil and logs_len >= tonumber(cur.logs_len or '-1') and
            (current or old_rank < 5) then
        put('logs_len', ev.logs_len)
        for _, f in ipairs({'stage', 'progress', 'last_log'}) do
            if ev[f] == nil then
                if cur[f] ~= nil then
                    redis.call('HDEL', job_key, f)
                    upd[f] = false
                end
            else
                put(f, ev[f])
            end
        end
    end

    local left_line = queue_update(ev.job_id, upd.status or old_status or ev.status, cur, upd)
    if upd.queue_position == false then
        redis.call('HDEL', job_key, 'queue_position')
    end

    local changed = false
    for _, f in ipairs(visible) do
        if upd[f] ~= nil then
            changed = true
        end
    end

    if not changed then
        -- Invisible bookkeeping (a longer log with the same last line) is
        -- still stored, but no revision or change record follows.
        local quiet = {}
        for f, v in pairs(upd) do
            if v ~= false then
                quiet[#quiet + 1] = f
                quiet[#quiet + 1] = v
            end
        end
        if #quiet > 0 then
            redis.call('HSET', job_key, unpack(quiet))
        end
        ack()
        return {0, 0, '', cur.status or ''}
    end

    local revision = tonumber(cur.revision or '0') + 1
    upd.revision = tostring(revision)
    upd.updated_at = ARGV[2]
    -- For the poller's stale check: the time of the last visible change.
    upd.updated_ms = ARGV[3]

    local score = tonumber(cur.created_ms or '')
    if created then
        upd.job_id = ev.job_id
        upd.provider = ev.provider or 'replicate'
        score = tonumber(ev.created_ms or '') or tonumber(ARGV[3])
        upd.created_ms = tostring(score)
        if upd.created_at == nil then
            upd.created_at = ARGV[2]
        end
    end

    local args = {}
    for f, v in pairs(upd) do
        if v ~= false then
            args[#args + 1] = f
            args[#args + 1] = v
        end
    end
    redis.call('HSET', job_key, unpack(args))

    local status = upd.status or old_status
    local provider = cur.provider or upd.provider
    redis.call('ZADD', prefix .. 'idx:all', score, ev.job_id)
    redis.call('ZADD', prefix .. 'idx:provider:' .. provider, score, ev.job_id)
    if status ~= old_status then
        if old_status ~= nil then
            redis.call('ZREM', prefix .. 'idx:status:' .. old_status, ev.job_id)
        end
        redis.call('ZADD', prefix .. 'idx:status:' .. status, score, ev.job_id)
        if rank[status] < 5 then
            redis.call('ZADD', prefix .. 'idx:active', score, ev.job_id)
        else
            redis.call('ZREM', prefix .. 'idx:active', ev.job_id)
        end
    end

    -- The change record carries the browser's JSON ready-made, plus the job
    -- id and status on their own so the SSE hub can filter without parsing.
    local function field(f)
        local v = upd[f]
        if v == nil then
            v = cur[f]
        end
        if v == false or v == nil then
            return cjson.null
        end
        return v
    end

    local function number(f)
        local v = field(f)
        if v == cjson.null then
            return v
        end
        return tonumber(v)
    end

    -- Daily totals: created, finished (by outcome, with the run time) and
    -- the change in cost, on the day the job was created.
    if score ~= nil then
        local day = prefix .. 'daily:' .. day_name(score)
        local touched = false
        if created then
            redis.call('HINCRBY', day, 'total_jobs', 1)
            touched = true
        end
        if status ~= old_status and rank[status] == 5 then
            redis.call('HINCRBY', day, status, 1)
            local t0 = iso_seconds(field('started_at'))
            local t1 = iso_seconds(field('completed_at'))
            if t0 ~= nil and t1 ~= nil and t1 >= t0 then
                redis.call('HINCRBYFLOAT', day, 'duration_sum', string.format('%.6f', t1 - t0))
                redis.call('HINCRBY', day, 'duration_count', 1)
            end
            touched = true
        end
        if upd.cost_usd ~= nil then
            local delta = (tonumber(upd.cost_usd) or 0) - (tonumber(cur.cost_usd or '') or 0)
            -- HINCRBYFLOAT rejects inf and NaN, and an error here would
            -- leave this apply half done (Redis does not roll scripts back).
            if delta ~= 0 and delta == delta and math.abs(delta) < 1e15 then
                redis.call('HINCRBYFLOAT', day, 'total_cost_usd', string.format('%.6f', delta))
                touched = true
            end
        end
        if touched then
            redis.call('PEXPIRE', day, daily_ttl_ms)
        end
    end

    local data = cjson.encode({
        type = 'job_status_changed',
        job_id = ev.job_id,
        provider = provider,
        status = status,
        previous_status = old_status or cjson.null,
        provider_status = field('provider_status'),
        stage = field('stage'),
        progress = number('progress'),
        last_log = field('last_log'),
        cost_usd = number('cost_usd'),
        error_message = field('error_message'),
        started_at = field('started_at'),
        completed_at = field('completed_at'),
        updated_at = ARGV[2],
        version = revision,
        revision = revision,
        created = created,
        queue_position = number('queue_position'),
        provider_job_id = field('provider_job_id'),
    })

    local change_id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
                                 'job_id', ev.job_id, 'status', status, 'data', data)
    if left_line then
        renumber()
    end
    ack()
    return {created and 1 or 0, 1, change_id, status}
end

-- Queues a submitted training as a pending job, or returns the job an
-- earlier request with the same Idempotency-Key created.
local function submit()
    local id = ARGV[7]
    local idem = ARGV[8] ~= '' and prefix .. 'idem:' .. ARGV[8] or nil
    if idem then
        local prior = redis.call('HMGET', idem, 'job_id', 'digest')
        if prior[1] then
            if prior[2] ~= ARGV[9] then
                return {'mismatch', prior[1], {}}
            end
            local job = redis.call('HGETALL', prefix .. 'job:' .. prior[1])
            return {#job == 0 and 'gone' or 'replay', prior[1], job}
        end
    end
    if redis.call('ZCARD', pending_key) >= tonumber(ARGV[11]) then
        return {'full', '', {}}
    end

    local sub = {}
    for i = 12, #ARGV, 2 do
        sub[ARGV[i]] = ARGV[i + 1]
    end
    local seq = redis.call('INCR', prefix .. 'queue:seq')
    redis.call('HSET', prefix .. 'queue:job:' .. id, 'seq', seq, unpack(ARGV, 12))
    redis.call('ZADD', pending_key, seq, id)
    apply_event({job_id = id, provider = 'replicate', kind = 'training', status = 'pending',
                 model = sub.model, version = sub.version, hardware = sub.hardware,
                 destination = sub.destination, user_id = sub.user_id, submitted = '1',
                 source = 'queue'}, nil)
    if idem then
        redis.call('HSET', idem, 'job_id', id, 'digest', ARGV[9])
        redis.call('EXPIRE', idem, tonumber(ARGV[10]))
    end
    return {'created', id, redis.call('HGETALL', prefix .. 'job:' .. id)}
end

local results = {}
local function add(r)
    for _, v in ipairs(r) do
        results[#results + 1] = v
    end
end

if ARGV[5] == 'submit' then
    return submit()
elseif ARGV[5] == 'positions' then
    -- Jobs just claimed for a start keep status pending but leave the line.
    for i = 7, #ARGV do
        if redis.call('EXISTS', prefix .. 'job:' .. ARGV[i]) == 1 then
            apply_event({job_id = ARGV[i], status = 'pending', source = 'queue'}, nil)
        end
    end
    return {renumber()}
elseif ARGV[5] == 'event' then
    local ev = {}
    for i = 7, #ARGV, 2 do
        ev[ARGV[i]] = ARGV[i + 1]
    end
    add(apply_event(ev, nil))
else
    for i = 7, #ARGV do
        local ev = {}
        local found = redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])
        if #found == 1 then
            local flat = found[1][2]
            for k = 1, #flat, 2 do
                ev[flat[k]] = flat[k + 1]
            end
        end
        add(apply_event(ev, ARGV[i]))
    end
end
return results
