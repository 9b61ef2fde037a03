"""Example 4: rate limiting (100 requests per minute)."""

import uuid

from continuum import RateLimiter, UpstashCache


def main() -> None:
    cache = UpstashCache()
    limiter = RateLimiter(cache)
    user_id = f"user-{uuid.uuid4().hex[:8]}"

    allowed = sum(
        limiter.check_rate_limit(user_id, window_seconds=60, max_requests=100) for _ in range(105)
    )
    print(f"allowed: {allowed} of 105")

    usage = limiter.get_usage(user_id, window_seconds=60)
    print(f"Usage: {usage['current']}/100")

    limiter.reset(user_id, window_seconds=60)
    print(f"after reset allowed: {limiter.check_rate_limit(user_id, 60, 100)}")


if __name__ == "__main__":
    main()
