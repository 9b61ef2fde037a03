"""The seed's cache layers: a key prefix, a default TTL, a database and an outage policy.

| layer      | prefix      | TTL    | on outage                                  |
|------------|-------------|--------|--------------------------------------------|
| sessions   | session:    | 1 h    | request-scoped fallback                    |
| query      | query:      | 5 min  | request-scoped fallback                    |
| memory     | memory:     | 30 min | request-scoped fallback                    |
| ratelimit  | ratelimit:  | 1 min  | request-scoped fallback                    |
| federation | fed:queue:  | 24 h   | STRICT: raises ``CacheUnavailable``        |
| websocket  | ws:         | 5 min  | request-scoped fallback                    |

A federation event that silently landed in a per-request store would be lost when the
request ends, so that layer never falls back: the caller can retry or queue elsewhere.
``cache.layer(name)`` returns a view whose methods take keys without the prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import ConfigurationError, ValidationError
from core.operations import escape_glob

if TYPE_CHECKING:
    from core.async_cache import AsyncUpstashCache
    from core.cache import UpstashCache, WriteResult

__all__ = ["DEFAULT_LAYER", "LAYERS", "AsyncCacheLayer", "CacheLayer", "LayerSpec", "layer_spec"]


@dataclass(frozen=True)
class LayerSpec:
    """What a layer is: its key prefix, default TTL (s), database and outage policy."""

    name: str
    prefix: str
    ttl: float | None
    database: str = "primary"
    strict: bool = False


LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec("sessions", "session:", 3600, database="sessions"),
        LayerSpec("query", "query:", 300),
        LayerSpec("memory", "memory:", 1800),
        LayerSpec("ratelimit", "ratelimit:", 60),
        LayerSpec("federation", "fed:queue:", 86400, database="federation", strict=True),
        LayerSpec("websocket", "ws:", 300),
    )
}
_ALIASES = {
    "session": "sessions", "queries": "query", "query_results": "query", "memories": "memory",
    "hot_memories": "memory", "rate_limits": "ratelimit", "fed": "federation",
    "federation_queue": "federation", "ws": "websocket", "pubsub": "websocket",
}  # fmt: skip

#: What calls on the cache itself (not through a layer) use.
DEFAULT_LAYER = LayerSpec("default", "", 300)


def layer_spec(name: str) -> LayerSpec:
    """The layer called ``name`` (a few spellings from the seed are accepted)."""
    if not isinstance(name, str):
        raise ConfigurationError(f"a layer name is a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    spec = LAYERS.get(_ALIASES.get(key, key))
    if spec is None:
        raise ConfigurationError(
            f"unknown cache layer {name!r}; expected one of {', '.join(LAYERS)}"
        )
    return spec


class _View:
    def __init__(self, spec: LayerSpec) -> None:
        self.spec = spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name!r}, prefix={self.spec.prefix!r})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def prefix(self) -> str:
        return self.spec.prefix

    @property
    def default_ttl(self) -> float | None:
        return self.spec.ttl

    def key(self, key: str) -> str:
        """The full key stored in Redis for ``key`` in this layer."""
        return self.spec.prefix + key

    def _ttl(self, ttl: float | None) -> float | None:
        return self.spec.ttl if ttl is None else ttl

    def _pattern(self, pattern: str) -> str:
        return escape_glob(self.spec.prefix) + pattern

    def _checked(self, pattern: str, allow_all: bool) -> str:
        if not isinstance(pattern, str):
            raise ValidationError("a pattern is a str glob")
        if pattern.strip("*") == "" and not allow_all:
            raise ValidationError(
                f"pattern {pattern!r} matches the whole {self.spec.name!r} layer; "
                "pass allow_all=True (or call clear())"
            )
        return self._pattern(pattern)


class CacheLayer(_View):
    """A layer of an :class:`~core.cache.UpstashCache`; keys are given without the prefix."""

    def __init__(self, cache: UpstashCache, spec: LayerSpec) -> None:
        super().__init__(spec)
        self.cache = cache

    def get(self, key: str) -> Any:
        return self.cache._get(self.key(key), self.spec)

    def set(self, key: str, value: object, ttl: float | None = None) -> WriteResult:
        return self.cache._set(self.key(key), value, self._ttl(ttl), self.spec)

    def delete(self, *keys: str) -> int:
        return self.cache._delete(tuple(self.key(k) for k in keys), self.spec)

    def exists(self, key: str) -> bool:
        return self.cache._exists((self.key(key),), self.spec) > 0

    def expire(self, key: str, ttl: float) -> bool:
        return self.cache._expire(self.key(key), ttl, self.spec)

    def ttl(self, key: str) -> int:
        return self.cache._ttl(self.key(key), self.spec)

    def increment(self, key: str, amount: int | float = 1) -> int | float:
        return self.cache._increment(self.key(key), amount, self.spec)

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None = None) -> Any:
        return self.cache._get_or_set(self.key(key), compute, self._ttl(ttl), self.spec)

    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        """Delete this layer's keys matching ``pattern`` (the prefix is added, escaped)."""
        return self.cache._delete_pattern(self._checked(pattern, allow_all), True, self.spec)

    def delete_prefix(self, prefix: str) -> int:
        """Delete this layer's keys starting with ``prefix`` (taken literally)."""
        return self.cache._delete_pattern(self._pattern(escape_glob(prefix) + "*"), True, self.spec)

    def clear(self) -> int:
        """Delete every key of this layer (and only this layer)."""
        return self.delete_prefix("")


class AsyncCacheLayer(_View):
    """A layer of an :class:`~core.cache.AsyncUpstashCache`."""

    def __init__(self, cache: AsyncUpstashCache, spec: LayerSpec) -> None:
        super().__init__(spec)
        self.cache = cache

    def get(self, key: str) -> Awaitable[Any]:
        return self.cache._get(self.key(key), self.spec)

    def set(self, key: str, value: object, ttl: float | None = None) -> Awaitable[WriteResult]:
        return self.cache._set(self.key(key), value, self._ttl(ttl), self.spec)

    def delete(self, *keys: str) -> Awaitable[int]:
        return self.cache._delete(tuple(self.key(k) for k in keys), self.spec)

    async def exists(self, key: str) -> bool:
        return await self.cache._exists((self.key(key),), self.spec) > 0

    def expire(self, key: str, ttl: float) -> Awaitable[bool]:
        return self.cache._expire(self.key(key), ttl, self.spec)

    def ttl(self, key: str) -> Awaitable[int]:
        return self.cache._ttl(self.key(key), self.spec)

    def increment(self, key: str, amount: int | float = 1) -> Awaitable[int | float]:
        return self.cache._increment(self.key(key), amount, self.spec)

    def get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None = None
    ) -> Awaitable[Any]:
        return self.cache._get_or_set(self.key(key), compute, self._ttl(ttl), self.spec)

    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> Awaitable[int]:
        """Delete this layer's keys matching ``pattern`` (the prefix is added, escaped)."""
        return self.cache._delete_pattern(self._checked(pattern, allow_all), True, self.spec)

    def delete_prefix(self, prefix: str) -> Awaitable[int]:
        """Delete this layer's keys starting with ``prefix`` (taken literally)."""
        return self.cache._delete_pattern(self._pattern(escape_glob(prefix) + "*"), True, self.spec)

    def clear(self) -> Awaitable[int]:
        """Delete every key of this layer (and only this layer)."""
        return self.delete_prefix("")
