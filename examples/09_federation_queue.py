"""Example 9: federation sync queue (24 hours TTL, strict)."""

import time

from continuum import CacheUnavailable, UpstashCache


def main() -> None:
    cache = UpstashCache()
    queue = cache.layer("federation")  # prefix "fed:queue:", 24 hours, never falls back

    event_id = f"evt-{int(time.time() * 1000)}"
    try:
        queue.set(event_id, {"op": "upsert", "concept": "c1", "origin": "instance-a"})
    except CacheUnavailable as exc:
        # Strict: the event was NOT stored anywhere; retry or queue it elsewhere.
        print(f"not queued: {type(exc).__name__}")
        return
    print(f"queued {queue.key(event_id)} for {queue.ttl(event_id)} s")
    print(f"event: {queue.get(event_id)}")
    print(f"drained: {queue.delete(event_id)}")


if __name__ == "__main__":
    main()
