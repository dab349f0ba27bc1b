-- The state behind GET /api/cloud/polling/status, the same on any replica: the
-- override, the leader, and the leader's record of its last tick.
-- KEYS[1] leader key, KEYS[2] override key, KEYS[3] status hash
-- Returns {override or '', leader or '', {field, value, ...}}.
return {redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[1]) or '',
        redis.call('HGETALL', KEYS[3])}
