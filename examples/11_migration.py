"""Example 11: migrating from a traditional Redis (needs `pip install 'continuum-cache[redis]'`).

RedisCache reads REDIS_URL (default redis://localhost:6379/0); UpstashCache reads
UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN. The data already in Redis is copied
with `continuum migrate` (docs/MIGRATING.md).
"""

from continuum.cache import RedisCache, RolloutCache, UpstashCache


def main() -> None:
    value = {"name": "Alice", "plan": "pro"}

    # Parallel run
    redis_cache = RedisCache()
    upstash_cache = UpstashCache()

    # Write to both
    redis_cache.set("key", value, ttl=300)
    upstash_cache.set("key", value, ttl=300)

    # Read from Upstash with fallback
    result = upstash_cache.get("key") or redis_cache.get("key")
    print(f"parallel run read: {result}")

    # Gradual rollout: one object writes to both and reads by a per-key percentage
    rollout = RolloutCache(UpstashCache(fallback=False), redis_cache, percent=10, shadow_reads=True)
    for step in (10, 25, 50, 75, 100):
        rollout.percent = step
        upstash_first = sum(rollout.upstash_first(f"user:{i}") for i in range(1000))
        print(f"at {step}%: {upstash_first} of 1000 keys read Upstash first")
    rollout.set("user:42", {"name": "Bob"})
    print(f"rollout read: {rollout.get('user:42')}")
    print(f"shadow mismatches: {rollout.meter.shadow_mismatches}")


if __name__ == "__main__":
    main()
