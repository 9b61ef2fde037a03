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

from continuum.cache.call import WriteResult
from continuum.cache.client import UpstashCache
from continuum.cache.drive import Batch, Operation, Replies, adrive, drive
from continuum.cache.guard import check_pattern, check_prefix, confirmed, literal_start
from continuum.cache.layers import AsyncCacheLayer, CacheLayer
from continuum.cache.operations import Operations, escape_glob
from continuum.cache.pipeline import AsyncPipeline, Pipeline
from continuum.cache.scoped import ScopedCache
from continuum.config import CacheBackend, ConnectionMode, UpstashConfig
from continuum.local import LocalCache
from continuum.namespace import (
    INTERNAL_PREFIX,
    LAYERS,
    LayerSpec,
    layer_overlapping,
    layer_spec,
)

if TYPE_CHECKING:
    from continuum.cache.async_client import AsyncUpstashCache
    from continuum.ratelimit import AsyncRateLimiter, RateLimiter, RateLimitResult

__all__ = [
    "INTERNAL_PREFIX",
    "LAYERS",
    "UPSTASH_AVAILABLE",
    "AsyncCacheLayer",
    "AsyncPipeline",
    "AsyncRateLimiter",
    "AsyncUpstashCache",
    "Batch",
    "CacheBackend",
    "CacheLayer",
    "ConnectionMode",
    "LayerSpec",
    "LocalCache",
    "Operation",
    "Operations",
    "Pipeline",
    "RateLimitResult",
    "RateLimiter",
    "Replies",
    "ScopedCache",
    "UpstashCache",
    "UpstashConfig",
    "WriteResult",
    "adrive",
    "check_pattern",
    "check_prefix",
    "confirmed",
    "drive",
    "escape_glob",
    "layer_overlapping",
    "layer_spec",
    "literal_start",
]

# The seed's flag for "the Upstash client can be used": the REST client is part of this
# package (no optional SDK that could be missing), so it always can.
UPSTASH_AVAILABLE = True

# Imported when first asked for. RedisCache is left out of __all__: it needs the optional
# redis-py, which `from continuum.cache import *` must not require.
_LAZY = {
    "AsyncUpstashCache": "continuum.cache.async_client",  # a sync handler never needs it
    "RateLimiter": "continuum.ratelimit",
    "AsyncRateLimiter": "continuum.ratelimit",
    "RateLimitResult": "continuum.ratelimit",
    "RedisCache": "continuum.migrate.redis_cache",
    "RolloutCache": "continuum.migrate.rollout",
}


def __getattr__(name: str) -> Any:
    """The async client, the rate limiter and the migration's caches, imported when first
    asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
