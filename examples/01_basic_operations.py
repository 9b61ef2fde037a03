"""Example 1: basic cache operations."""

from continuum import UpstashCache


def main() -> None:
    cache = UpstashCache()  # REST from the environment, else the local store
    print(f"backend: {cache.current_backend.value}")

    cache.set("user:123", {"name": "Alice"}, ttl=3600)
    user = cache.get("user:123")
    print(f"get: {user}")
    print(f"exists: {cache.exists('user:123')}")
    print(f"ttl: {cache.ttl('user:123')}")

    cache.delete("user:123")
    print(f"after delete: {cache.get('user:123')}")

    for i in range(3):
        cache.set(f"user:{i}", {"id": i})
    print(f"pattern delete removed: {cache.delete_pattern('user:*')}")


if __name__ == "__main__":
    main()
