-- Exact sliding log. KEYS[1]: a sorted set holding one member per admitted unit of cost,
-- scored by the server's clock in microseconds. ARGV: window_us, limit, cost, nonce.
-- A request is admitted when the units in (now - window, now] plus its cost fit the limit.
-- cost 0 reads the usage without admitting anything.
-- After the prelude (_prelude.lua: call, num, now, key, window, limit, cost).
-- Returns {allowed, remaining, reset_us, retry_us, now_us, used, calls}.
-- units that left the window are only trimmed when the exact count matters: while even
-- the untrimmed count leaves room, admitting needs no trim (one command less per check;
-- the set still holds at most limit + cost members, and the key expires when idle)
local used = call('ZCARD', key)
if cost == 0 or used + cost > limit then
  used = used - call('ZREMRANGEBYSCORE', key, '-inf', num(now - window))
end
if cost > 0 and used + cost <= limit then
  -- members are unique per request (the client's random nonce) and per unit of cost;
  -- ZADD takes them in chunks so no call needs more arguments than Lua can unpack
  local score = num(now)
  local i = 1
  while i <= cost do
    local args = {}
    local last = math.min(cost, i + 499)
    for j = i, last do
      args[#args + 1] = score
      args[#args + 1] = ARGV[4] .. ':' .. j
    end
    call('ZADD', key, unpack(args))
    i = last + 1
  end
  call('PEXPIRE', key, math.ceil(window / 1000))
  return {1, limit - used - cost, now + window, 0, now, used + cost, calls}
end
local remaining = math.max(0, limit - used)
if cost == 0 then
  local reset = now
  if used > 0 then
    local newest = call('ZRANGE', key, -1, -1, 'WITHSCORES')
    reset = tonumber(newest[2]) + window
  end
  return {1, remaining, reset, 0, now, used, calls}
end
-- refused: it fits once the oldest (used + cost - limit) units have left the window
local rank = used + cost - limit - 1
local oldest = call('ZRANGE', key, rank, rank, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window
return {0, remaining, retry, retry, now, used, calls}
