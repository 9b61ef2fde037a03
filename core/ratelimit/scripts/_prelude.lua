-- The opening every limiter script shares; core/ratelimit/algorithms.py puts it in front
-- of each script's own text, and the result is what runs (and what its SHA1 names).
-- A plain script, no "#!lua flags=" line, so the same text runs on Upstash, redis-server
-- and fakeredis (the reasons are in core/ratelimit/algorithms.py). ARGV: window_us, limit,
-- cost (then the algorithm's own). calls counts the redis.call()s made, which Upstash
-- bills on top of the EVAL itself; every script returns it last.
local calls = 0
local function call(...) calls = calls + 1 return redis.call(...) end
local function num(x) return string.format('%.0f', x) end
local t = call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
