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
-- An events-stream entry is acknowledged in the same script that applies
-- it, so a crash between apply and ack cannot apply it twice.
--
-- KEYS[1] change stream, KEYS[2] events stream
-- ARGV[1] key prefix, ARGV[2] now (ISO 8601), ARGV[3] now (ms),
-- ARGV[4] change stream MAXLEN, ARGV[5] mode, ARGV[6] consumer group, then
--   mode 'event': ARGV[7..] one event's field/value pairs (not acked);
--   mode 'entries': ARGV[7..] events-stream entry ids, read here with
--   XRANGE, so a batch costs one round trip and no copy of its fields.
-- Returns, per event, {created, changed, change id or '', status}, flat;
-- created is -1 for an entry without an event (trimmed while pending),
-- which is only acked.

local prefix = ARGV[1]
local rank = {pending = 1, uploading = 2, queued = 3, running = 4,
              completed = 5, failed = 5, cancelled = 5}
local visible = {'status', 'provider_status', 'stage', 'progress', 'last_log',
                 'created_at', 'started_at', 'completed_at', 'cost_usd',
                 'predict_time', 'error_message', 'hardware', 'model', 'version',
                 'output', 'kind', 'queue_position'}

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

local function apply_event(ev, ack_id)
    local function ack()
        if ack_id ~= nil then
            redis.call('XACK', KEYS[2], ARGV[6], ack_id)
        end
    end

    if ev.job_id == nil or ev.job_id == '' or ev.status == nil then
        ack()
        return {-1, 0, '', ''}
    end
    local job_key = prefix .. 'job:' .. ev.job_id
    local cur = {}
    local flat = redis.call('HGETALL', job_key)
    for i = 1, #flat, 2 do
        cur[flat[i]] = flat[i + 1]
    end

    local created = cur.status == nil
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

    for _, f in ipairs({'created_at', 'started_at', 'completed_at', 'kind', 'provider'}) do
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
    })

    local change_id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
                                 'job_id', ev.job_id, 'status', status, 'data', data)
    ack()
    return {created and 1 or 0, 1, change_id, status}
end

local results = {}
local function add(r)
    for _, v in ipairs(r) do
        results[#results + 1] = v
    end
end

if ARGV[5] == 'event' then
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
