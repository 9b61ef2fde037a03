"""Example 3: query result caching (5 minutes TTL)."""

import hashlib

from continuum import UpstashCache

cache = UpstashCache()
searches = 0


def expensive_search(query_text: str) -> list[dict[str, object]]:
    global searches
    searches += 1
    return [{"id": i, "match": query_text, "score": 1.0 / (i + 1)} for i in range(3)]


def search_memories(query_text: str) -> list[dict[str, object]]:
    # A stable key (Python's hash() changes between processes).
    query_key = f"query:{hashlib.sha256(query_text.encode()).hexdigest()[:16]}"

    results = cache.get(query_key)
    if results:
        return results  # cache hit

    results = expensive_search(query_text)
    cache.set(query_key, results, ttl=300)
    return results


def main() -> None:
    first = search_memories("neural networks")
    second = search_memories("neural networks")
    print(f"results: {len(first)}, same both times: {first == second}")
    print(f"expensive searches run: {searches}")

    # Read-through with stampede protection does the same in one call.
    value = cache.get_or_set("query:top", lambda: expensive_search("top"), ttl=300)
    again = cache.get_or_set("query:top", lambda: expensive_search("top"), ttl=300)
    print(f"get_or_set: {value == again}, expensive searches run: {searches}")


if __name__ == "__main__":
    main()
