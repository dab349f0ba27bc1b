-- A per-bucket rate limit as a generic cell rate algorithm: one key per
-- bucket holds the theoretical arrival time (ms) of the next call. An
-- idle bucket allows `limit` calls at once, then `limit` per minute.
-- Redis's own clock is used, so every replica counts the same way.
-- KEYS[1] the bucket; ARGV[1] calls per minute; ARGV[2] "take" to count
-- a call, or "peek" to ask whether one would be allowed without counting.
-- Returns {1, remaining} when allowed, {0, retry_after_ms} when not.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local interval = 60000 / limit
local burst = 60000

local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local next_tat = tat + interval
if next_tat - burst > now then
  return {0, math.ceil(next_tat - burst - now)}
end

if ARGV[2] == 'take' then
  redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX',
             math.ceil(next_tat - now) + 1000)
end
return {1, math.floor((now + burst - next_tat) / interval)}
