"""``continuum.cache``: the seed's home of ``UpstashCache``, ``AsyncUpstashCache`` and
``RateLimiter``.

    from continuum.cache import UpstashCache, RateLimiter

A call goes ``client`` / ``async_client`` (the public API) -> ``operations`` (each cache
operation, written once as a generator) -> ``drive`` (the sync and async drivers) ->
``base`` (scopes, the memo, the fallback policy) -> :mod:`continuum.rest` (the wire) or
:mod:`continuum.local` (the fallback store). ``layers``, ``spec`` and ``pipeline`` are the
views and batches on top. The rate limiter is imported on first use, and so are the
migration's ``RedisCache`` and ``RolloutCache`` (:mod:`continuum.migrate`): importing this
package never imports redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from continuum.cache.async_client import AsyncUpstashCache
from continuum.cache.base import ScopedCache, WriteResult
from continuum.cache.client import UpstashCache
from continuum.cache.layers import AsyncCacheLayer, CacheLayer
from continuum.cache.pipeline import AsyncPipeline, Pipeline
from continuum.cache.spec import LAYERS, LayerSpec, layer_spec

if TYPE_CHECKING:
    from continuum.migrate.redis_cache import RedisCache as RedisCache  # not in __all__
    from continuum.migrate.rollout import RolloutCache
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
    "RolloutCache",
    "ScopedCache",
    "UpstashCache",
    "WriteResult",
    "layer_spec",
]

# Imported when first asked for. RedisCache is left out of __all__: it needs the optional
# redis-py, which `from continuum.cache import *` must not require.
_LAZY = {
    "RateLimiter": "continuum.ratelimit",
    "AsyncRateLimiter": "continuum.ratelimit",
    "RateLimitResult": "continuum.ratelimit",
    "RedisCache": "continuum.migrate.redis_cache",
    "RolloutCache": "continuum.migrate.rollout",
}


def __getattr__(name: str) -> Any:
    """The rate limiter and the migration's caches, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'continuum.cache' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
