"""Example 10: cost optimization techniques, measured with the request meter."""

import os

from continuum import UpstashCache, ValueTooLarge
from continuum.codec import make_codec


def main() -> None:
    cache = UpstashCache()
    items = {f"query:item-{i}": {"id": i, "tags": ["a", "b"], "score": i * 0.5} for i in range(20)}

    # 1. Reduce round trips: a pipeline sends many commands in one request.
    with cache.request(deadline=5.0) as scope:
        pipe = cache.pipeline()
        for key, value in items.items():
            pipe.set(key, value, ex=300)
        pipe.execute()
    print(f"pipeline: {scope.meter.commands} commands, {scope.meter.round_trips} round trip(s)")

    # 2. Reduce storage: MessagePack is smaller than JSON for most records.
    #    (UpstashCache(use_msgpack=True) stores values this way.)
    record = {"user_id": 123456, "roles": ["admin", "editor"], "active": True, "score": 0.75}
    json_size = len(make_codec().encode(record))
    msgpack_size = len(make_codec(use_msgpack=True).encode(record))
    print(f"record bytes: json={json_size} msgpack={msgpack_size}")

    # 3. Aggressive TTLs: everything expires on its own.
    cache.set("key", {"v": 1}, ttl=300)
    print(f"ttl: {cache.ttl('key')}")

    # 4. Don't cache large payloads: the client refuses them before sending.
    small = UpstashCache(max_value_size=100 * 1024)
    try:
        small.set("big", os.urandom(200 * 1024), ttl=300)
    except ValueTooLarge as exc:
        print(f"refused: {exc}")


if __name__ == "__main__":
    main()
