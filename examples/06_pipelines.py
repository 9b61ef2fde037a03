"""Example 6: batch operations with pipelines (one round trip)."""

from continuum import UpstashCache


def main() -> None:
    cache = UpstashCache()
    memories = {f"m{i}": {"concept": f"idea {i}", "weight": i / 10} for i in range(10)}

    pipe = cache.pipeline()
    for memory_id, memory_data in memories.items():
        pipe.set(f"memory:{memory_id}", memory_data, ex=1800)
    results = pipe.execute()
    print(f"Cached {len(results)} memories in one operation")

    # Every item's result is kept, even when one fails.
    with cache.pipeline() as pipe:
        pipe.get("memory:m1")
        pipe.increment("memory:m1")  # not a number: an error in its own slot only
        pipe.exists("memory:m9")
    value, error, exists = pipe.results or []
    print(f"value: {value}, error: {type(error).__name__}, exists: {exists}")


if __name__ == "__main__":
    main()
