-- Fixed window aligned on the server's clock. KEYS[1]: a hash {w: window index, c: units
-- admitted in that window}. ARGV: window_us, limit, cost. Refused requests are not counted.
-- cost 0 reads the usage without admitting anything.
-- Returns {allowed, remaining, reset_us, retry_us, now_us, used}.
local function num(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local index = math.floor(now / window)
-- floating-point division may land one off at an exact boundary: correct it
if index * window > now then index = index - 1 end
if (index + 1) * window <= now then index = index + 1 end
local stored = redis.call('HMGET', key, 'w', 'c')
local used = 0
if tonumber(stored[1]) == index then used = tonumber(stored[2]) end
local reset = (index + 1) * window
if cost > 0 and used + cost <= limit then
  used = used + cost
  redis.call('HSET', key, 'w', num(index), 'c', num(used))
  redis.call('PEXPIRE', key, math.ceil((reset - now) / 1000))
  return {1, limit - used, reset, 0, now, used}
end
local remaining = math.max(0, limit - used)
if cost == 0 then
  return {1, remaining, reset, 0, now, used}
end
return {0, remaining, reset, reset, now, used}
