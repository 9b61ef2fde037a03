"""Example 7: hot memory caching (30 minutes TTL)."""

from continuum import UpstashCache


def load_concept(concept_id: str) -> dict[str, object]:
    return {"id": concept_id, "links": ["a", "b"], "strength": 0.9}


def main() -> None:
    cache = UpstashCache()
    memories = cache.layer("memory")  # prefix "memory:", 30 minutes by default

    for concept_id in ("c1", "c2", "c3"):
        memories.set(concept_id, load_concept(concept_id))
    print(f"ttl: {memories.ttl('c1')} (<= 1800)")

    with cache.request(deadline=2.0) as scope:
        for _ in range(3):
            memories.get("c1")  # read once from Upstash, then from the request's memo
        hot = memories.get_or_set("c4", lambda: load_concept("c4"))
    print(f"hot: {hot['id']}, commands for 3 reads + read-through: {scope.meter.commands}")
    print(f"stored under: {memories.key('c1')}")


if __name__ == "__main__":
    main()
