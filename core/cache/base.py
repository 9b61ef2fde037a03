"""What the sync and async clients share: configuration, scopes, routing, bookkeeping.

``CacheBase`` resolves the configuration, owns the local-mode store, the codec-bound
operations, the executors, the totals behind ``info()``, the fallback policy and the
read memo rules. :mod:`continuum.cache.methods` writes the public methods once on top of
it; the two clients in :mod:`continuum.cache.client` and
:mod:`continuum.cache.async_client` only differ in how they wait for I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from continuum.cache.call import CallState, WriteResult, fell_back
from continuum.cache.drive import Batch, Operation, Replies
from continuum.cache.operations import Operations
from continuum.cache.scoped import ScopeContext
from continuum.codec import make_codec
from continuum.config import (
    DATABASE_NAMES,
    CacheBackend,
    ConnectionMode,
    Database,
    UpstashConfig,
    parse_mode,
)
from continuum.errors import (
    CacheUnavailable,
    CommandError,
    ConfigurationError,
    NoScriptError,
    ValidationError,
)
from continuum.local import LocalCache
from continuum.namespace import LayerSpec
from continuum.rest import CircuitBreaker, CircuitState, Command, Reply, Script, breaker_for
from continuum.scope import Deadline, Meter, RequestScope, current_scope

if TYPE_CHECKING:
    import asyncio

__all__ = ["STORED_IN_FALLBACK", "STORED_LOCALLY", "STRICT", "CacheBase", "script_op"]

#: What a client's transport factory makes (a sync or an async transport).
TransportT = TypeVar("TransportT")


class Sender(Protocol):
    """What sends one database's batches: an executor, or the async client's
    auto-pipeline. Its breaker says whether anything would be sent."""

    breaker: CircuitBreaker


#: What sends one database's batches (an executor; for the async client, its auto-pipeline).
SenderT = TypeVar("SenderT", bound=Sender)

_XF_MEMORY = 1024
#: Calls that must say when Upstash did not serve them (ping, info, flush, scripts).
STRICT = LayerSpec("strict", "", None, strict=True)


class CacheBase(Generic[TransportT, SenderT]):
    """Configuration, routing and bookkeeping shared by the sync and async clients.

    ``transport_factory`` plugs in another transport (the Workers fetch one): it is
    called with each database's REST URL.
    """

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
        transport_factory: Callable[[str], TransportT] | None = None,
        **options: Any,
    ) -> None:
        if redis_url:
            raise ConfigurationError(
                "redis_url asks for the Redis protocol, but Continuum is REST-only: pass "
                "rest_url and rest_token (or set UPSTASH_REDIS_REST_URL and "
                "UPSTASH_REDIS_REST_TOKEN)"
            )
        parse_mode(mode)  # mode="redis" is explained before any other complaint
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
        self._fallback_allowed = config.fallback
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
        self._transport_factory = transport_factory
        self._senders: dict[str, SenderT] = {}  # by database name
        self._shared: dict[tuple[str, str], SenderT] = {}  # by (URL, token): one per database
        # The async client's reads on their way, by (id of scope, memo key): a read of the
        # same key in the same scope waits for one of them. The sync client has none.
        self._inflight: dict[tuple[int, tuple[str, str]], asyncio.Future[Reply | CommandError]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # -- scope -------------------------------------------------------------------------

    def request(
        self, *, deadline: float | Deadline | None = None, remaining_ms: float | None = None
    ) -> ScopeContext:
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
        return ScopeContext(self, Deadline.after(max(0.0, seconds)))

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

    def _call(self, spec: LayerSpec) -> CallState:
        scope = current_scope()
        if scope is not None:
            return CallState(self, scope, scope.deadline, scope.meter, spec)
        return CallState(self, None, Deadline.after(self.config.budget), self._meter, spec)

    def _execute(self, batch: Batch, call: CallState) -> Any:
        """Run one batch of ``call`` where it belongs: its replies (or an awaitable)."""
        raise NotImplementedError

    def _sleep(self, seconds: float) -> Any:
        """Wait ``seconds``: blocking, or an awaitable (see :meth:`CallState.pause`)."""
        raise NotImplementedError

    # -- executors ---------------------------------------------------------------------

    def _new_sender(self, database: Database, transport: TransportT | None) -> SenderT:
        """What sends one database's batches over REST (made once per URL and token)."""
        raise NotImplementedError

    def _sender(self, name: str) -> SenderT:
        sender = self._senders.get(name)
        if sender is None:
            db = self.config.database(name)
            sender = self._shared.get((db.url, db.token))
            if sender is None:
                factory = self._transport_factory
                sender = self._new_sender(db, factory(db.url) if factory else None)
                self._shared[(db.url, db.token)] = sender
            self._senders[name] = sender
        return sender

    def _forget_senders(self) -> list[SenderT]:
        """Every sender, once each, and forget them (closing the client)."""
        senders = list(self._shared.values())
        self._senders.clear()
        self._shared.clear()
        return senders

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
        state = breaker_for(self.config.database("primary").breaker_key).state
        return CacheBackend.UPSTASH if state is CircuitState.CLOSED else CacheBackend.LOCAL

    def _breakers(self) -> dict[str, dict[str, object]]:
        if self._local is not None:
            return {}
        keys = {self.config.database(name).breaker_key: name for name in self.config.databases}
        return {name: breaker_for(key).snapshot() for key, name in keys.items()}

    def _force_probes(self) -> None:
        for key in {self.config.database(n).breaker_key for n in self.config.databases}:
            breaker_for(key).force_probe()

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
            # Totals of every finished call and request scope of this client; the open
            # request's own figures (what /v1/stats costs itself) are listed apart.
            "meter": self._meter.as_dict(),
            **({"request": scope.meter.as_dict()} if (scope := current_scope()) else {}),
        }

    # -- bookkeeping -------------------------------------------------------------------

    def _read(self, replies: Replies, call: CallState) -> Any:
        """A GET batch's value, once the read is counted as a hit or a miss of its layer."""
        return self._counted(self._ops.read(replies), call.spec.name, call.meter)

    def _counted(self, value: Any, name: str, meter: Meter) -> Any:
        """``value``, once it is counted as a hit or a miss of layer ``name``."""
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = [0, 0]
        # Meter.hit/miss, inline: every read passes here
        if value is not None:
            stats[0] += 1
            meter.hits += 1
            meter.layer_hits[name] = meter.layer_hits.get(name, 0) + 1
        else:
            stats[1] += 1
            meter.misses += 1
            meter.layer_misses[name] = meter.layer_misses.get(name, 0) + 1
        return value

    def _local_execute(self, batch: Batch, call: CallState) -> Replies:
        assert self._local is not None
        call.backend = _LOCAL
        if batch.transaction:
            return self._local.execute(batch.commands, transaction=True)
        return self._local.execute(batch.commands)  # ``write`` only matters to a network

    def _unsent(
        self,
        batch: Batch,
        call: CallState,
        memo_key: tuple[str, str] | None,
        exc: Callable[[], CacheUnavailable],
    ) -> Replies:
        """A batch that is not sent (the call already fell back, or the circuit sheds it):
        the fallback answers; nothing is encoded for it."""
        reason = fell_back if call.degraded else exc
        replies = self._fallback(batch, call, reason)
        if batch.write:  # a read the scope's store answered needs no copy in the memo
            self._memo_update(batch, call, memo_key, replies)
        return replies

    def _fallback(
        self,
        batch: Batch,
        call: CallState,
        exc: CacheUnavailable | Callable[[], CacheUnavailable],
    ) -> Replies:
        """Run on the scope's store, or re-raise for strict layers / fallback disabled.

        A call that fell back stays on the fallback store for its remaining batches (see
        :meth:`CallState.stays_local`), so one operation never mixes two stores; a SCAN
        cursor handed over from Upstash means nothing to the local store, so that walk
        restarts there from 0.
        """
        if isinstance(exc, CacheUnavailable) and (unknown := batch.unrepeatable(exc)):
            raise unknown from exc  # a local stand-in must not pass for the server's answer
        if call.spec.strict or not self._fallback_allowed:
            # ``exc`` may be a factory: the open-circuit path builds no error it won't raise.
            raise exc if isinstance(exc, BaseException) else exc()
        commands = batch.commands if batch.standin is None else batch.standin
        if not call.degraded:
            for command in commands:
                name = command[0]
                if type(name) is str and name in _SCAN_SPELLINGS:
                    commands = [_restart_scan(command) for command in commands]
                    break
        call.backend = _LOCAL
        call.degraded = True
        meter = call.meter
        meter.fallback_ops += 1
        write = batch.write
        if write:
            meter.degraded_writes += 1
        scope = call.scope
        store = scope.local if scope is not None else call.fallback_store()
        if batch.transaction:
            return store.execute(commands, write=write, transaction=True)
        return store.execute(commands)  # ``write`` only matters to a network's retries

    def _memo_lookup(self, batch: Batch, call: CallState) -> tuple[str, str] | None:
        """The memo key of a single GET: (database URL, key), so two names for one
        database share entries."""
        if call.scope is None or batch.write or batch.fresh or len(batch.commands) != 1:
            return None
        command = batch.commands[0]
        if len(command) == 2 and command[0] == "GET" and isinstance(command[1], str):
            return (self._db_urls[call.spec.database], command[1])
        return None

    def _memo_update(
        self, batch: Batch, call: CallState, key: tuple[str, str] | None, replies: Replies
    ) -> None:
        if call.scope is None:
            return
        memo = call.scope.memo
        if batch.write:
            if batch.touches is None:
                memo.clear()
            else:
                url = self._db_urls[call.spec.database]
                for touched in batch.touches:
                    memo.pop((url, touched), None)
        elif key is not None and not isinstance(replies[0], CommandError):
            memo[key] = replies[0]

    def _write_result(self, replies: Replies, call: CallState) -> WriteResult:
        """What a SET batch's caller is told: stored or not, and where."""
        # Immutable, and only eight can exist: shared instances cost no construction.
        return _WRITE_RESULTS[self._ops.stored(replies), call.backend, call.degraded]

    def _expected_compute(self, key: str) -> float:
        return self._compute_times.get(key, 0.1)

    def _observe_compute(self, key: str, seconds: float) -> None:
        if len(self._compute_times) >= _XF_MEMORY:
            self._compute_times.clear()
        self._compute_times[key] = seconds

    def _pubsub_target(self) -> tuple[str, str]:
        if self._local is not None:
            raise ConfigurationError(
                "pubsub() subscribes over Upstash REST; it is not available in local mode"
            )
        db = self.config.database("primary")
        return db.url, db.token


_LOCAL = CacheBackend.LOCAL
_WRITE_RESULTS = {
    (ok, backend, degraded): WriteResult(ok, backend, degraded)
    for ok in (False, True)
    for backend in CacheBackend
    for degraded in (False, True)
}
#: A write stored in local mode, and one the fallback store took while Upstash could not.
STORED_LOCALLY = _WRITE_RESULTS[True, _LOCAL, False]
STORED_IN_FALLBACK = _WRITE_RESULTS[True, _LOCAL, True]

# every spelling of SCAN, so the fallback's per-batch check is one set lookup
_SCAN_SPELLINGS = frozenset(
    "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate("scan")) for mask in range(16)
)


def _restart_scan(command: Command) -> Command:
    """``SCAN <cursor> ...`` from the start when the cursor came from another store."""
    name = command[0]
    if type(name) is str and name in _SCAN_SPELLINGS and len(command) > 1:
        return ("SCAN", "0", *command[2:])
    return command


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(f"{name} must be a number, got {value!r}")
    return float(value)


def _rate(hits: int, misses: int) -> float:
    return hits / (hits + misses) if hits + misses else 0.0


def script_op(
    script: Script, keys: Sequence[str], args: Sequence[str | bytes | int]
) -> Operation[Reply]:
    """EVALSHA, which the executor sends as EVAL where the database may not hold the
    script yet; EVAL again on a NOSCRIPT the executor could not resend (a batch that
    the async client shared with commands after it)."""
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
