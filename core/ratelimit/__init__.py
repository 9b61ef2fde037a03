"""Rate limiting on Upstash: exact, atomic, on the server's clock, free for repeat offenders.

    from continuum.ratelimit import RateLimiter

    limiter = RateLimiter(cache)                    # exact sliding log, fail-open
    result = limiter.limit("user:42", limit=100, window_seconds=60)
    if not result.allowed:
        return 429, result.headers()                # RateLimit-* and Retry-After

Modules: ``limiter`` (the sync and async limiters), ``algorithms`` (the Lua scripts),
``twins`` (their Python twins for local mode), ``blocked`` (the process-wide memory of
refused identifiers), ``keys`` (identifier encoding), ``result`` (the answer and headers).
"""

from continuum.ratelimit.algorithms import Algorithm
from continuum.ratelimit.blocked import BlockedCache, blocked_identifiers
from continuum.ratelimit.keys import API_KEY_PREFIX, DEFAULT_PREFIX
from continuum.ratelimit.limiter import AsyncRateLimiter, RateLimiter
from continuum.ratelimit.result import RateLimitResult, Reason

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_PREFIX",
    "Algorithm",
    "AsyncRateLimiter",
    "BlockedCache",
    "RateLimitResult",
    "RateLimiter",
    "Reason",
    "blocked_identifiers",
]
