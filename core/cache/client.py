"""``UpstashCache`` and ``AsyncUpstashCache``: the seed's API over Upstash REST.

    cache = UpstashCache()                      # REST from the environment, else local
    cache.set("user:123", {"name": "Alice"}, ttl=3600)
    with cache.request(remaining_ms=ctx.get_remaining_time_in_millis()):
        user = cache.get("user:123")            # memoised for the rest of the request

Every operation is written once (:mod:`continuum.cache.operations`) and runs here on one of three
stores: Upstash over REST, the request scope's :class:`~continuum.local.store.LocalCache` when
Upstash cannot answer (best-effort layers only; strict layers raise), or, in local mode,
one ``LocalCache`` owned by this instance. A call outside ``cache.request(...)`` is its own
scope. Network and server failures never escape a best-effort call: they become a
fallback, visible as ``WriteResult.degraded`` and in the meter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from continuum.cache.base import (
    SCAN_COUNT,
    STRICT,
    CacheBase,
    CallState,
    WriteResult,
    fell_back,
    script_op,
)
from continuum.cache.drive import Batch, Operation, Replies, drive
from continuum.cache.layers import CacheLayer
from continuum.cache.operations import escape_glob
from continuum.cache.pipeline import Pipeline
from continuum.cache.spec import DEFAULT_LAYER, LayerSpec, layer_spec
from continuum.config import ConnectionMode, UpstashConfig
from continuum.errors import CacheError, CacheTimeout, CacheUnavailable, ValidationError
from continuum.rest.executor import RestExecutor
from continuum.rest.protocol import Command, Reply, Script
from continuum.rest.transport import Transport

if TYPE_CHECKING:
    from continuum.pubsub import PubSub

__all__ = ["UpstashCache"]


class UpstashCache(CacheBase):
    """The synchronous client (see the module docstring)."""

    def __init__(
        self,
        config: UpstashConfig | None = None,
        mode: str | ConnectionMode = "auto",
        fallback: bool | None = None,
        rest_url: str | None = None,
        rest_token: str | None = None,
        redis_url: str | None = None,
        use_msgpack: bool | None = None,
        *,
        transport_factory: Callable[[str], Transport] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            config, mode, fallback, rest_url, rest_token, redis_url, use_msgpack, **options
        )
        self._transport_factory = transport_factory
        self._executors: dict[str, RestExecutor] = {}

    def _executor(self, database: str) -> RestExecutor:
        executor = self._executors.get(database)
        if executor is None:
            db = self.config.database(database)
            for other in self._executors.values():
                if other.database.url == db.url and other.database.token == db.token:
                    executor = other
                    break
            else:
                transport = self._transport_factory(db.url) if self._transport_factory else None
                executor = RestExecutor(db, self.config, transport=transport)
            self._executors[database] = executor
        return executor

    def _execute(self, batch: Batch, spec: LayerSpec, call: CallState) -> Replies:
        if self._local is not None:
            return self._local_execute(batch, call)
        memo_key = self._memo_lookup(batch, spec, call)
        if memo_key is not None and call.scope is not None and memo_key in call.scope.memo:
            return [call.scope.memo[memo_key]]
        executor = self._executor(spec.database)
        stays = call.stays_local
        if stays or executor.breaker.sheds():  # nothing will be sent, so encode nothing
            reason = fell_back if stays else executor.circuit_open
            replies = self._fallback(batch, spec, call, reason)
            if batch.write:  # a read the scope's store answered needs no copy in the memo
                self._memo_update(batch, spec, call, memo_key, replies)
            return replies
        try:
            replies = executor.execute(
                batch.commands, write=batch.write, transaction=batch.transaction,
                deadline=call.deadline, meter=call.meter,
            )  # fmt: skip
        except CacheUnavailable as exc:
            replies = self._fallback(batch, spec, call, exc)
        self._memo_update(batch, spec, call, memo_key, replies)
        return replies

    def _run(self, op: Operation[Any], spec: LayerSpec, call: CallState | None = None) -> Any:
        call = call or self._call()

        def pause(seconds: float) -> None:
            if call.deadline.remaining() <= seconds:
                raise CacheTimeout("the deadline leaves no time to wait")
            time.sleep(seconds)

        return drive(op, lambda batch: self._execute(batch, spec, call), pause)

    # -- internal forms used by layers -------------------------------------------------

    def _get(self, key: str, spec: LayerSpec) -> Any:
        call = self._call()
        value = self._run(self._ops.get(key), spec, call)
        self._count_read(spec, value is not None, call)
        return value

    def _set(self, key: str, value: object, ttl: float | None, spec: LayerSpec) -> WriteResult:
        call = self._call()
        ok = self._run(self._ops.set(key, value, ttl), spec, call)
        return self._write_result(ok, call)

    def _delete(self, keys: tuple[str, ...], spec: LayerSpec) -> int:
        return int(self._run(self._ops.delete(keys), spec))

    def _exists(self, keys: tuple[str, ...], spec: LayerSpec) -> int:
        return int(self._run(self._ops.exists(keys), spec))

    def _expire(self, key: str, ttl: float, spec: LayerSpec) -> bool:
        return bool(self._run(self._ops.expire(key, ttl), spec))

    def _ttl(self, key: str, spec: LayerSpec) -> int:
        return int(self._run(self._ops.ttl(key), spec))

    def _increment(self, key: str, amount: int | float, spec: LayerSpec) -> int | float:
        result: int | float = self._run(self._ops.increment(key, amount), spec)
        return result

    def _delete_pattern(self, pattern: str, allow_all: bool, spec: LayerSpec) -> int:
        op = self._ops.delete_pattern(pattern, allow_all=allow_all, count=SCAN_COUNT)
        return int(self._run(op, spec))

    def _get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None, spec: LayerSpec
    ) -> Any:
        op = self._ops.get_or_set(
            key, self._timed(key, compute), ttl,
            expected_compute=self._expected_compute(key),
            lock_timeout=min(10.0, max(1.0, self.config.budget)),
        )  # fmt: skip
        return self._run(op, spec)

    # -- the public API ------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The value at ``key``, or None when missing."""
        return self._get(key, DEFAULT_LAYER)

    def set(
        self, key: str, value: object, ttl: float | None = 300, *, ex: float | None = None
    ) -> WriteResult:
        """Store ``value`` for ``ttl`` seconds (``ex=`` is an alias; ``None``: no expiry)."""
        return self._set(key, value, ex if ex is not None else ttl, DEFAULT_LAYER)

    def delete(self, *keys: str) -> int:
        """Delete keys; the number that existed."""
        return self._delete(keys, DEFAULT_LAYER)

    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        """Delete keys matching a glob (SCAN + UNLINK in batches); the number deleted."""
        return self._delete_pattern(pattern, allow_all, DEFAULT_LAYER)

    def delete_prefix(self, prefix: str) -> int:
        """Delete keys starting with ``prefix``, taken literally (glob characters escaped)."""
        if not prefix:
            raise ValidationError("an empty prefix would delete every key; use flush()")
        return self._delete_pattern(escape_glob(prefix) + "*", False, DEFAULT_LAYER)

    def exists(self, key: str) -> bool:
        return self._exists((key,), DEFAULT_LAYER) > 0

    def expire(self, key: str, ttl: float) -> bool:
        """Set a TTL on an existing key; False when the key does not exist."""
        return self._expire(key, ttl, DEFAULT_LAYER)

    def ttl(self, key: str) -> int:
        """Seconds left; -1 without expiry, -2 when missing (Redis's convention)."""
        return self._ttl(key, DEFAULT_LAYER)

    def increment(self, key: str, amount: int | float = 1) -> int | float:
        return self._increment(key, amount, DEFAULT_LAYER)

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None = 300) -> Any:
        """Read-through: one caller computes a missing value while the others wait."""
        return self._get_or_set(key, compute, ttl, DEFAULT_LAYER)

    def pipeline(self, *, transaction: bool = False) -> Pipeline:
        """A batch sent in one round trip; ``with`` executes it on exit."""
        return Pipeline(self, transaction=transaction)

    def publish(self, channel: str, message: object) -> int:
        """Publish a message (str sent as-is, others encoded); the number of receivers."""
        return int(self._run(self._ops.publish(channel, message), DEFAULT_LAYER))

    def pubsub(self) -> PubSub:
        """A :class:`continuum.pubsub.PubSub` subscriber over REST server-sent events."""
        from continuum.pubsub import PubSub

        url, token = self._pubsub_target()
        return PubSub(url, token, timeout=self.config.timeout)

    def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[str | bytes | int],
        *, fallback: bool = False,
    ) -> Reply:  # fmt: skip
        """Run a Lua script (EVALSHA, EVAL on NOSCRIPT) as one write.

        In local mode it runs the Python twin registered with ``register_local_script``.
        When Upstash is unavailable it raises ``CacheUnavailable`` so the caller applies
        its own outage policy, unless ``fallback=True`` (then the scope's store runs it).
        """
        spec = DEFAULT_LAYER if fallback else STRICT
        reply: Reply = self._run(script_op(script, keys, args), spec)
        return reply

    def execute(
        self, commands: Sequence[Command], *, write: bool = True, transaction: bool = False
    ) -> Replies:
        """Raw commands (replies as ``Reply`` values); the escape hatch for other commands."""
        batch = Batch(list(commands), write=write, transaction=transaction, touches=None)
        return self._execute(batch, DEFAULT_LAYER, self._call())

    def ping(self) -> bool:
        """True when the configured backend answers (never raises)."""
        call = self._call()
        try:
            return bool(self._run(self._ops.ping(), STRICT, call))
        except CacheError:
            return False

    def info(self) -> dict[str, Any]:
        """Backend, circuit state, hit rate per layer, meter, and the key count if known."""
        try:
            keys: int | None = int(self._run(self._ops.dbsize(), STRICT))
        except CacheError:
            keys = None
        return self._info(keys)

    def flush(self, *, confirm: bool = False) -> bool:
        """Delete every key of the primary database; needs ``confirm=True``.

        Strict: when Upstash cannot answer this raises rather than "flushing" a fallback.
        """
        if not confirm:
            raise ValidationError("flush() deletes every key; call flush(confirm=True)")
        return bool(self._run(self._ops.flush(), STRICT))

    def reconnect(self) -> bool:
        """Force a probe of Upstash now; True when it answered."""
        if self._local is not None:
            return False
        self._force_probes()
        return self.ping()

    def _connect(self) -> bool:
        """:meth:`reconnect` under the name the seed's troubleshooting guide uses."""
        return self.reconnect()

    def layer(self, name: str) -> CacheLayer:
        """A view on one of the seed's layers (prefix, default TTL, outage policy)."""
        return CacheLayer(self, layer_spec(name))

    def close(self) -> None:
        for executor in set(self._executors.values()):
            executor.close()
        self._executors.clear()

    def __enter__(self) -> UpstashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
