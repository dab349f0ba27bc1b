-- Take a cluster-wide SSE connection lease for one client IP. Leases are
-- members of a sorted set scored by their expiry, so the leases of a
-- killed replica expire on their own.
-- KEYS[1] the IP's lease set. ARGV[1] now (ms), ARGV[2] expiry (ms),
-- ARGV[3] the connection's member name, ARGV[4] maximum per IP.
-- Returns {1, count} when taken, {0, count} when the IP is at its maximum.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[4]) then
    return {0, count}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return {1, count + 1}
