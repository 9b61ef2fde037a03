-- Sliding-window counter: two fixed windows on the server's clock, the previous one
-- weighted by how much of it still overlaps the sliding window. Constant memory.
-- KEYS[1]: a string "<current window index>:<units admitted in it>:<units admitted in the
-- previous window>", written with its expiry in one SET. ARGV: window_us, limit, cost.
-- cost 0 reads the usage. Returns {allowed, remaining, reset_us, retry_us, now_us, used, calls}.
-- After the prelude (_prelude.lua: call, num, now, key, window, limit, cost).
local index = math.floor(now / window)
if index * window > now then index = index - 1 end
if (index + 1) * window <= now then index = index + 1 end
local stored = call('GET', key)
local current, previous = 0, 0
if stored then
  local stored_index, stored_current, stored_previous =
    string.match(stored, '^([^:]*):([^:]*):([^:]*)$')
  stored_index = tonumber(stored_index)
  if stored_index == index then
    current = tonumber(stored_current) or 0
    previous = tonumber(stored_previous) or 0
  elseif stored_index == index - 1 then
    previous = tonumber(stored_current) or 0
  end
end
local start = index * window
local overlap = window - (now - start)
local used = previous * overlap / window + current
local reset = start + window
if cost > 0 and used + cost <= limit then
  current = current + cost
  call('SET', key, num(index) .. ':' .. num(current) .. ':' .. num(previous),
    'PX', math.ceil((reset + window - now) / 1000))
  used = used + cost
  return {1, math.floor(limit - used), reset, 0, now, math.ceil(used), calls}
end
local remaining = math.max(0, math.floor(limit - used))
if cost == 0 then
  return {1, remaining, reset, 0, now, math.ceil(used), calls}
end
-- refused: the earliest instant the weighted estimate leaves room for cost, if nothing
-- else is admitted meanwhile (estimates only fall with time, so it is a safe lower bound)
local retry
if current + cost <= limit then
  retry = start + math.ceil(window - window * (limit - current - cost) / previous)
else
  retry = start + window + math.ceil(window * (current + cost - limit) / current)
end
return {0, remaining, retry, retry, now, math.ceil(used), calls}
