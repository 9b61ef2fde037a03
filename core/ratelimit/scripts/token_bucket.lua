-- Token bucket: holds up to `limit` tokens and refills `limit` tokens per window, on the
-- server's clock. KEYS[1]: a string "<tokens>:<last update in us>", written with its
-- expiry in one SET; a missing key is a full bucket, so the key expires once the bucket
-- would be full again. ARGV: window_us, limit, cost. cost 0 reads the usage.
-- After the prelude (_prelude.lua: call, num, now, key, window, limit, cost).
-- Returns {allowed, remaining, reset_us, retry_us, now_us, used, calls}.
local stored = call('GET', key)
local tokens = limit
if stored then
  local stored_tokens, stored_at = string.match(stored, '^([^:]*):([^:]*)$')
  stored_tokens, stored_at = tonumber(stored_tokens), tonumber(stored_at)
  if stored_tokens and stored_at then
    local elapsed = math.max(0, now - stored_at)
    tokens = math.min(limit, stored_tokens + elapsed * limit / window)
  end
end
if cost > 0 and tokens >= cost then
  tokens = tokens - cost
  local full_in = math.ceil((limit - tokens) * window / limit)
  call('SET', key, string.format('%.17g', tokens) .. ':' .. num(now),
    'PX', math.ceil(full_in / 1000))
  return {1, math.floor(tokens), now + full_in, 0, now, math.ceil(limit - tokens), calls}
end
local full_in = math.ceil((limit - tokens) * window / limit)
if cost == 0 then
  return {1, math.floor(tokens), now + full_in, 0, now, math.ceil(limit - tokens), calls}
end
local retry = now + math.ceil((cost - tokens) * window / limit)
return {0, math.floor(tokens), retry, retry, now, math.ceil(limit - tokens), calls}
