"""Layer views: ``cache.layer(name)`` gives one, whose methods take keys without the prefix.

What a layer is (prefix, TTL, database, outage policy) lives in :mod:`continuum.cache.spec`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from continuum.cache.base import WriteResult
from continuum.cache.operations import escape_glob
from continuum.cache.spec import LayerSpec
from continuum.errors import ValidationError

__all__ = ["AsyncCacheLayer", "CacheLayer"]


class LayerHost(Protocol):
    """What a :class:`CacheLayer` needs of its client: the per-layer forms of its calls."""

    def _get(self, key: str, spec: LayerSpec) -> Any: ...
    def _set(self, key: str, value: object, ttl: float | None, spec: LayerSpec) -> WriteResult: ...
    def _delete(self, keys: tuple[str, ...], spec: LayerSpec) -> int: ...
    def _exists(self, keys: tuple[str, ...], spec: LayerSpec) -> int: ...
    def _expire(self, key: str, ttl: float, spec: LayerSpec) -> bool: ...
    def _ttl(self, key: str, spec: LayerSpec) -> int: ...
    def _increment(self, key: str, amount: int | float, spec: LayerSpec) -> int | float: ...
    def _get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None, spec: LayerSpec
    ) -> Any: ...
    def _delete_pattern(self, pattern: str, allow_all: bool, spec: LayerSpec) -> int: ...


class AsyncLayerHost(Protocol):
    """The same for :class:`AsyncCacheLayer`: each call awaited."""

    def _get(self, key: str, spec: LayerSpec) -> Awaitable[Any]: ...
    def _set(
        self, key: str, value: object, ttl: float | None, spec: LayerSpec
    ) -> Awaitable[WriteResult]: ...
    def _delete(self, keys: tuple[str, ...], spec: LayerSpec) -> Awaitable[int]: ...
    def _exists(self, keys: tuple[str, ...], spec: LayerSpec) -> Awaitable[int]: ...
    def _expire(self, key: str, ttl: float, spec: LayerSpec) -> Awaitable[bool]: ...
    def _ttl(self, key: str, spec: LayerSpec) -> Awaitable[int]: ...
    def _increment(
        self, key: str, amount: int | float, spec: LayerSpec
    ) -> Awaitable[int | float]: ...
    def _get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None, spec: LayerSpec
    ) -> Awaitable[Any]: ...
    def _delete_pattern(self, pattern: str, allow_all: bool, spec: LayerSpec) -> Awaitable[int]: ...


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
    """A layer of an :class:`~continuum.cache.UpstashCache`; keys are given without the prefix."""

    def __init__(self, cache: LayerHost, spec: LayerSpec) -> None:
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
    """A layer of an :class:`~continuum.cache.client.AsyncUpstashCache`."""

    def __init__(self, cache: AsyncLayerHost, spec: LayerSpec) -> None:
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
