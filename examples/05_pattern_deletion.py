"""Example 5: pattern-based deletion (SCAN + UNLINK in batches, never KEYS)."""

from continuum import UpstashCache, ValidationError


def main() -> None:
    cache = UpstashCache()
    for i in range(50):
        cache.set(f"query:user-7:{i}", {"row": i}, ttl=300)
    cache.set("query:user-8:0", {"row": 0}, ttl=300)

    print(f"deleted by pattern: {cache.delete_pattern('query:user-7:*')}")
    print(f"other user kept: {cache.exists('query:user-8:0')}")

    # User input is taken literally by the prefix form: "*" cannot widen it.
    cache.set("tag:a*:1", 1)
    cache.set("tag:ab:1", 2)
    print(f"deleted by prefix 'tag:a*': {cache.delete_prefix('tag:a*')}")
    print(f"'tag:ab:1' kept: {cache.exists('tag:ab:1')}")

    try:
        cache.delete_pattern("*")
    except ValidationError as exc:
        print(f"refused: {exc}")


if __name__ == "__main__":
    main()
