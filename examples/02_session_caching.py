"""Example 2: session caching (1 hour TTL)."""

from continuum import UpstashCache


def main() -> None:
    cache = UpstashCache()
    user_id = "42"

    session_key = f"session:{user_id}"
    cache.set(
        session_key,
        {
            "user_id": user_id,
            "username": "alice",
            "roles": ["admin"],
            "preferences": {"theme": "dark"},
        },
        ttl=3600,
    )

    session = cache.get(session_key)
    print(f"session: {session}")

    session["preferences"]["theme"] = "light"
    cache.set(session_key, session, ttl=3600)
    print(f"theme now: {cache.get(session_key)['preferences']['theme']}")

    # The same through the sessions layer (prefix "session:", 1 hour by default).
    sessions = cache.layer("sessions")
    print(f"layer sees: {sessions.get(user_id)['username']}, ttl <= {sessions.ttl(user_id)}")

    cache.set(f"session:{user_id}:device-2", {"user_id": user_id}, ttl=3600)
    print(f"invalidated sessions: {cache.delete_pattern(f'session:{user_id}*')}")


if __name__ == "__main__":
    main()
