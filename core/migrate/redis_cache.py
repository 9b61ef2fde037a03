"""``RedisCache``: the cache API over a traditional Redis, for the parallel run of a migration.

    from continuum.cache import RedisCache, UpstashCache

    redis_cache = RedisCache()              # REDIS_URL, else redis://localhost:6379/0
    upstash_cache = UpstashCache()
    redis_cache.set("key", value, ttl=300)
    upstash_cache.set("key", value, ttl=300)
    result = upstash_cache.get("key") or redis_cache.get("key")

It runs the very operations ``UpstashCache`` runs (:mod:`continuum.cache.operations`, the
same generators, the same codec, the same key and value checks) over redis-py instead of
REST, so a value written by one reads back identically from the other. It is for the
services that still hold a Redis; serverless code never imports it (``import
continuum.cache`` does not import redis-py).

Unlike ``UpstashCache`` it has no request-scoped fallback: when Redis is down a call
raises :class:`~continuum.errors.CacheUnavailable`. ``RolloutCache`` is what keeps a
request working when either store is down.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from continuum.cache import (
    Batch,
    Operation,
    Operations,
    Pipeline,
    Replies,
    confirmed,
    drive,
)
from continuum.codec import make_codec
from continuum.errors import CacheError, ValidationError
from continuum.migrate.connection import DEFAULT_URL, RedisConnection
from continuum.namespace import DEFAULT_LAYER, LayerSpec, layer_spec
from continuum.sansio import Plan

__all__ = ["RedisCache", "RedisLayer"]

_SCAN_COUNT = 500
_DEFAULT_MAX_VALUE = 1024 * 1024


class RedisCache:
    """The cache API (get, set, delete, patterns, TTLs, counters, pipelines, layers) on Redis.

    ``url`` defaults to ``REDIS_URL``, then ``redis://localhost:6379/0``. ``rediss://``
    is TLS; plain ``redis://`` to another machine needs ``allow_insecure=True``.
    ``use_msgpack``, ``compress_threshold`` and ``max_value_size`` mean what they mean
    for ``UpstashCache`` (and default the same), so both read each other's values.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        use_msgpack: bool = False,
        compress_threshold: int | None = 1024,
        max_value_size: int = _DEFAULT_MAX_VALUE,
        timeout: float = 2.0,
        allow_insecure: bool = False,
    ) -> None:
        self._conn = RedisConnection(
            url or os.environ.get("REDIS_URL") or DEFAULT_URL,
            timeout=timeout,
            allow_insecure=allow_insecure,
        )
        codec = make_codec(use_msgpack=use_msgpack, compress_threshold=compress_threshold)
        self._ops = Operations(codec, max_value_size=max_value_size)
        self._stats: dict[str, list[int]] = {}

    def __repr__(self) -> str:
        return f"RedisCache({self._conn.display!r})"

    @property
    def url(self) -> str:
        """The server's URL with any password masked."""
        return self._conn.display

    # -- driving operations --------------------------------------------------------------

    def _execute(self, batch: Batch) -> Replies:
        return self._conn.execute(batch.commands, transaction=batch.transaction)

    def _run(self, op: Operation[Any], spec: LayerSpec = DEFAULT_LAYER) -> Any:
        """Run one operation (``spec`` is taken for :class:`Pipeline`; Redis has one store)."""
        return drive(op, self._execute, time.sleep)

    def _count(self, spec: LayerSpec, hit: bool) -> None:
        stats = self._stats.setdefault(spec.name, [0, 0])
        stats[0 if hit else 1] += 1

    # -- per-layer forms (the public methods and the layer views use these) ------------

    def _get(self, key: str, spec: LayerSpec) -> Any:
        value = self._run(self._ops.get(key))
        self._count(spec, value is not None)
        return value

    def _set(self, key: str, value: object, ttl: float | None) -> bool:
        return bool(self._run(self._ops.set(key, value, ttl)))

    def _delete_pattern(self, pattern: str, allow_all: bool, spec: LayerSpec) -> int:
        op = self._ops.delete_pattern(pattern, allow_all=allow_all, count=_SCAN_COUNT, layer=spec)
        return int(self._run(op))

    def _delete_prefix(self, prefix: str, spec: LayerSpec) -> int:
        return int(self._run(self._ops.delete_prefix(prefix, count=_SCAN_COUNT, layer=spec)))

    def _get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None) -> Any:
        op = self._ops.get_or_set(key, compute, ttl, expected_compute=0.1, lock_timeout=10.0)
        return self._run(op)

    # -- the public API ------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The value at ``key``, or None when missing."""
        return self._get(key, DEFAULT_LAYER)

    def set(
        self, key: str, value: object, ttl: float | None = 300, *, ex: float | None = None
    ) -> bool:
        """Store ``value`` for ``ttl`` seconds (``ex=`` is an alias; ``None``: no expiry)."""
        return self._set(key, value, ex if ex is not None else ttl)

    def delete(self, *keys: str) -> int:
        """Delete keys; the number that existed."""
        return int(self._run(self._ops.delete(keys)))

    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        """Delete keys matching a glob (SCAN + UNLINK in batches); the number deleted. A
        pattern that can match every key needs ``allow_all=True``."""
        return self._delete_pattern(pattern, allow_all, DEFAULT_LAYER)

    def delete_prefix(self, prefix: str) -> int:
        """Delete keys starting with ``prefix``, taken literally (glob characters escaped);
        an empty prefix is refused."""
        return self._delete_prefix(prefix, DEFAULT_LAYER)

    def exists(self, key: str) -> bool:
        return int(self._run(self._ops.exists((key,)))) > 0

    def expire(self, key: str, ttl: float) -> bool:
        """Set a TTL on an existing key; False when the key does not exist."""
        return bool(self._run(self._ops.expire(key, ttl)))

    def ttl(self, key: str) -> int:
        """Seconds left; -1 without expiry, -2 when missing (Redis's convention)."""
        return int(self._run(self._ops.ttl(key)))

    def increment(self, key: str, amount: int | float = 1) -> int | float:
        result: int | float = self._run(self._ops.increment(key, amount))
        return result

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None = 300) -> Any:
        """Read-through: one caller computes a missing value while the others wait."""
        return self._get_or_set(key, compute, ttl)

    def pipeline(self, *, transaction: bool = False) -> Pipeline:
        """A batch sent in one round trip (MULTI/EXEC with ``transaction=True``)."""
        return Pipeline(_PipelineRunner(self), transaction=transaction)

    def publish(self, channel: str, message: object) -> int:
        """Publish a message (str sent as-is, others encoded); the number of receivers."""
        return int(self._run(self._ops.publish(channel, message)))

    def execute(
        self, commands: Sequence[Sequence[str | bytes | int | float]], *,
        write: bool = True, transaction: bool = False,
    ) -> Replies:  # fmt: skip
        """Raw commands, raw replies: the escape hatch, as on ``UpstashCache``."""
        del write  # Redis retries nothing, so reads and writes are sent alike
        return self._conn.execute(commands, transaction=transaction)

    def ping(self) -> bool:
        """True when Redis answers (never raises)."""
        try:
            return bool(self._run(self._ops.ping()))
        except CacheError:
            return False

    def info(self) -> dict[str, Any]:
        """Where, whether it answers, the key count, and hit rate per layer (never raises)."""
        try:
            keys: int | None = int(self._run(self._ops.dbsize()))
        except CacheError:
            keys = None
        layers, hits, misses = {}, 0, 0
        for name, (h, m) in sorted(self._stats.items()):
            hits, misses = hits + h, misses + m
            layers[name] = {"hits": h, "misses": m, "hit_rate": h / (h + m) if h + m else 0.0}
        return {
            "backend": "redis",
            "url": self._conn.display,
            "reachable": keys is not None,
            "keys": keys,
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
            "layers": layers,
        }

    def flush(self, *, confirm: bool = False) -> bool:
        """Delete every key of this Redis database; needs ``confirm=True`` itself."""
        if not confirmed(confirm, "confirm"):
            raise ValidationError("flush() deletes every key; call flush(confirm=True)")
        return bool(self._run(self._ops.flush()))

    def layer(self, name: str) -> RedisLayer:
        """A view on one of the seed's layers: its key prefix and default TTL."""
        return RedisLayer(self, layer_spec(name))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisLayer:
    """A layer of a :class:`RedisCache`: keys without the prefix, the layer's default TTL.

    The same keys as ``UpstashCache.layer(name)``, so both stores hold a layer's values
    under one name. Redis has one database, so the layer's Upstash database and outage
    policy do not apply here.
    """

    def __init__(self, cache: RedisCache, spec: LayerSpec) -> None:
        self.cache = cache
        self.spec = spec

    def __repr__(self) -> str:
        return f"RedisLayer({self.spec.name!r}, prefix={self.spec.prefix!r})"

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

    def get(self, key: str) -> Any:
        return self.cache._get(self.key(key), self.spec)

    def set(self, key: str, value: object, ttl: float | None = None) -> bool:
        return self.cache._set(self.key(key), value, self.spec.ttl if ttl is None else ttl)

    def delete(self, *keys: str) -> int:
        return self.cache.delete(*(self.key(k) for k in keys))

    def exists(self, key: str) -> bool:
        return self.cache.exists(self.key(key))

    def expire(self, key: str, ttl: float) -> bool:
        return self.cache.expire(self.key(key), ttl)

    def ttl(self, key: str) -> int:
        return self.cache.ttl(self.key(key))

    def increment(self, key: str, amount: int | float = 1) -> int | float:
        return self.cache.increment(self.key(key), amount)

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None = None) -> Any:
        return self.cache._get_or_set(self.key(key), compute, self.spec.ttl if ttl is None else ttl)

    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        """Delete this layer's keys matching ``pattern`` (the prefix is added, escaped); a
        pattern that can match the whole layer needs ``allow_all=True``."""
        return self.cache._delete_pattern(pattern, allow_all, self.spec)

    def delete_prefix(self, prefix: str) -> int:
        """Delete this layer's keys starting with ``prefix`` (taken literally, not empty)."""
        return self.cache._delete_prefix(prefix, self.spec)

    def clear(self) -> int:
        """Delete every key of this layer (and only this layer)."""
        return self.cache._delete_pattern("*", True, self.spec)


class _PipelineRunner:
    """What a pipeline needs of its client, over a ``RedisCache``: the same codec-bound
    operations, and a runner that drives a plan's operation on redis-py."""

    def __init__(self, cache: RedisCache) -> None:
        self._cache = cache

    @property
    def _ops(self) -> Operations:
        return self._cache._ops

    def _run(self, plan: Plan[Any, Any]) -> Any:
        result = self._cache._run(plan.op)
        return result if plan.finish is None else plan.finish(result, None)
