-- Fixed window aligned on the server's clock. KEYS[1]: a string "<window index>:<units
-- admitted in that window>", written with its expiry in one SET. ARGV: window_us, limit,
-- cost. Refused requests are not counted. cost 0 reads the usage without admitting.
-- After the prelude (_prelude.lua: call, num, now, key, window, limit, cost).
-- Returns {allowed, remaining, reset_us, retry_us, now_us, used, calls}.
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
