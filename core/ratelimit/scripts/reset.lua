-- Forget an identifier's usage. KEYS[1]: its limiter key. Returns the number of keys removed.
-- A plain script, no "#!lua flags=" line, so the same text runs on Upstash, redis-server and
-- fakeredis (the reasons are in core/ratelimit/algorithms.py).
return redis.call('DEL', KEYS[1])
