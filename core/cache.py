"""``UpstashCache`` and ``AsyncUpstashCache``: the seed's API over Upstash REST.

    cache = UpstashCache()                      # REST from the environment, else local
    cache.set("user:123", {"name": "Alice"}, ttl=3600)
    with cache.request(remaining_ms=ctx.get_remaining_time_in_millis()):
        user = cache.get("user:123")            # memoised for the rest of the request

Every operation is written once (:mod:`core.operations`) and runs here on one of three
stores: Upstash over REST, the request scope's :class:`~core.local.LocalCache` when
Upstash cannot answer (best-effort layers only; strict layers raise), or, in local mode,
one ``LocalCache`` owned by this instance. A call outside ``cache.request(...)`` is its own
scope. Network and server failures never escape a best-effort call: they become a
fallback, visible as ``WriteResult.degraded`` and in the meter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from core._drive import Batch, Operation, Replies, adrive, drive
from core.codec import make_codec
from core.config import DATABASE_NAMES, CacheBackend, ConnectionMode, UpstashConfig
from core.errors import (
    CacheError,
    CacheTimeout,
    CacheUnavailable,
    CommandError,
    ConfigurationError,
    NoScriptError,
    ValidationError,
)
from core.health import CircuitState, breaker_for
from core.layers import DEFAULT_LAYER, AsyncCacheLayer, CacheLayer, LayerSpec, layer_spec
from core.local import LocalCache
from core.operations import Operations, escape_glob
from core.pipeline import AsyncPipeline, Pipeline
from core.protocol import Command, Reply, Script
from core.rest import AsyncRestExecutor, RestExecutor
from core.scope import Deadline, Meter, RequestScope, current_scope, enter_scope, exit_scope
from core.transport import AsyncTransport, Transport

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncUpstashCache", "ScopedCache", "UpstashCache", "WriteResult"]

_SCAN_COUNT = 500
_XF_MEMORY = 1024
#: Calls that must say when Upstash did not serve them (ping, info, flush, scripts).
_STRICT = LayerSpec("strict", "", None, strict=True)


@dataclass(frozen=True)
class WriteResult:
    """The outcome of a write: truthy when stored; ``degraded`` when only the fallback has it."""

    ok: bool
    backend: CacheBackend
    degraded: bool = False

    def __bool__(self) -> bool:
        return self.ok


class _Call:
    """Per-call state: where the batches ran, and the fallback store if one was needed."""

    __slots__ = ("backend", "deadline", "degraded", "local", "meter", "scope")

    def __init__(self, scope: RequestScope | None, deadline: Deadline, meter: Meter) -> None:
        self.scope = scope
        self.deadline = deadline
        self.meter = meter
        self.backend = CacheBackend.UPSTASH
        self.degraded = False
        self.local: LocalCache | None = None

    def fallback_store(self) -> LocalCache:
        if self.scope is not None:
            return self.scope.local
        if self.local is None:
            self.local = LocalCache()
        return self.local


class ScopedCache:
    """What ``with cache.request(...) as c`` gives: the cache, bound to one scope.

    Every cache method works on it (``c.get``, ``c.layer``, ...); ``meter``, ``deadline``,
    ``memo`` and ``local`` are this scope's, and stay readable after the block ends.
    """

    def __init__(self, cache: _CacheBase, scope: RequestScope) -> None:
        self._cache = cache
        self.scope = scope

    def __repr__(self) -> str:
        return f"ScopedCache({self._cache!r}, {self.scope!r})"

    @property
    def meter(self) -> Meter:
        return self.scope.meter

    @property
    def deadline(self) -> Deadline:
        return self.scope.deadline

    @property
    def memo(self) -> dict[tuple[str, str], Reply]:
        return self.scope.memo

    @property
    def local(self) -> LocalCache:
        return self.scope.local

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)


class _ScopeContext:
    """``with cache.request(...)`` / ``async with``: one invocation's scope."""

    def __init__(self, cache: _CacheBase, deadline: Deadline) -> None:
        self._cache = cache
        self._deadline = deadline
        self._token: Any = None
        self.scope: RequestScope | None = None

    def _open(self) -> ScopedCache:
        self.scope = RequestScope(deadline=self._deadline)
        self._token = enter_scope(self.scope)
        return ScopedCache(self._cache, self.scope)

    def _close(self) -> None:
        if self._token is not None:
            exit_scope(self._token)
            self._token = None
        if self.scope is not None:
            _merge(self._cache._meter, self.scope.meter)

    def __enter__(self) -> ScopedCache:
        return self._open()

    def __exit__(self, *exc: object) -> None:
        self._close()

    async def __aenter__(self) -> ScopedCache:
        return self._open()

    async def __aexit__(self, *exc: object) -> None:
        self._close()


class _CacheBase:
    """Configuration, routing and bookkeeping shared by the sync and async clients."""

    def __init__(
        self,
        config: UpstashConfig | None = None,
        mode: str | ConnectionMode = "auto",
        fallback: bool | None = None,
        rest_url: str | None = None,
        rest_token: str | None = None,
        redis_url: str | None = None,
        use_msgpack: bool | None = None,
        **options: Any,
    ) -> None:
        if redis_url:
            raise ConfigurationError(
                "redis_url asks for the Redis protocol, but Continuum is REST-only: pass "
                "rest_url and rest_token (or set UPSTASH_REDIS_REST_URL and "
                "UPSTASH_REDIS_REST_TOKEN)"
            )
        unknown = set(options) - {f.name for f in fields(UpstashConfig)}
        if unknown:
            raise ConfigurationError(f"unknown cache options: {', '.join(sorted(unknown))}")
        overrides: dict[str, Any] = {
            "mode": None if str(mode) == "auto" else mode,
            "fallback": fallback, "rest_url": rest_url, "rest_token": rest_token,
            "use_msgpack": use_msgpack, **options,
        }  # fmt: skip
        if config is None:
            config = UpstashConfig.from_env(**overrides)
        else:
            changes = {k: v for k, v in overrides.items() if v is not None}
            if changes:
                config = config.with_options(**changes)
        config.warn_if_local()
        self.config = config
        self._local = LocalCache() if config.resolved_mode is ConnectionMode.LOCAL else None
        self._db_urls = (
            {name: config.database(name).url for name in DATABASE_NAMES}
            if self._local is None
            else {}
        )
        codec = make_codec(
            use_msgpack=config.use_msgpack, compress_threshold=config.compress_threshold
        )
        self._ops = Operations(codec, max_value_size=config.max_value_size)
        self._meter = Meter()
        self._stats: dict[str, list[int]] = {}
        self._compute_times: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # -- scope -------------------------------------------------------------------------

    def request(
        self, *, deadline: float | Deadline | None = None, remaining_ms: float | None = None
    ) -> _ScopeContext:
        """Open a request scope: fallback store, read memo, meter and deadline.

        ``deadline`` is seconds from now (or a :class:`Deadline`); ``remaining_ms`` is the
        platform's time left (Lambda's ``get_remaining_time_in_millis()``), of which a
        margin is kept back so the function can still answer. Without either, the
        configured ``budget`` applies.
        """
        candidates: list[float] = []
        if isinstance(deadline, Deadline):
            candidates.append(deadline.remaining())
        elif deadline is not None:
            candidates.append(_seconds(deadline, "deadline"))
        if remaining_ms is not None:
            ms = _seconds(remaining_ms, "remaining_ms")
            candidates.append(Deadline.from_remaining_ms(ms).remaining())
        seconds = min(candidates) if candidates else self.config.budget
        return _ScopeContext(self, Deadline.after(max(0.0, seconds)))

    @property
    def scope(self) -> RequestScope | None:
        """The active request scope, if any."""
        return current_scope()

    @property
    def meter(self) -> Meter:
        """The active scope's meter, or this client's totals outside a scope."""
        scope = current_scope()
        return scope.meter if scope is not None else self._meter

    @property
    def deadline(self) -> Deadline | None:
        """The active scope's deadline, if any."""
        scope = current_scope()
        return scope.deadline if scope is not None else None

    def _call(self) -> _Call:
        scope = current_scope()
        if scope is not None:
            return _Call(scope, scope.deadline, scope.meter)
        return _Call(None, Deadline.after(self.config.budget), self._meter)

    # -- health ------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        """True in local mode (no Upstash configured)."""
        return self._local is not None

    @property
    def current_backend(self) -> CacheBackend:
        """``local`` in local mode or while the primary database's circuit is not closed."""
        if self._local is not None:
            return CacheBackend.LOCAL
        state = breaker_for(self.config.database("primary").url).state
        return CacheBackend.UPSTASH if state is CircuitState.CLOSED else CacheBackend.LOCAL

    def _breakers(self) -> dict[str, dict[str, object]]:
        if self._local is not None:
            return {}
        urls = {self.config.database(name).url: name for name in self.config.databases}
        return {name: breaker_for(url).snapshot() for url, name in urls.items()}

    def _force_probes(self) -> None:
        for db in {self.config.database(n).url for n in self.config.databases}:
            breaker_for(db).force_probe()

    def _info(self, keys: int | None) -> dict[str, Any]:
        layers = {}
        total_hits = total_misses = 0
        for name, (hits, misses) in sorted(self._stats.items()):
            total_hits += hits
            total_misses += misses
            layers[name] = {"hits": hits, "misses": misses, "hit_rate": _rate(hits, misses)}
        circuits = self._breakers()
        primary = circuits.get("primary", {"state": "n/a (local mode)"})
        return {
            "backend": self.current_backend.value,
            "mode": self.config.resolved_mode.value,
            "fallback": self.config.fallback,
            "circuit": primary,
            "circuits": circuits,
            "keys": keys,
            "hits": total_hits,
            "misses": total_misses,
            "hit_rate": _rate(total_hits, total_misses),
            "layers": layers,
            "meter": self.meter.as_dict(),
        }

    # -- bookkeeping -------------------------------------------------------------------

    def _count_read(self, spec: LayerSpec, hit: bool, call: _Call) -> None:
        stats = self._stats.setdefault(spec.name, [0, 0])
        stats[0 if hit else 1] += 1
        if hit:
            call.meter.hit(spec.name)
        else:
            call.meter.miss(spec.name)

    def _local_execute(self, batch: Batch, call: _Call) -> Replies:
        assert self._local is not None
        call.backend = CacheBackend.LOCAL
        return self._local.execute(batch.commands, write=batch.write, transaction=batch.transaction)

    def _fallback(
        self, batch: Batch, spec: LayerSpec, call: _Call, exc: CacheUnavailable
    ) -> Replies:
        """Run on the scope's store, or re-raise for strict layers / fallback disabled."""
        if spec.strict or not self.config.fallback:
            raise exc
        call.backend = CacheBackend.LOCAL
        call.degraded = True
        call.meter.fallback_ops += 1
        if batch.write:
            call.meter.degraded_writes += 1
        store = call.fallback_store()
        return store.execute(batch.commands, write=batch.write, transaction=batch.transaction)

    def _memo_lookup(self, batch: Batch, spec: LayerSpec, call: _Call) -> tuple[str, str] | None:
        """The memo key of a single GET: (database URL, key), so two names for one
        database share entries."""
        if call.scope is None or batch.write or len(batch.commands) != 1:
            return None
        command = batch.commands[0]
        if len(command) == 2 and command[0] == "GET" and isinstance(command[1], str):
            return (self._db_urls[spec.database], command[1])
        return None

    def _memo_update(
        self,
        batch: Batch,
        spec: LayerSpec,
        call: _Call,
        key: tuple[str, str] | None,
        replies: Replies,
    ) -> None:
        if call.scope is None:
            return
        memo = call.scope.memo
        if batch.write:
            if batch.touches is None:
                memo.clear()
            else:
                for touched in batch.touches:
                    memo.pop((self._db_urls[spec.database], touched), None)
        elif key is not None and not isinstance(replies[0], CommandError):
            memo[key] = replies[0]

    def _write_result(self, ok: bool, call: _Call) -> WriteResult:
        return WriteResult(ok, call.backend, call.degraded)

    def _expected_compute(self, key: str) -> float:
        return self._compute_times.get(key, 0.1)

    def _observe_compute(self, key: str, seconds: float) -> None:
        if len(self._compute_times) >= _XF_MEMORY:
            self._compute_times.clear()
        self._compute_times[key] = seconds

    def _timed(self, key: str, compute: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            started = time.perf_counter()
            try:
                return compute()
            finally:
                self._observe_compute(key, time.perf_counter() - started)

        return run

    def _pubsub_target(self) -> tuple[str, str]:
        if self._local is not None:
            raise ConfigurationError(
                "pubsub() subscribes over Upstash REST; it is not available in local mode"
            )
        db = self.config.database("primary")
        return db.url, db.token


def _merge(total: Meter, part: Meter) -> None:
    """Fold a finished scope's meter into the client's totals (for ``info()``)."""
    for name in (
        "round_trips", "commands", "bytes_sent", "bytes_received", "hits", "misses",
        "fallback_ops", "degraded_writes", "errors", "time_spent",
    ):  # fmt: skip
        setattr(total, name, getattr(total, name) + getattr(part, name))
    for mine, theirs in (
        (total.layer_hits, part.layer_hits),
        (total.layer_misses, part.layer_misses),
    ):
        for layer, count in theirs.items():
            mine[layer] = mine.get(layer, 0) + count


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(f"{name} must be a number, got {value!r}")
    return float(value)


def _rate(hits: int, misses: int) -> float:
    return hits / (hits + misses) if hits + misses else 0.0


def _script_op(
    script: Script, keys: Sequence[str], args: Sequence[str | bytes | int]
) -> Operation[Reply]:
    """EVALSHA first; EVAL (which also caches the script) only on NOSCRIPT."""
    tail: list[str | bytes | int] = [len(keys), *keys, *args]
    replies = yield Batch([("EVALSHA", script.sha1, *tail)], write=True, touches=list(keys))
    reply = replies[0]
    if isinstance(reply, NoScriptError):
        replies = yield Batch([("EVAL", script.source, *tail)], write=True, touches=list(keys))
        reply = replies[0]
    if isinstance(reply, CommandError):
        raise reply
    result: Reply = reply
    return result


class UpstashCache(_CacheBase):
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

    def _execute(self, batch: Batch, spec: LayerSpec, call: _Call) -> Replies:
        if self._local is not None:
            return self._local_execute(batch, call)
        memo_key = self._memo_lookup(batch, spec, call)
        if memo_key is not None and call.scope is not None and memo_key in call.scope.memo:
            return [call.scope.memo[memo_key]]
        try:
            replies = self._executor(spec.database).execute(
                batch.commands, write=batch.write, transaction=batch.transaction,
                deadline=call.deadline, meter=call.meter,
            )  # fmt: skip
        except CacheUnavailable as exc:
            replies = self._fallback(batch, spec, call, exc)
        self._memo_update(batch, spec, call, memo_key, replies)
        return replies

    def _run(self, op: Operation[Any], spec: LayerSpec, call: _Call | None = None) -> Any:
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
        op = self._ops.delete_pattern(pattern, allow_all=allow_all, count=_SCAN_COUNT)
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

    def pubsub(self) -> Any:
        """A :class:`core.pubsub.PubSub` subscriber over REST server-sent events."""
        from core.pubsub import PubSub

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
        spec = DEFAULT_LAYER if fallback else _STRICT
        reply: Reply = self._run(_script_op(script, keys, args), spec)
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
            return bool(self._run(self._ops.ping(), _STRICT, call))
        except CacheError:
            return False

    def info(self) -> dict[str, Any]:
        """Backend, circuit state, hit rate per layer, meter, and the key count if known."""
        try:
            keys: int | None = int(self._run(self._ops.dbsize(), _STRICT))
        except CacheError:
            keys = None
        return self._info(keys)

    def flush(self, *, confirm: bool = False) -> bool:
        """Delete every key of the primary database; needs ``confirm=True``.

        Strict: when Upstash cannot answer this raises rather than "flushing" a fallback.
        """
        if not confirm:
            raise ValidationError("flush() deletes every key; call flush(confirm=True)")
        return bool(self._run(self._ops.flush(), _STRICT))

    def reconnect(self) -> bool:
        """Force a probe of Upstash now; True when it answered."""
        if self._local is not None:
            return False
        self._force_probes()
        return self.ping()

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


class _AutoPipeline:
    """Commands issued in the same event-loop tick share one ``/pipeline`` request.

    Each caller awaits its own slice of the replies (or the request's error). Callers of
    different request scopes are never mixed: each scope has its own queue.
    """

    def __init__(self, executor: AsyncRestExecutor) -> None:
        self._executor = executor
        self._queues: dict[int, list[tuple[Batch, asyncio.Future[Replies]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, batch: Batch, call: _Call) -> Replies:
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Replies] = loop.create_future()
        key = id(call.scope) if call.scope is not None else 0
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = []
            loop.call_soon(self._flush, key, call)
        queue.append((batch, future))
        return await future

    def _flush(self, key: int, call: _Call) -> None:
        items = self._queues.pop(key, [])
        if items:
            import asyncio

            task = asyncio.get_running_loop().create_task(self._send(items, call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, items: list[tuple[Batch, asyncio.Future[Replies]]], call: _Call) -> None:
        commands = [command for batch, _ in items for command in batch.commands]
        try:
            replies = await self._executor.execute(
                commands, write=any(batch.write for batch, _ in items),
                deadline=call.deadline, meter=call.meter,
            )  # fmt: skip
        except Exception as exc:
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for batch, future in items:
            end = start + len(batch.commands)
            if not future.done():
                future.set_result(replies[start:end])
            start = end


class AsyncUpstashCache(_CacheBase):
    """The asynchronous client; same methods as :class:`UpstashCache`, awaited."""

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
        transport_factory: Callable[[str], AsyncTransport] | None = None,
        auto_pipeline: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            config, mode, fallback, rest_url, rest_token, redis_url, use_msgpack, **options
        )
        self._transport_factory = transport_factory
        self._auto_pipeline = auto_pipeline
        self._executors: dict[str, tuple[AsyncRestExecutor, _AutoPipeline]] = {}

    def _executor(self, database: str) -> tuple[AsyncRestExecutor, _AutoPipeline]:
        entry = self._executors.get(database)
        if entry is None:
            db = self.config.database(database)
            for other in self._executors.values():
                if other[0].database.url == db.url and other[0].database.token == db.token:
                    entry = other
                    break
            else:
                transport = self._transport_factory(db.url) if self._transport_factory else None
                executor = AsyncRestExecutor(db, self.config, transport=transport)
                entry = (executor, _AutoPipeline(executor))
            self._executors[database] = entry
        return entry

    async def _execute(self, batch: Batch, spec: LayerSpec, call: _Call) -> Replies:
        if self._local is not None:
            return self._local_execute(batch, call)
        memo_key = self._memo_lookup(batch, spec, call)
        if memo_key is not None and call.scope is not None and memo_key in call.scope.memo:
            return [call.scope.memo[memo_key]]
        executor, auto = self._executor(spec.database)
        try:
            if self._auto_pipeline and not batch.transaction:
                replies = await auto.submit(batch, call)
            else:
                replies = await executor.execute(
                    batch.commands, write=batch.write, transaction=batch.transaction,
                    deadline=call.deadline, meter=call.meter,
                )  # fmt: skip
        except CacheUnavailable as exc:
            replies = self._fallback(batch, spec, call, exc)
        self._memo_update(batch, spec, call, memo_key, replies)
        return replies

    async def _run(self, op: Operation[Any], spec: LayerSpec, call: _Call | None = None) -> Any:
        call = call or self._call()

        async def pause(seconds: float) -> None:
            if call.deadline.remaining() <= seconds:
                raise CacheTimeout("the deadline leaves no time to wait")
            import asyncio

            await asyncio.sleep(seconds)

        async def execute(batch: Batch) -> Replies:
            return await self._execute(batch, spec, call)

        return await adrive(op, execute, pause)

    # -- internal forms used by layers -------------------------------------------------

    async def _get(self, key: str, spec: LayerSpec) -> Any:
        call = self._call()
        value = await self._run(self._ops.get(key), spec, call)
        self._count_read(spec, value is not None, call)
        return value

    async def _set(
        self, key: str, value: object, ttl: float | None, spec: LayerSpec
    ) -> WriteResult:
        call = self._call()
        ok = await self._run(self._ops.set(key, value, ttl), spec, call)
        return self._write_result(ok, call)

    async def _delete(self, keys: tuple[str, ...], spec: LayerSpec) -> int:
        return int(await self._run(self._ops.delete(keys), spec))

    async def _exists(self, keys: tuple[str, ...], spec: LayerSpec) -> int:
        return int(await self._run(self._ops.exists(keys), spec))

    async def _expire(self, key: str, ttl: float, spec: LayerSpec) -> bool:
        return bool(await self._run(self._ops.expire(key, ttl), spec))

    async def _ttl(self, key: str, spec: LayerSpec) -> int:
        return int(await self._run(self._ops.ttl(key), spec))

    async def _increment(self, key: str, amount: int | float, spec: LayerSpec) -> int | float:
        result: int | float = await self._run(self._ops.increment(key, amount), spec)
        return result

    async def _delete_pattern(self, pattern: str, allow_all: bool, spec: LayerSpec) -> int:
        op = self._ops.delete_pattern(pattern, allow_all=allow_all, count=_SCAN_COUNT)
        return int(await self._run(op, spec))

    async def _get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None, spec: LayerSpec
    ) -> Any:
        op = self._ops.get_or_set(
            key, self._atimed(key, compute), ttl,
            expected_compute=self._expected_compute(key),
            lock_timeout=min(10.0, max(1.0, self.config.budget)),
        )  # fmt: skip
        return await self._run(op, spec)

    def _atimed(self, key: str, compute: Callable[[], Any]) -> Callable[[], Any]:
        async def run() -> Any:
            started = time.perf_counter()
            try:
                result = compute()
                import inspect

                if inspect.isawaitable(result):
                    result = await result
                return result
            finally:
                self._observe_compute(key, time.perf_counter() - started)

        return run

    # -- the public API ------------------------------------------------------------------

    async def get(self, key: str) -> Any:
        return await self._get(key, DEFAULT_LAYER)

    async def set(
        self, key: str, value: object, ttl: float | None = 300, *, ex: float | None = None
    ) -> WriteResult:
        return await self._set(key, value, ex if ex is not None else ttl, DEFAULT_LAYER)

    async def delete(self, *keys: str) -> int:
        return await self._delete(keys, DEFAULT_LAYER)

    async def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        return await self._delete_pattern(pattern, allow_all, DEFAULT_LAYER)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValidationError("an empty prefix would delete every key; use flush()")
        return await self._delete_pattern(escape_glob(prefix) + "*", False, DEFAULT_LAYER)

    async def exists(self, key: str) -> bool:
        return await self._exists((key,), DEFAULT_LAYER) > 0

    async def expire(self, key: str, ttl: float) -> bool:
        return await self._expire(key, ttl, DEFAULT_LAYER)

    async def ttl(self, key: str) -> int:
        return await self._ttl(key, DEFAULT_LAYER)

    async def increment(self, key: str, amount: int | float = 1) -> int | float:
        return await self._increment(key, amount, DEFAULT_LAYER)

    async def get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None = 300
    ) -> Any:
        return await self._get_or_set(key, compute, ttl, DEFAULT_LAYER)

    def pipeline(self, *, transaction: bool = False) -> AsyncPipeline:
        return AsyncPipeline(self, transaction=transaction)

    async def publish(self, channel: str, message: object) -> int:
        return int(await self._run(self._ops.publish(channel, message), DEFAULT_LAYER))

    def pubsub(self) -> Any:
        """A :class:`core.pubsub.AsyncPubSub` subscriber over REST server-sent events."""
        from core.pubsub import AsyncPubSub

        url, token = self._pubsub_target()
        return AsyncPubSub(url, token, timeout=self.config.timeout)

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[str | bytes | int],
        *, fallback: bool = False,
    ) -> Reply:  # fmt: skip
        spec = DEFAULT_LAYER if fallback else _STRICT
        return await self._run(_script_op(script, keys, args), spec)  # type: ignore[no-any-return]

    async def execute(
        self, commands: Sequence[Command], *, write: bool = True, transaction: bool = False
    ) -> Replies:
        batch = Batch(list(commands), write=write, transaction=transaction, touches=None)
        return await self._execute(batch, DEFAULT_LAYER, self._call())

    async def ping(self) -> bool:
        try:
            return bool(await self._run(self._ops.ping(), _STRICT))
        except CacheError:
            return False

    async def info(self) -> dict[str, Any]:
        try:
            keys: int | None = int(await self._run(self._ops.dbsize(), _STRICT))
        except CacheError:
            keys = None
        return self._info(keys)

    async def flush(self, *, confirm: bool = False) -> bool:
        if not confirm:
            raise ValidationError("flush() deletes every key; call flush(confirm=True)")
        return bool(await self._run(self._ops.flush(), _STRICT))

    async def reconnect(self) -> bool:
        if self._local is not None:
            return False
        self._force_probes()
        return await self.ping()

    def layer(self, name: str) -> AsyncCacheLayer:
        return AsyncCacheLayer(self, layer_spec(name))

    async def aclose(self) -> None:
        for executor, _ in {id(e[0]): e for e in self._executors.values()}.values():
            await executor.aclose()
        self._executors.clear()

    async def __aenter__(self) -> AsyncUpstashCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
