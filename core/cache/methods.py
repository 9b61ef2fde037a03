"""The clients' methods, written once for ``UpstashCache`` and ``AsyncUpstashCache``.

Each method builds a :class:`~continuum.sansio.Plan`: one operation from
:mod:`continuum.cache.operations`, the layer it runs in (prefix, database, outage
policy) and what to make of its result once the call's bookkeeping is known.
:class:`~continuum.sansio.twin` turns each into a plain method on the sync client and a
coroutine method on the async one; each client's ``_run`` carries the plan out. The
``_<name>`` builders take the layer explicitly: :mod:`continuum.cache.layers` uses them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from continuum.cache.base import (
    STORED_IN_FALLBACK,
    STORED_LOCALLY,
    STRICT,
    CacheBase,
    Sender,
    script_op,
)
from continuum.cache.call import WriteResult
from continuum.cache.drive import Batch, Operation, Replies
from continuum.cache.guard import confirmed
from continuum.cache.joined import joined_op
from continuum.cache.operations import MAX_KEY_BYTES
from continuum.errors import CacheError, ValidationError
from continuum.gate import REFUSED, Failed, Join, JoinedResult
from continuum.local import MAX_EXPIRE_MS
from continuum.namespace import DEFAULT_LAYER, LayerSpec, layer_spec
from continuum.rest import Command, Reply, Script
from continuum.sansio import Plan, twin
from continuum.scope import current_scope

__all__ = ["SCAN_COUNT", "AnyClient", "CacheMethods", "Layered"]

#: Keys asked for per SCAN page by ``delete_pattern``.
SCAN_COUNT = 500
#: The longest TTL in seconds a local store takes in ``SET ... EX`` (Redis's bound).
_MAX_EX = MAX_EXPIRE_MS // 1000

T = TypeVar("T")
TransportT = TypeVar("TransportT")
SenderT = TypeVar("SenderT", bound=Sender)
LayerT = TypeVar("LayerT")
PipelineT = TypeVar("PipelineT")
SubscriberT = TypeVar("SubscriberT")
Layered = Plan[LayerSpec, T]


class CacheMethods(
    CacheBase[TransportT, SenderT], Generic[TransportT, SenderT, LayerT, PipelineT, SubscriberT]
):
    """The seed's cache methods over :class:`CacheBase`, for both clients.

    A client names the classes of its views: ``_layer_type`` (a layer view),
    ``_pipeline_type`` and, imported when first asked for, ``_subscriber_type()``.
    """

    _layer_type: Callable[[Any, LayerSpec], LayerT]
    _pipeline_type: Callable[..., PipelineT]

    def _subscriber_type(self) -> Callable[..., SubscriberT]:
        raise NotImplementedError

    def _run(self, plan: Layered[Any]) -> Any:
        """Carry ``plan`` out: its result (sync client), or an awaitable of it (async)."""
        raise NotImplementedError

    # -- plans, by layer (also what CacheLayer runs) -------------------------------------

    # ``get`` and ``set`` answer at once where no I/O can be needed: in local mode, from
    # the scope's memo, and from the scope's fallback store while the circuit is open.
    # There the plan's machinery (a batch, a call, a driver, replies) would cost several
    # times the store's own answer. Everything else, and every input the fast path does
    # not take (a non-ASCII or oversized key, a float or None TTL, strict layers, no
    # scope), gets the plan, which validates it and says what is wrong. Both ways end
    # in the same state, result and bookkeeping (tests/cache/test_answered_at_once.py).
    # ``_get``/``_set`` make only the plan: the reference API sends it with a rate limit.

    def _get(self, key: str, spec: LayerSpec) -> Layered[Any]:
        return Plan(self._ops.get_batch(key), spec, self._read)

    def _get_now(self, key: str, spec: LayerSpec) -> Layered[Any] | Any:
        """``get``'s value where no I/O is needed, else its plan."""
        if type(key) is str and key.isascii() and len(key) <= MAX_KEY_BYTES:
            scope = current_scope()
            store = self._local
            if store is not None:  # local mode: the _local_execute path, inline
                meter = self._meter if scope is None else scope.meter
                return self._counted(self._ops.decode(store.get(key)), spec.name, meter)
            if scope is not None:
                memo = scope.memo
                if memo:  # CallState's memo lookup, inline
                    memo_key = (self._db_urls[spec.database], key)
                    if memo_key in memo:
                        value = self._ops.decode(memo[memo_key])
                        return self._counted(value, spec.name, scope.meter)
                # A read on its way (async) may be this key's in this scope: the plan
                # waits for its answer rather than the fallback store's.
                if not spec.strict and self._fallback_allowed and not self._inflight:
                    sender = self._senders.get(spec.database)
                    if sender is not None and sender.breaker.sheds():  # _fallback, inline
                        meter = scope.meter
                        meter.fallback_ops += 1
                        value = self._ops.decode(scope.local.get(key))
                        return self._counted(value, spec.name, meter)
        return self._get(key, spec)

    def _set(
        self, key: str, value: object, ttl: float | None, spec: LayerSpec
    ) -> Layered[WriteResult]:
        return Plan(self._ops.set_batch(key, value, ttl), spec, self._write_result)

    def _set_now(
        self, key: str, value: object, ttl: float | None, spec: LayerSpec
    ) -> Layered[WriteResult] | WriteResult:
        """``set``'s result where no I/O is needed, else its plan."""
        if (
            type(key) is str and key.isascii() and len(key) <= MAX_KEY_BYTES
            and type(ttl) is int and 0 < ttl <= _MAX_EX
        ):  # fmt: skip
            data = self._ops.encode(value)  # first, as the plan does: a refused value sheds nothing
            store = self._local
            if store is not None:
                store._set_px(key, data, ttl * 1000)
                return STORED_LOCALLY
            scope = current_scope()
            if scope is not None and not spec.strict and self._fallback_allowed:
                sender = self._senders.get(spec.database)
                if sender is not None and sender.breaker.sheds():  # _fallback, inline
                    meter = scope.meter
                    meter.fallback_ops += 1
                    meter.degraded_writes += 1
                    scope.local._set_px(key, data, ttl * 1000)
                    if scope.memo:  # _memo_update, inline
                        scope.memo.pop((self._db_urls[spec.database], key), None)
                    return STORED_IN_FALLBACK
            batch = self._ops.encoded_set_batch(key, data, ttl)  # the value is encoded once
            return Plan(batch, spec, self._write_result)
        return self._set(key, value, ttl, spec)

    def _delete(self, keys: tuple[str, ...], spec: LayerSpec) -> Layered[int]:
        return Plan(self._ops.delete(keys), spec)

    def _exists(self, keys: tuple[str, ...], spec: LayerSpec) -> Layered[bool]:
        return Plan(self._ops.exists(keys), spec, _positive)

    def _expire(self, key: str, ttl: float, spec: LayerSpec) -> Layered[bool]:
        return Plan(self._ops.expire(key, ttl), spec)

    def _ttl(self, key: str, spec: LayerSpec) -> Layered[int]:
        return Plan(self._ops.ttl(key), spec)

    def _increment(self, key: str, amount: int | float, spec: LayerSpec) -> Layered[int | float]:
        return Plan(self._ops.increment(key, amount), spec)

    def _delete_pattern(self, pattern: str, allow_all: bool, spec: LayerSpec) -> Layered[int]:
        op = self._ops.delete_pattern(pattern, allow_all=allow_all, count=SCAN_COUNT, layer=spec)
        return Plan(op, spec)

    def _delete_prefix(self, prefix: str, spec: LayerSpec) -> Layered[int]:
        return Plan(self._ops.delete_prefix(prefix, count=SCAN_COUNT, layer=spec), spec)

    def _get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None, spec: LayerSpec
    ) -> Layered[Any]:
        op = self._ops.get_or_set(
            key, compute, ttl,
            expected_compute=self._expected_compute(key),
            lock_timeout=min(10.0, max(1.0, self.config.budget)),
            observe=functools.partial(self._observe_compute, key),
        )  # fmt: skip
        return Plan(op, spec)

    # -- the public API ------------------------------------------------------------------

    @twin
    def get(self, key: str) -> Layered[Any]:
        """The value at ``key``, or None when missing."""
        return self._get(key, DEFAULT_LAYER)

    @get.at_once
    def _get_at_once(self, key: str) -> Layered[Any] | Any:
        return self._get_now(key, DEFAULT_LAYER)

    @twin
    def set(
        self, key: str, value: object, ttl: float | None = 300, *, ex: float | None = None
    ) -> Layered[WriteResult]:
        """Store ``value`` for ``ttl`` seconds (``ex=`` is an alias; ``None``: no expiry)."""
        return self._set(key, value, ex if ex is not None else ttl, DEFAULT_LAYER)

    @set.at_once
    def _set_at_once(
        self, key: str, value: object, ttl: float | None = 300, *, ex: float | None = None
    ) -> Layered[WriteResult] | WriteResult:
        return self._set_now(key, value, ex if ex is not None else ttl, DEFAULT_LAYER)

    @twin
    def delete(self, *keys: str) -> Layered[int]:
        """Delete keys; the number that existed."""
        return self._delete(keys, DEFAULT_LAYER)

    @twin
    def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> Layered[int]:
        """Delete keys matching a glob (SCAN + UNLINK in batches); the number deleted.

        A pattern that does not start with a literal character (``*``, ``?*``,
        ``[a-z]*``) can match every key and needs ``allow_all=True``.
        """
        return self._delete_pattern(pattern, allow_all, DEFAULT_LAYER)

    @twin
    def delete_prefix(self, prefix: str) -> Layered[int]:
        """Delete keys starting with ``prefix``, taken literally (glob characters escaped);
        an empty prefix is refused."""
        return self._delete_prefix(prefix, DEFAULT_LAYER)

    @twin
    def exists(self, key: str) -> Layered[bool]:
        """True when ``key`` exists."""
        return self._exists((key,), DEFAULT_LAYER)

    @twin
    def expire(self, key: str, ttl: float) -> Layered[bool]:
        """Set a TTL on an existing key; False when the key does not exist."""
        return self._expire(key, ttl, DEFAULT_LAYER)

    @twin
    def ttl(self, key: str) -> Layered[int]:
        """Seconds left; -1 without expiry, -2 when missing (Redis's convention)."""
        return self._ttl(key, DEFAULT_LAYER)

    @twin
    def increment(self, key: str, amount: int | float = 1) -> Layered[int | float]:
        """Add ``amount`` to the number at ``key`` (0 when missing); the new value."""
        return self._increment(key, amount, DEFAULT_LAYER)

    @twin
    def get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None = 300
    ) -> Layered[Any]:
        """Read-through: one caller computes a missing value while the others wait.

        ``compute`` may be a coroutine function on the async client.
        """
        return self._get_or_set(key, compute, ttl, DEFAULT_LAYER)

    @twin
    def publish(self, channel: str, message: object) -> Layered[int]:
        """Publish a message (str sent as-is, others encoded); the number of receivers."""
        return Plan(self._ops.publish(channel, message), DEFAULT_LAYER)

    @twin
    def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[str | bytes | int],
        *, fallback: bool = False,
    ) -> Layered[Reply]:  # fmt: skip
        """Run a Lua script (EVALSHA, EVAL on NOSCRIPT) as one write.

        In local mode it runs the Python twin registered with ``register_local_script``.
        When Upstash is unavailable it raises ``CacheUnavailable`` so the caller applies
        its own outage policy, unless ``fallback=True`` (then the scope's store runs it).
        """
        return Plan(script_op(script, keys, args), DEFAULT_LAYER if fallback else STRICT)

    @twin
    def _joined(self, join: Join, plan: Layered[Any]) -> Layered[JoinedResult]:
        """``plan`` with ``join``'s script check in the same round trip (see
        :mod:`continuum.cache.joined`): the script's reply and the plan's result
        (``REFUSED`` when the script refused, ``Failed`` when the plan raised)."""
        return Plan(joined_op(plan.op, join), plan.route, functools.partial(_finish, plan.finish))

    @twin
    def execute(
        self, commands: Sequence[Command], *, write: bool = True, transaction: bool = False
    ) -> Layered[Replies]:
        """Raw commands (replies as ``Reply`` values); the escape hatch for other commands."""
        batch = Batch(list(commands), write=write, transaction=transaction, touches=None)
        return Plan(_as_sent(batch), DEFAULT_LAYER)

    @twin
    def ping(self) -> Layered[bool]:
        """True when the configured backend answers (never raises)."""
        return Plan(_or_else(self._ops.ping(), False), STRICT)

    @twin
    def info(self) -> Layered[dict[str, Any]]:
        """Backend, circuit state, hit rate per layer, meter, and the key count if known."""
        return Plan(self._info_op(), STRICT)

    @twin
    def flush(self, *, confirm: bool = False) -> Layered[bool]:
        """Delete every key of the primary database; needs ``confirm=True`` (only the
        value ``True``: ``"false"`` or ``1`` is refused).

        Strict: when Upstash cannot answer this raises rather than "flushing" a fallback.
        """
        if not confirmed(confirm, "confirm"):
            raise ValidationError("flush() deletes every key; call flush(confirm=True)")
        return Plan(self._ops.flush(), STRICT)

    @twin
    def reconnect(self) -> Layered[bool]:
        """Force a probe of Upstash now; True when it answered."""
        return Plan(self._reconnect_op(), STRICT)

    _connect = reconnect  # the name the seed's troubleshooting guide uses

    def layer(self, name: str) -> LayerT:
        """A view on one of the seed's layers (prefix, default TTL, outage policy)."""
        return self._layer_type(self, layer_spec(name))

    def pipeline(self, *, transaction: bool = False) -> PipelineT:
        """A batch sent in one round trip; ``with`` (``async with``) executes it on exit."""
        return self._pipeline_type(self, transaction=transaction)

    def pubsub(self) -> SubscriberT:
        """A subscriber over REST server-sent events (see :mod:`continuum.pubsub`)."""
        url, token = self._pubsub_target()
        secrets = [db.token for db in self.config.databases.values()]
        return self._subscriber_type()(url, token, timeout=self.config.timeout, secrets=secrets)

    def _info_op(self) -> Operation[dict[str, Any]]:
        keys = yield from _or_else(self._ops.dbsize(), None)
        return self._info(keys)

    def _reconnect_op(self) -> Operation[bool]:
        if self._local is not None:
            return False
        self._force_probes()
        return (yield from _or_else(self._ops.ping(), False))


def _finish(
    finish: Callable[[Any, Any], Any] | None, result: JoinedResult, call: object
) -> JoinedResult:
    """A joined plan's result, its operation's part finished as the plan says."""
    reply, value = result
    if finish is None or value is REFUSED or isinstance(value, Failed):
        return result
    try:
        return reply, finish(value, call)
    except Exception as exc:
        return reply, Failed(exc)


def _positive(count: int, _call: object) -> bool:
    return count > 0


def _as_sent(batch: Batch) -> Operation[Replies]:
    """The batch's replies as they are (the raw ``execute``)."""
    replies: Replies = yield batch
    return replies


def _or_else(op: Operation[T], default: T) -> Operation[T]:
    """``op``'s result, or ``default`` when the cache cannot answer (never raises)."""
    try:
        return (yield from op)
    except CacheError:
        return default


#: Either client, as its views (layers, pipelines) see it.
AnyClient = CacheMethods[Any, Any, Any, Any, Any]
