"""Continuum: Upstash Redis over REST for serverless Python.

    from continuum import UpstashCache, RateLimiter

    cache = UpstashCache()                  # REST from UPSTASH_REDIS_REST_URL/_TOKEN
    cache.set("user:123", {"name": "Alice"}, ttl=3600)
    limiter = RateLimiter(cache)

The rate limiter, the async client and the pub/sub subscriber are imported on first use,
so importing ``continuum`` stays cheap on a cold start (a sync handler never needs the
async client).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from continuum.cache import (
    AsyncCacheLayer,
    AsyncPipeline,
    CacheLayer,
    Pipeline,
    ScopedCache,
    UpstashCache,
    WriteResult,
)
from continuum.config import CacheBackend, ConnectionMode, Database, LocalModeWarning, UpstashConfig
from continuum.errors import (
    AuthenticationFailed,
    CacheError,
    CacheTimeout,
    CacheUnavailable,
    CircuitOpen,
    CommandError,
    ConfigurationError,
    ConnectionFailed,
    DecodeError,
    KeyTooLarge,
    NoScriptError,
    OutcomeUnknown,
    PermissionDenied,
    QuotaExceeded,
    ResponseTooLarge,
    ServerError,
    TransactionAborted,
    ValidationError,
    ValueTooLarge,
)
from continuum.local import LocalCache, register_local_script
from continuum.rest import Script

if TYPE_CHECKING:
    from continuum.cache import AsyncUpstashCache
    from continuum.ratelimit import AsyncRateLimiter, RateLimiter, RateLimitResult

__version__ = "0.1.0"

__all__ = [
    "AsyncCacheLayer",
    "AsyncPipeline",
    "AsyncRateLimiter",
    "AsyncUpstashCache",
    "AuthenticationFailed",
    "CacheBackend",
    "CacheError",
    "CacheLayer",
    "CacheTimeout",
    "CacheUnavailable",
    "CircuitOpen",
    "CommandError",
    "ConfigurationError",
    "ConnectionFailed",
    "ConnectionMode",
    "Database",
    "DecodeError",
    "KeyTooLarge",
    "LocalCache",
    "LocalModeWarning",
    "NoScriptError",
    "OutcomeUnknown",
    "PermissionDenied",
    "Pipeline",
    "QuotaExceeded",
    "RateLimitResult",
    "RateLimiter",
    "ResponseTooLarge",
    "ScopedCache",
    "Script",
    "ServerError",
    "TransactionAborted",
    "UpstashCache",
    "UpstashConfig",
    "ValidationError",
    "ValueTooLarge",
    "WriteResult",
    "__version__",
    "register_local_script",
]

_LAZY = {
    "AsyncUpstashCache": "continuum.cache",
    "RateLimiter": "continuum.ratelimit",
    "AsyncRateLimiter": "continuum.ratelimit",
    "RateLimitResult": "continuum.ratelimit",
}


def __getattr__(name: str) -> Any:
    """Import the rate limiter and the async client only when they are asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
