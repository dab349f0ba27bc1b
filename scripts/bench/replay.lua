-- wrk script: replays the pre-built requests of make-webhooks.py. Each
-- thread takes every n-th request, so no two threads send the same
-- webhook-id, and counts answers by status.
local requests = {}
local threads = {}
local next_index = 1

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

function init(args)
    local f = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
    local data = f:read("*a")
    f:close()
    local total = tonumber(os.getenv("BENCH_THREADS"))
    local i = 0
    for req in string.gmatch(data, "([^%z]+)%z") do
        if i % total == id then
            requests[#requests + 1] = req
        end
        i = i + 1
    end
    statuses = {}
end

function request()
    local req = requests[next_index]
    next_index = next_index + 1
    if next_index > #requests then
        next_index = 1
    end
    return req
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests_done)
    for _, thread in ipairs(threads) do
        local counts = thread:get("statuses")
        for status, n in pairs(counts) do
            io.write(string.format("status %d: %d\n", status, n))
        end
    end
end
