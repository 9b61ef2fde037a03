"""``continuum.cache``: the seed's home of ``UpstashCache``, ``AsyncUpstashCache`` and
``RateLimiter``.

    from continuum.cache import UpstashCache, RateLimiter

A call goes ``client`` / ``async_client`` (the public API) -> ``operations`` (each cache
operation, written once as a generator) -> ``drive`` (the sync and async drivers) ->
``base`` (scopes, the memo, the fallback policy) -> :mod:`continuum.rest` (the wire) or
:mod:`continuum.local` (the fallback store). ``layers``, ``spec`` and ``pipeline`` are the
views and batches on top. The rate limiter is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from continuum.cache.async_client import AsyncUpstashCache
from continuum.cache.call import WriteResult
from continuum.cache.client import UpstashCache
from continuum.cache.layers import AsyncCacheLayer, CacheLayer
from continuum.cache.pipeline import AsyncPipeline, Pipeline
from continuum.cache.scoped import ScopedCache
from continuum.cache.spec import LAYERS, LayerSpec, layer_spec

if TYPE_CHECKING:
    from continuum.ratelimit import AsyncRateLimiter, RateLimiter, RateLimitResult

__all__ = [
    "LAYERS",
    "AsyncCacheLayer",
    "AsyncPipeline",
    "AsyncRateLimiter",
    "AsyncUpstashCache",
    "CacheLayer",
    "LayerSpec",
    "Pipeline",
    "RateLimitResult",
    "RateLimiter",
    "ScopedCache",
    "UpstashCache",
    "WriteResult",
    "layer_spec",
]

_LAZY = frozenset({"RateLimiter", "AsyncRateLimiter", "RateLimitResult"})


def __getattr__(name: str) -> Any:
    """The rate limiter, imported when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'continuum.cache' has no attribute {name!r}")
    from continuum import ratelimit

    value = getattr(ratelimit, name)
    globals()[name] = value
    return value
