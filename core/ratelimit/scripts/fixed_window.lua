-- Fixed window aligned on the server's clock. KEYS[1]: a string "<window index>:<units
-- admitted in that window>", written with its expiry in one SET. ARGV: window_us, limit,
-- cost. Refused requests are not counted. cost 0 reads the usage without admitting.
-- Returns {allowed, remaining, reset_us, retry_us, now_us, used, calls}.
-- A plain script, no "#!lua flags=" line, so the same text runs on Upstash, redis-server and
-- fakeredis (the reasons are in core/ratelimit/algorithms.py).
-- calls: how many redis.call()s ran, which Upstash bills on top of the EVAL itself.
local calls = 0
local function call(...) calls = calls + 1 return redis.call(...) end
local function num(x) return string.format('%.0f', x) end
local t = call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local index = math.floor(now / window)
-- floating-point division may land one off at an exact boundary: correct it
if index * window > now then index = index - 1 end
if (index + 1) * window <= now then index = index + 1 end
local stored = call('GET', key)
local used = 0
if stored then
  local stored_index, stored_used = string.match(stored, '^([^:]*):([^:]*)$')
  if tonumber(stored_index) == index then used = tonumber(stored_used) or 0 end
end
local reset = (index + 1) * window
if cost > 0 and used + cost <= limit then
  used = used + cost
  call('SET', key, num(index) .. ':' .. num(used), 'PX', math.ceil((reset - now) / 1000))
  return {1, limit - used, reset, 0, now, used, calls}
end
local remaining = math.max(0, limit - used)
if cost == 0 then
  return {1, remaining, reset, 0, now, used, calls}
end
return {0, remaining, reset, reset, now, used, calls}
