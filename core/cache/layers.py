"""Layer views: ``cache.layer(name)`` gives one, whose methods take keys without the prefix.

What a layer is (prefix, TTL, database, outage policy) lives in :mod:`continuum.namespace`.
The methods are written once on :class:`LayerView`; :class:`CacheLayer` runs them on an
``UpstashCache``, :class:`AsyncCacheLayer` awaits them on an ``AsyncUpstashCache``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from continuum.cache.call import WriteResult
from continuum.cache.methods import AnyClient, Layered
from continuum.errors import ValidationError
from continuum.namespace import LayerSpec
from continuum.sansio import Awaiting, Blocking, twin

__all__ = ["AsyncCacheLayer", "CacheLayer", "LayerView"]


class LayerView:
    """One layer of a cache client; keys are given without the layer's prefix."""

    def __init__(self, cache: AnyClient, spec: LayerSpec) -> None:
        self.cache = cache
        self.spec = spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name!r}, prefix={self.spec.prefix!r})"

    def _run(self, plan: Layered[Any]) -> Any:
        return self.cache._run(plan)

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
        if not isinstance(key, str):  # not a TypeError from the concatenation
            raise ValidationError(f"cache keys are str, got {type(key).__name__}")
        return self.spec.prefix + key

    def _ttl_or_default(self, ttl: float | None) -> float | None:
        return self.spec.ttl if ttl is None else ttl

    @twin
    def get(self, key: str) -> Layered[Any]:
        return self.cache._get(self.key(key), self.spec)

    @get.at_once
    def _get_at_once(self, key: str) -> Layered[Any] | Any:
        return self.cache._get_now(self.key(key), self.spec)

    @twin
    def set(self, key: str, value: object, ttl: float | None = None) -> Layered[WriteResult]:
        return self.cache._set(self.key(key), value, self._ttl_or_default(ttl), self.spec)

    @set.at_once
    def _set_at_once(
        self, key: str, value: object, ttl: float | None = None
    ) -> Layered[WriteResult] | WriteResult:
        return self.cache._set_now(self.key(key), value, self._ttl_or_default(ttl), self.spec)

    @twin
    def delete(self, *keys: str) -> Layered[int]:
        return self.cache._delete(tuple(self.key(k) for k in keys), self.spec)

    @twin
    def exists(self, key: str) -> Layered[bool]:
        return self.cache._exists((self.key(key),), self.spec)

    @twin
    def expire(self, key: str, ttl: float) -> Layered[bool]:
        return self.cache._expire(self.key(key), ttl, self.spec)

    @twin
    def ttl(self, key: str) -> Layered[int]:
        return self.cache._ttl(self.key(key), self.spec)

    @twin
    def increment(self, key: str, amount: int | float = 1) -> Layered[int | float]:
        return self.cache._increment(self.key(key), amount, self.spec)

    @twin
    def get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None = None
    ) -> Layered[Any]:
        return self.cache._get_or_set(self.key(key), compute, self._ttl_or_default(ttl), self.spec)

    @twin
    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> Layered[int]:
        """Delete this layer's keys matching ``pattern`` (the prefix is added, escaped); a
        pattern that can match the whole layer needs ``allow_all=True``."""
        return self.cache._delete_pattern(pattern, allow_all, self.spec)

    @twin
    def delete_prefix(self, prefix: str) -> Layered[int]:
        """Delete this layer's keys starting with ``prefix`` (taken literally, not empty)."""
        return self.cache._delete_prefix(prefix, self.spec)

    @twin
    def clear(self) -> Layered[int]:
        """Delete every key of this layer (and only this layer)."""
        return self.cache._delete_pattern("*", True, self.spec)


class CacheLayer(LayerView, Blocking):
    """A layer of an :class:`~continuum.cache.UpstashCache`."""


class AsyncCacheLayer(LayerView, Awaiting):
    """A layer of an :class:`~continuum.cache.AsyncUpstashCache`; its methods are awaited."""
