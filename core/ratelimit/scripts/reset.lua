-- Forget an identifier's usage. KEYS[1]: its limiter key. Returns the number of keys removed.
return redis.call('DEL', KEYS[1])
