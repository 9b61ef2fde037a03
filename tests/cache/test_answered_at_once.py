"""``get`` and ``set`` answered at once behave exactly as the plan they skip.

Where no I/O can be needed (local mode, the scope's memo, the open circuit's fallback
store) the cache's ``get``/``set`` answer without building a plan (see
:mod:`continuum.cache.methods`). Each test here runs one random sequence of calls twice,
on two fresh clients in the same situation: once through the public methods, once
through the plan those methods build when they cannot answer at once (what every call
ran before the shortcut existed). After every call both runs must agree on what a user
can see: the result or the whole error text, the scope's meter, the per-layer stats,
the memo, every key of the store with its type, value and remaining time (on a frozen
clock), and the breaker's counters. Local mode and the open circuit use real clients
(the circuit opens against a closed port); the memo case runs against the emulator on
both of its backends.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum import AsyncUpstashCache, CacheBackend, UpstashCache, WriteResult
from continuum.cache.base import CacheBase
from continuum.config import Database
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.local import MAX_EXPIRE_MS, LocalCache
from continuum.namespace import DEFAULT_LAYER, LayerSpec
from continuum.rest.breaker import CircuitState, breaker_for, reset_breakers
from continuum.sansio import Plan
from continuum.scope import RequestScope
from tests.cache.test_fallback import server_value
from tests.resilience.fault_proxy import Fault, FaultProxy, closed_port_url
from tests.tooling import ManualClock

NOW = 1_800_000_000.0  # the frozen clock of every local store here


class Key(StrEnum):  # a str subclass: a key as good as any
    USER = "user"


class Seconds(IntEnum):  # an int subclass: a TTL as good as any
    MINUTE = 60


BIG = "x" * (32 * 1024 + 1)  # over the key limit; drawn as "BIG" to keep reports short
EDGE = "x" * (32 * 1024)  # at the key limit (over it once a layer's prefix is added)
KEYS = st.sampled_from(["a", "b", "session:1", "é", "BIG", "EDGE", "", "a/b", 7, Key.USER])
# JSON of "y" * 98 is exactly max_value_size bytes (see OPTIONS); "y" * 99 is one over
VALUES = st.sampled_from(
    [{"user": 7}, "text", b"\x00raw", 1.5, None, [1, 2], "y" * 200, math.nan, {1, 2},
     "y" * 98, "y" * 99]
)  # fmt: skip
MAX_EX = MAX_EXPIRE_MS // 1000  # the longest TTL Redis takes, in seconds
TTLS = st.sampled_from(
    [1, 60, 300, 0, -5, 2.5, None, True, False, 10**17, "x", 60.0, Seconds.MINUTE,
     MAX_EX, MAX_EX + 1]
)  # fmt: skip
LAYERS = st.sampled_from([None, "sessions", "query", "federation"])
CALLS = st.lists(
    st.one_of(
        st.tuples(st.just("get"), KEYS, LAYERS),
        st.tuples(st.just("set"), KEYS, VALUES, TTLS, LAYERS),
        st.tuples(st.just("set-ex"), KEYS, VALUES, TTLS),  # the ``ex=`` spelling
        st.tuples(st.just("hash"), KEYS),  # a key of another type: GET answers WRONGTYPE
        st.tuples(st.just("delete"), KEYS),
    ),
    min_size=1,
    max_size=12,
)
# ``max_value_size`` small enough that "y" * 200 is refused as too large; each run also
# draws one of the options that change what a get/set does
OPTIONS = {"max_value_size": 100}
CLIENT_OPTIONS = st.sampled_from(
    [{}, {"fallback": False}, {"use_msgpack": True}, {"compress_threshold": 16}]
)


def _plan(cache: CacheBase[Any, Any], call: tuple[Any, ...]) -> Plan[LayerSpec, Any] | None:
    """The plan ``get``/``set`` build when they cannot answer at once, or None for the
    calls that are the same on both sides."""
    call = _real(call)
    kind = call[0]
    if kind not in ("get", "set", "set-ex"):
        return None
    ops = cache._ops
    if kind == "get":
        spec, key = _spec(cache, call[2], call[1])
        return Plan(ops.get_batch(key), spec, cache._read)
    if kind == "set":
        spec, key = _spec(cache, call[4], call[1])
        ttl = call[3] if call[3] is not None or call[4] is None else spec.ttl
        return Plan(ops.set_batch(key, call[2], ttl), spec, cache._write_result)
    ttl = 300 if call[3] is None else call[3]  # ``ex=None`` leaves the default TTL
    return Plan(ops.set_batch(call[1], call[2], ttl), DEFAULT_LAYER, cache._write_result)


def _real(call: tuple[Any, ...]) -> tuple[Any, ...]:
    key = {"BIG": BIG, "EDGE": EDGE}.get(call[1], call[1]) if type(call[1]) is str else call[1]
    return (call[0], key, *call[2:])


def _spec(cache: CacheBase[Any, Any], layer: str | None, key: Any) -> tuple[LayerSpec, Any]:
    if layer is None:
        return DEFAULT_LAYER, key
    spec = cache.layer(layer).spec  # type: ignore[attr-defined]
    return spec, spec.prefix + key if isinstance(key, str) else key


def _public(cache: Any, call: tuple[Any, ...]) -> Any:
    """The call through the public API, as a user makes it (awaitable on the async client)."""
    call = _real(call)
    kind = call[0]
    if kind == "get":
        target = cache if call[2] is None else cache.layer(call[2])
        return target.get(call[1])
    if kind == "set":
        target = cache if call[4] is None else cache.layer(call[4])
        return target.set(call[1], call[2], call[3])
    if kind == "set-ex":
        return cache.set(call[1], call[2], ex=call[3])
    if kind == "hash":
        return cache.execute([["HSET", call[1], "f", "v"]])
    return cache.delete(call[1])


async def _outcome(run: Callable[[], Any], urls: dict[str, str]) -> tuple[str, Any]:
    try:
        result = run()
        if asyncio.iscoroutine(result):
            result = await result
    except Exception as exc:  # every failure is part of what the user sees
        text = str(exc)
        for url, name in urls.items():
            text = text.replace(url, name)
        return type(exc).__name__, text
    return "ok", _plain(result)


def _plain(result: Any) -> Any:
    """``result`` with each error reply as its type and text (errors compare by identity)."""
    if isinstance(result, list):
        return [_plain(item) for item in result]
    if isinstance(result, Exception):
        return type(result).__name__, str(result)
    return result


def _store(store: LocalCache | None) -> list[tuple[Any, ...]]:
    """Every key of ``store``: its type, raw value (for strings) and remaining ms."""
    if store is None:
        return []
    listing = []
    for key in sorted(store.execute([["KEYS", "*"]])[0]):  # type: ignore[arg-type]
        kind, pttl = store.execute([["TYPE", key], ["PTTL", key]])
        raw = store.execute([["GET", key]])[0] if kind in ("string", b"string") else None
        listing.append((key, kind, raw, pttl))
    return listing


def _freeze(store: LocalCache) -> LocalCache:
    store._clock = lambda: NOW
    return store


class Situation:
    """One way of running a client: what to build, and what to look at after each call."""

    name: str
    options: dict[str, Any] = OPTIONS  # what each client of the run is built with

    def client(self, cls: type[Any]) -> Any:
        raise NotImplementedError

    @contextmanager
    def scoped(self, cache: Any) -> Iterator[RequestScope | None]:
        scope = RequestScope(deadline=600, max_local_keys=4)  # a store that evicts
        _freeze(scope.local)
        with scope:
            yield scope

    def store(self, cache: Any, scope: RequestScope | None) -> LocalCache | None:
        return cache._local if cache._local is not None else scope and scope.local

    def breaker(self, cache: Any) -> dict[str, object]:
        return {}

    def urls(self, cache: Any) -> dict[str, str]:
        return {}

    async def prepare(self, cache: Any) -> None:
        """Bring ``cache`` into the situation, in the scope, before the calls start."""


class LocalMode(Situation):
    def __init__(self, *, scoped: bool) -> None:
        self.name = "local mode" + ("" if scoped else ", no scope")
        self._scoped = scoped

    def client(self, cls: type[Any]) -> Any:
        cache = cls(mode="local", **self.options)
        _freeze(cache._local)
        return cache

    @contextmanager
    def scoped(self, cache: Any) -> Iterator[RequestScope | None]:
        if not self._scoped:
            yield None
            return
        with super().scoped(cache) as scope:
            yield scope


class CircuitOpen(Situation):
    """The primary database refuses connections, and so does the sessions layer's own
    database, whose circuit opens only when a call first tries it."""

    name = "circuit open"

    def client(self, cls: type[Any]) -> Any:
        sessions = Database("sessions", closed_port_url(), "sessions-token")
        return cls(
            rest_url=closed_port_url(), rest_token="test-token", databases={"sessions": sessions},
            failure_threshold=1, probe_interval=3600.0, **self.options,
        )  # fmt: skip

    async def prepare(self, cache: Any) -> None:
        await _outcome(lambda: cache.set("warm", 1), {})  # refused: the circuit opens
        state = breaker_for(cache.config.database("primary").breaker_key).state
        assert state is CircuitState.OPEN

    def breaker(self, cache: Any) -> dict[str, object]:
        shown = {}
        for name in cache.config.databases:
            snapshot = breaker_for(cache.config.database(name).breaker_key).snapshot()
            shown[name] = {
                k: v for k, v in snapshot.items() if k not in ("last_error", "next_probe_in")
            }
        return shown

    def urls(self, cache: Any) -> dict[str, str]:
        return {cache.config.database(name).url: name for name in cache.config.databases}


class Memo(Situation):
    """A closed circuit against the emulator: reads repeated in a scope come from its memo."""

    name = "memo"

    def __init__(self, emulator: EmulatorHandle) -> None:
        self.emulator = emulator

    def client(self, cls: type[Any]) -> Any:
        self.emulator.fresh()
        return cls(rest_url=self.emulator.url, rest_token=self.emulator.token, **self.options)


class MemoThenOutage(CircuitOpen):
    """Reads in a scope fill its memo from Upstash; then Upstash goes away (a real proxy
    refuses connections) and the circuit opens: the memo must not outlive a write the
    fallback store takes."""

    name = "memo, then the circuit opens"

    def __init__(self, emulator: EmulatorHandle, proxy: FaultProxy) -> None:
        self.emulator = emulator
        self.proxy = proxy

    def client(self, cls: type[Any]) -> Any:
        self.emulator.fresh()
        self.proxy.set_fault(Fault.NONE)
        return cls(
            rest_url=self.proxy.url, rest_token=self.emulator.token,
            failure_threshold=1, probe_interval=3600.0, **self.options,
        )  # fmt: skip

    async def prepare(self, cache: Any) -> None:
        for key in ("a", "b", "session:1"):
            assert await _outcome(lambda key=key: cache.set(key, {"was": key}), {}) == (
                "ok", WriteResult(True, CacheBackend.UPSTASH),
            )  # fmt: skip
            assert await _outcome(lambda key=key: cache.get(key), {}) == ("ok", {"was": key})
        assert await _outcome(lambda: cache.layer("sessions").get("1"), {}) == (
            "ok", {"was": "session:1"},
        )  # fmt: skip
        self.proxy.set_fault(Fault.REFUSE)
        await _outcome(lambda: cache.get("other"), {})  # refused: the circuit opens
        state = breaker_for(cache.config.database("primary").breaker_key).state
        assert state is CircuitState.OPEN


async def _trace(
    situation: Situation, cls: type[Any], calls: list[Any], shortcut: bool
) -> list[Any]:
    reset_breakers()
    cache = situation.client(cls)
    urls = situation.urls(cache)
    trace: list[Any] = []
    with situation.scoped(cache) as scope:
        await situation.prepare(cache)
        for call in calls:
            if shortcut or call[0] not in ("get", "set", "set-ex"):
                outcome = await _outcome(lambda call=call: _public(cache, call), urls)
            else:  # building the plan is part of the call: it may refuse the input
                outcome = await _outcome(lambda call=call: cache._run(_plan(cache, call)), urls)
            meter = (scope.meter if scope is not None else cache._meter).as_dict()
            del meter["time_spent_ms"]
            trace.append(
                (
                    call, outcome, meter, dict(cache._stats),
                    {(urls.get(url, url), key): reply for (url, key), reply in scope.memo.items()}
                    if scope is not None
                    else {},
                    _store(situation.store(cache, scope)), situation.breaker(cache),
                )
            )  # fmt: skip
    if cls is AsyncUpstashCache:
        await cache.aclose()
    else:
        cache.close()
    return trace


def _same(situation: Situation, cls: type[Any], calls: list[Any], options: dict[str, Any]) -> None:
    situation.options = {**OPTIONS, **options}

    async def both() -> None:
        at_once = await _trace(situation, cls, calls, shortcut=True)
        planned = await _trace(situation, cls, calls, shortcut=False)
        assert at_once == planned

    asyncio.run(both())


_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("cls", [UpstashCache, AsyncUpstashCache], ids=["sync", "async"])
@pytest.mark.parametrize("scoped", [True, False], ids=["scope", "no scope"])
@_SETTINGS
@given(calls=CALLS, options=CLIENT_OPTIONS)
def test_local_mode_answers_as_its_plan(
    cls: type[Any], scoped: bool, calls: list[Any], options: dict[str, Any]
) -> None:
    _same(LocalMode(scoped=scoped), cls, calls, options)


@pytest.mark.parametrize("cls", [UpstashCache, AsyncUpstashCache], ids=["sync", "async"])
@_SETTINGS
@given(calls=CALLS, options=CLIENT_OPTIONS)
def test_the_open_circuit_answers_as_its_plan(
    cls: type[Any], calls: list[Any], options: dict[str, Any]
) -> None:
    _same(CircuitOpen(), cls, calls, options)


@pytest.mark.parametrize("cls", [UpstashCache, AsyncUpstashCache], ids=["sync", "async"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=CALLS, options=CLIENT_OPTIONS)
def test_the_memo_answers_as_its_plan(
    emulator: EmulatorHandle, cls: type[Any], calls: list[Any], options: dict[str, Any]
) -> None:
    _same(Memo(emulator), cls, calls, options)


@pytest.mark.parametrize("cls", [UpstashCache, AsyncUpstashCache], ids=["sync", "async"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=CALLS, options=CLIENT_OPTIONS)
def test_the_memo_then_the_open_circuit_answer_as_their_plan(
    upstream: EmulatorHandle,
    proxy: FaultProxy,
    cls: type[Any],
    calls: list[Any],
    options: dict[str, Any],
) -> None:
    _same(MemoThenOutage(upstream, proxy), cls, calls, options)


# -- what the random sequences above cannot reach ------------------------------------------


@pytest.mark.parametrize("cls", [UpstashCache, AsyncUpstashCache], ids=["sync", "async"])
def test_a_str_subclass_is_a_key_in_every_layer(cls: type[Any]) -> None:
    """A ``StrEnum`` member is a str: the default layer always took it as a key, and a
    layer took it too until the layers' key check asked for exactly ``str``."""

    async def calls() -> list[Any]:
        cache = cls(mode="local")
        query = cache.layer("query")
        outcomes = [
            await _outcome(lambda: query.set(Key.USER, {"id": 1}), {}),
            await _outcome(lambda: query.get(Key.USER), {}),
            await _outcome(lambda: cache.get("query:user"), {}),
            await _outcome(lambda: query.get(7), {}),
        ]
        if cls is AsyncUpstashCache:
            await cache.aclose()
        return outcomes

    assert asyncio.run(calls()) == [
        ("ok", WriteResult(True, CacheBackend.LOCAL)),
        ("ok", {"id": 1}),
        ("ok", {"id": 1}),
        ("ValidationError", "cache keys are str, got int"),
    ]


def test_a_read_in_flight_is_joined_even_once_the_circuit_opens(
    upstream: EmulatorHandle, proxy: FaultProxy
) -> None:
    """Two reads of one key in one request scope share one command (the async client's
    in-flight reads). When the circuit opens while the first is on its way (another
    request's timeout opened it), the second still waits for the first's answer, as its
    plan does, instead of answering a miss from the fallback store at once."""
    UpstashCache(rest_url=upstream.url, rest_token=upstream.token).set("k", "on upstash")

    async def reads() -> tuple[list[Any], dict[str, Any]]:
        cache = AsyncUpstashCache(
            rest_url=proxy.url, rest_token=upstream.token, timeout=20.0,
            failure_threshold=1, probe_interval=3600.0,
        )  # fmt: skip
        proxy.set_fault(Fault.SLOW, delay=60)  # forwarded, the answers held until release()
        with cache.request(deadline=30) as scope:
            first = asyncio.create_task(cache.get("k"))
            await asyncio.sleep(0)  # one pass of the loop: the first read is sent

            async def elsewhere() -> None:  # another request, whose write times out
                with cache.request(deadline=0.3):
                    await cache.set("other", 1)

            await asyncio.create_task(elsewhere())
            breaker = breaker_for(cache.config.database("primary").breaker_key)
            assert breaker.state is CircuitState.OPEN
            second = asyncio.create_task(cache.get("k"))
            await asyncio.sleep(0)  # one pass of the loop: the second read starts
            proxy.release()
            values = await asyncio.gather(first, second)
            meter = scope.meter.as_dict()
        await cache.aclose()
        return values, {k: meter[k] for k in ("hits", "misses", "fallback_ops")}

    assert asyncio.run(reads()) == (
        ["on upstash", "on upstash"],
        {"hits": 2, "misses": 0, "fallback_ops": 0},
    )


@pytest.mark.parametrize("cls", [UpstashCache, AsyncUpstashCache], ids=["sync", "async"])
def test_a_due_probe_is_sent_not_answered_at_once(
    upstream: EmulatorHandle, proxy: FaultProxy, cls: type[Any]
) -> None:
    """While the circuit is open with time to go, get/set answer from the fallback store
    and send nothing; once the probe is due (the interval passed, on a clock the test
    moves) the next call is the probe: it reaches Upstash, and its success closes the
    circuit for the calls after it."""
    clock = ManualClock()

    async def calls() -> list[Any]:
        cache = cls(
            rest_url=proxy.url, rest_token=upstream.token, failure_threshold=1,
            probe_interval=30.0,
        )  # fmt: skip
        breaker = breaker_for(cache.config.database("primary").breaker_key, clock=clock)
        proxy.set_fault(Fault.REFUSE)
        seen = []
        with cache.request(deadline=30):
            await _outcome(lambda: cache.get("opens"), {})
            seen.append(breaker.state)
            proxy.clear()
            sent = proxy.requests
            seen.append(await _outcome(lambda: cache.set("k", "shed"), {}))
            seen.append(await _outcome(lambda: cache.get("k"), {}))
            seen.append(proxy.requests - sent)  # nothing was sent while the circuit sheds
            clock.advance(30.0)
            seen.append(await _outcome(lambda: cache.set("k", "probe"), {}))
            seen.append(breaker.state)
            seen.append(await _outcome(lambda: cache.get("k"), {}))
        seen.append(server_value(upstream, "k"))
        if cls is AsyncUpstashCache:
            await cache.aclose()
        else:
            cache.close()
        return seen

    assert asyncio.run(calls()) == [
        CircuitState.OPEN,
        ("ok", WriteResult(True, CacheBackend.LOCAL, True)),
        ("ok", "shed"),
        0,
        ("ok", WriteResult(True, CacheBackend.UPSTASH)),
        CircuitState.CLOSED,
        ("ok", "probe"),
        b'"probe"',
    ]
