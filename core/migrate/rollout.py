"""``RolloutCache``: write to Upstash and Redis, read by a per-key rollout percentage.

    rollout = RolloutCache(UpstashCache(), RedisCache(), percent=10, shadow_reads=True)
    rollout.set("user:42", profile, ttl=300)     # both stores
    rollout.get("user:42")                      # Upstash first for 10% of the keys

The migration's second phase in one object (docs/MIGRATING.md):

- **Writes go to both stores.** A store that fails is counted; the call fails only when
  both did (the primary's error is raised).
- **Reads follow the key.** A stable hash of the full key puts it in one of 10,000
  buckets; the keys in the first ``percent`` of them read Upstash first and fall back to
  Redis, the others read Redis first and fall back to Upstash. A fallback happens on a
  miss and on an outage, so Redis being down never fails a read Upstash can answer, and
  the other way round. Raising the percentage (10, 25, 50, 75, 100) only moves keys
  towards Upstash: a key that reads Upstash first keeps doing so.
- **Shadow reads** (optional) read the other store too and compare the decoded values;
  a difference is counted in :attr:`RolloutCache.meter` and ``info()``.

``percent`` may be a number or a callable (a feature flag read on every call).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from continuum.errors import CacheUnavailable, ConfigurationError, ValidationError
from continuum.namespace import layer_spec

__all__ = [
    "BUCKETS", "ROLLOUT_STEPS", "RolloutCache", "RolloutLayer", "RolloutMeter", "bucket",
]  # fmt: skip

#: The seed's rollout steps, in percent.
ROLLOUT_STEPS = (10, 25, 50, 75, 100)
#: Keys are spread over this many buckets: percentages to two decimals are exact.
BUCKETS = 10_000


class Side(Protocol):
    """What a side of the rollout offers: a cache or one of its layer views."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: object, ttl: float | None = ...) -> Any: ...
    def delete(self, *keys: str) -> int: ...
    def exists(self, key: str) -> bool: ...
    def expire(self, key: str, ttl: float) -> bool: ...
    def ttl(self, key: str) -> int: ...
    def increment(self, key: str, amount: int | float = ...) -> int | float: ...
    def delete_pattern(self, pattern: str, *, allow_all: bool = ...) -> int: ...
    def delete_prefix(self, prefix: str) -> int: ...


def bucket(key: str) -> int:
    """The key's bucket, 0 to 9,999: the same in every process, on every machine."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass
class RolloutMeter:
    """What the rollout did: where reads went, fallbacks, failures, shadow comparisons."""

    upstash_first: int = 0
    redis_first: int = 0
    fallback_reads: int = 0
    upstash_errors: int = 0
    redis_errors: int = 0
    shadow_reads: int = 0
    shadow_mismatches: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Rolled:
    """The cache API over a :class:`_Pair`; keys are relative to the pair's prefix."""

    def __init__(self, pair: _Pair) -> None:
        self._pair = pair

    def get(self, key: str) -> Any:
        return self._pair.get(key)

    def delete(self, *keys: str) -> int:
        return self._pair.delete(*keys)

    def exists(self, key: str) -> bool:
        return self._pair.exists(key)

    def expire(self, key: str, ttl: float) -> bool:
        return self._pair.expire(key, ttl)

    def ttl(self, key: str) -> int:
        return self._pair.ttl(key)

    def increment(self, key: str, amount: int | float = 1) -> int | float:
        return self._pair.increment(key, amount)

    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        return self._pair.delete_pattern(pattern, allow_all=allow_all)

    def delete_prefix(self, prefix: str) -> int:
        """Delete keys starting with ``prefix`` (taken literally) in both stores."""
        return self._pair.delete_prefix(prefix)


class RolloutCache(_Rolled):
    """Both stores behind one cache API (see the module docstring).

    ``upstash`` is an ``UpstashCache(fallback=False)``: the rollout is the fallback, and
    a request-scoped store answering for an Upstash outage would read as a miss and hold
    writes that vanish with the request.
    """

    def __init__(
        self,
        upstash: Any,
        redis: Any,
        *,
        percent: float | Callable[[], float] = 0,
        shadow_reads: bool = False,
    ) -> None:
        config = getattr(upstash, "config", None)
        if getattr(config, "fallback", False):
            raise ConfigurationError(
                "RolloutCache needs UpstashCache(fallback=False): during an Upstash outage "
                "the rollout reads Redis instead, and a request-scoped fallback would hide it"
            )
        _checked_percent(percent() if callable(percent) else percent)
        self._percent = percent
        self.shadow_reads = shadow_reads
        self.meter = RolloutMeter()
        self._upstash_cache = upstash
        self._redis_cache = redis
        super().__init__(_Pair(upstash, redis, self))

    def __repr__(self) -> str:
        return f"RolloutCache(percent={self.percent:g}, shadow_reads={self.shadow_reads})"

    @property
    def percent(self) -> float:
        """The current rollout percentage (a callable is asked now)."""
        value = self._percent() if callable(self._percent) else self._percent
        return _checked_percent(value)

    @percent.setter
    def percent(self, value: float | Callable[[], float]) -> None:
        _checked_percent(value() if callable(value) else value)
        self._percent = value

    def upstash_first(self, key: str) -> bool:
        """Whether reads of this full key try Upstash first at the current percentage."""
        return bucket(key) < self.percent * (BUCKETS // 100)

    def set(self, key: str, value: object, ttl: float | None = 300) -> bool:
        """Store in both; ``ttl`` seconds (``None``: no expiry), as ``UpstashCache.set``."""
        return self._pair.set(key, value, ttl)

    def layer(self, name: str) -> RolloutLayer:
        """A layer of both stores (its prefix and default TTL), rolled out by full key."""
        spec = layer_spec(name)
        upstash, redis = self._upstash_cache.layer(spec.name), self._redis_cache.layer(spec.name)
        return RolloutLayer(_Pair(upstash, redis, self, spec.prefix))

    def info(self) -> dict[str, Any]:
        """The rollout's settings and meter, and each store's own ``info()``."""
        return {
            "percent": self.percent,
            "shadow_reads": self.shadow_reads,
            "meter": self.meter.as_dict(),
            "upstash": self._upstash_cache.info(),
            "redis": self._redis_cache.info(),
        }


class RolloutLayer(_Rolled):
    """A layer of a :class:`RolloutCache`: keys without the prefix, the layer's TTL."""

    def __repr__(self) -> str:
        return f"RolloutLayer(prefix={self._pair.prefix!r})"

    def set(self, key: str, value: object, ttl: float | None = None) -> bool:
        """Store in both; ``None`` means the layer's default TTL."""
        return self._pair.set(key, value, ttl)

    def clear(self) -> int:
        """Delete every key of this layer in both stores (and only this layer)."""
        return self._pair.delete_pattern("*", allow_all=True)


class _Pair:
    """The two sides of one view (the caches, or the same layer of each)."""

    def __init__(self, upstash: Side, redis: Side, owner: RolloutCache, prefix: str = "") -> None:
        self.upstash = upstash
        self.redis = redis
        self.owner = owner
        self.prefix = prefix

    def _sides(self, key: str, *, read: bool) -> tuple[tuple[Side, str], tuple[Side, str]]:
        """(primary, secondary) for ``key``, each with its meter name; reads are counted."""
        upstash_first = self.owner.upstash_first(self.prefix + key)
        if read:
            if upstash_first:
                self.owner.meter.upstash_first += 1
            else:
                self.owner.meter.redis_first += 1
        if upstash_first:
            return (self.upstash, "upstash"), (self.redis, "redis")
        return (self.redis, "redis"), (self.upstash, "upstash")

    def _failed(self, name: str) -> None:
        if name == "upstash":
            self.owner.meter.upstash_errors += 1
        else:
            self.owner.meter.redis_errors += 1

    def _read(self, key: str, call: Callable[[Side], Any], missing: Callable[[Any], bool]) -> Any:
        """The primary's answer; the secondary's on a miss or an outage."""
        (primary, first), (secondary, second) = self._sides(key, read=True)
        error: CacheUnavailable | None = None
        try:
            answer = call(primary)
        except CacheUnavailable as exc:
            self._failed(first)
            error, answer = exc, None
        if error is None and not missing(answer):
            if self.owner.shadow_reads:
                self._shadow(secondary, second, call, answer)
            return answer
        try:
            other = call(secondary)
        except CacheUnavailable:
            self._failed(second)
            if error is not None:
                raise error from None
            return answer
        self.owner.meter.fallback_reads += 1
        if self.owner.shadow_reads and error is None:  # both answered: compare them
            self._count_shadow(answer, other)
        return other

    def _shadow(self, side: Side, name: str, call: Callable[[Side], Any], answer: Any) -> None:
        try:
            other = call(side)
        except CacheUnavailable:
            self._failed(name)
            return
        self._count_shadow(answer, other)

    def _count_shadow(self, answer: Any, other: Any) -> None:
        self.owner.meter.shadow_reads += 1
        if answer != other:
            self.owner.meter.shadow_mismatches += 1

    def _write(self, key: str, call: Callable[[Side], Any]) -> Any:
        """Both sides; the primary's result, or the other's when the primary failed."""
        (primary, first), (secondary, second) = self._sides(key, read=False)
        results: list[Any] = []
        errors: list[CacheUnavailable] = []
        for side, name in ((primary, first), (secondary, second)):
            try:
                result = call(side)
            except CacheUnavailable as exc:
                self._failed(name)
                errors.append(exc)
                continue
            results.append(result)
        if not results:
            raise errors[0]
        return results[0]

    def get(self, key: str) -> Any:
        return self._read(key, lambda side: side.get(key), lambda answer: answer is None)

    def exists(self, key: str) -> bool:
        return bool(self._read(key, lambda side: side.exists(key), lambda answer: not answer))

    def ttl(self, key: str) -> int:
        return int(self._read(key, lambda side: side.ttl(key), lambda answer: answer == -2))

    def set(self, key: str, value: object, ttl: float | None) -> bool:
        return bool(self._write(key, lambda side: side.set(key, value, ttl)))

    def expire(self, key: str, ttl: float) -> bool:
        return bool(self._write(key, lambda side: side.expire(key, ttl)))

    def increment(self, key: str, amount: int | float) -> int | float:
        result: int | float = self._write(key, lambda side: side.increment(key, amount))
        return result

    def delete(self, *keys: str) -> int:
        first = keys[0] if keys else ""
        return int(self._write(first, lambda side: side.delete(*keys)))

    def delete_pattern(self, pattern: str, *, allow_all: bool) -> int:
        return int(
            self._write(pattern, lambda side: side.delete_pattern(pattern, allow_all=allow_all))
        )

    def delete_prefix(self, prefix: str) -> int:
        return int(self._write(prefix, lambda side: side.delete_prefix(prefix)))


def _checked_percent(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 100
    ):
        raise ValidationError(f"the rollout percentage is a number from 0 to 100, got {value!r}")
    return float(value)
