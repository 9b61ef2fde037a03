"""Every request keeps working when Upstash does not: the cache under injected faults.

A ``FaultProxy`` sits between ``UpstashCache`` and the emulator. For each fault the suite
checks what a user of a serverless function would notice:

- the call returns without waiting for the fault: a slow or hung server holds its answer
  for ``FAULT_LASTS`` seconds, and the call must be back long before that (``RETURNS_BY``).
  That the call also keeps to the scope's deadline exactly is arithmetic, tested on a
  hand-turned clock in ``tests/rest/test_deadline.py``; a wall-clock bound as tight as
  the deadline would only measure how busy the machine is;
- best-effort layers answer from the request's local store and say so
  (``WriteResult.degraded``, ``current_backend``, the meter); the strict federation queue
  raises ``CacheUnavailable`` instead of dropping the write;
- INCR and PUBLISH run at most once on the server, counted there, and when they may have
  run the caller gets ``OutcomeUnknown`` rather than a local stand-in;
- the circuit opens, half-opens and closes as designed (a hand-turned clock, no sleeps),
  and once the fault clears the next probe recovers.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from continuum import AsyncUpstashCache, UpstashCache
from continuum.config import CacheBackend
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.errors import CacheError, CacheUnavailable, OutcomeUnknown
from continuum.pubsub import PubSub
from continuum.rest.breaker import CircuitState, breaker_for
from tests.tooling import ManualClock

from .fault_proxy import Fault, FaultProxy, closed_port_url

DEADLINE = 1.0  # the request scope's budget
ATTEMPT = 0.3  # one HTTP attempt
FAULT_LASTS = 30.0  # how long a slow or hung server holds its answer
RETURNS_BY = 10.0  # wall clock: the call did not wait for the fault (see the docstring)

ALL_FAULTS = [f for f in Fault if f is not Fault.NONE]
# Faults where the request reached the emulator before the client saw a failure.
FORWARDED = [Fault.SLOW, Fault.HTTP500, Fault.HTTP502, Fault.RESET]
# Faults after which the client knows a request did not run: refused, or never sent.
NOT_RUN = [Fault.REFUSE, Fault.BLACKHOLE, Fault.HTTP401, Fault.QUOTA]


def make_cache(url: str, token: str, *, cls: Any = UpstashCache, **options: object) -> Any:
    """A client with the policy tests' settings (``cls``: the sync or async client)."""
    settings: dict[str, object] = {
        "timeout": ATTEMPT,
        "budget": DEADLINE,
        "max_retries": 2,
        "failure_threshold": 100,  # policy tests: keep the breaker out of the way
        "backoff_base": 0.01,
    }
    settings.update(options)
    return cls(rest_url=url, rest_token=token, **settings)


@pytest.fixture
def cache(proxy: FaultProxy, emulator: EmulatorHandle) -> Iterator[UpstashCache]:
    with make_cache(proxy.url, emulator.token) as client:
        yield client


def server_get(emulator: EmulatorHandle, key: str) -> object:
    """Read straight from the emulator, bypassing the proxy and the client under test."""
    reply = httpx.get(
        f"{emulator.url}/get/{key}", headers={"Authorization": f"Bearer {emulator.token}"}
    )
    return reply.json()["result"]


def inject(proxy: FaultProxy, fault: Fault) -> None:
    proxy.set_fault(fault, delay=FAULT_LASTS)  # slow: far longer than any call may take


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_best_effort_layer_answers_from_the_request_store_in_time(
    fault: Fault, proxy: FaultProxy, cache: UpstashCache
) -> None:
    inject(proxy, fault)
    started = time.monotonic()
    with cache.request(deadline=DEADLINE) as scope:
        sessions = cache.layer("sessions")
        written = sessions.set("abc", {"user": 7})
        value = sessions.get("abc")
        elapsed = time.monotonic() - started
    assert elapsed < RETURNS_BY, f"{fault}: the call took {elapsed:.2f}s"
    assert written.ok and written.degraded and written.backend is CacheBackend.LOCAL
    assert value == {"user": 7}  # the write went to this request's store, not nowhere
    assert scope.meter.degraded_writes == 1
    assert scope.meter.fallback_ops >= 2
    meter = scope.meter
    assert re.fullmatch(
        r"cache;dur=\d+\.\d, "
        f'cache-rt;desc="{meter.round_trips}", cache-cmd;desc="{meter.commands}", '
        f'cache-fallback;desc="{meter.fallback_ops}"',
        meter.server_timing(),
    )


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_strict_federation_queue_raises_instead_of_dropping(
    fault: Fault, proxy: FaultProxy, cache: UpstashCache, emulator: EmulatorHandle
) -> None:
    inject(proxy, fault)
    started = time.monotonic()
    with cache.request(deadline=DEADLINE), pytest.raises(CacheUnavailable):
        cache.layer("federation").set("job-1", {"to": "peer"})
    assert time.monotonic() - started < RETURNS_BY
    proxy.clear()
    if fault not in FORWARDED:
        assert server_get(emulator, "fed:queue:job-1") is None


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_incr_runs_at_most_once_on_the_server(
    fault: Fault, proxy: FaultProxy, cache: UpstashCache, emulator: EmulatorHandle
) -> None:
    inject(proxy, fault)
    started = time.monotonic()
    with cache.request(deadline=DEADLINE):
        if fault in NOT_RUN:
            assert cache.increment("hits") == 1  # the request's own count, never resent
        else:
            with pytest.raises(OutcomeUnknown):  # it may have run: no local stand-in
                cache.increment("hits")
    assert time.monotonic() - started < RETURNS_BY
    proxy.clear()
    ran = server_get(emulator, "hits")
    if fault in FORWARDED:
        assert proxy.wait_forwarded(1)
        assert ran == "1", f"{fault}: INCR ran {ran} times"
        assert proxy.forwarded == 1
    else:
        assert ran is None


@pytest.mark.parametrize("fault", FORWARDED)
def test_publish_runs_at_most_once_on_the_server(
    fault: Fault, proxy: FaultProxy, cache: UpstashCache, emulator: EmulatorHandle
) -> None:
    with PubSub(emulator.url, emulator.token) as listener:
        listener.subscribe("events")
        confirm = listener.get_message(timeout=10)
        assert confirm is not None and confirm.type == "subscribe"
        inject(proxy, fault)
        with cache.request(deadline=DEADLINE), pytest.raises(OutcomeUnknown):
            cache.publish("events", "deploy")
        proxy.clear()
        # The marker goes straight to the emulator with a generous timeout: through the
        # faulted client it could be shed by the circuit the fault just opened.
        marker = httpx.post(
            emulator.url, json=["PUBLISH", "events", "end-marker"],
            headers={"Authorization": f"Bearer {emulator.token}"}, timeout=10,
        )  # fmt: skip
        assert marker.json()["result"] >= 1  # our listener hears it (and what came first)
        received: list[str] = []
        while "end-marker" not in received:
            message = listener.get_message(timeout=10)
            assert message is not None, "the marker never arrived"
            received.append(message.data)
    assert received.count("deploy") == 1


@pytest.mark.parametrize("fault", [Fault.SLOW, Fault.HTTP502])
def test_reads_are_retried_within_the_deadline(
    fault: Fault, proxy: FaultProxy, cache: UpstashCache
) -> None:
    inject(proxy, fault)
    started = time.monotonic()
    with cache.request(deadline=DEADLINE):
        assert cache.get("anything") is None
    assert time.monotonic() - started < RETURNS_BY
    assert proxy.wait_forwarded(2)  # the read was tried again, as reads may be


def test_a_refused_connection_falls_back_in_time(emulator: EmulatorHandle) -> None:
    # A host that does not resolve fails the same way (ConnectionFailed) but would send a
    # DNS query off this machine; a closed loopback port keeps the test local.
    with make_cache(closed_port_url(), emulator.token) as cache:
        started = time.monotonic()
        with cache.request(deadline=DEADLINE):
            written = cache.set("k", "v")
            assert cache.get("k") == "v"
            with pytest.raises(CacheUnavailable):
                cache.layer("federation").set("job", 1)
        assert time.monotonic() - started < RETURNS_BY
    assert written.degraded


def test_a_call_outside_any_scope_is_its_own_scope(proxy: FaultProxy, cache: UpstashCache) -> None:
    inject(proxy, Fault.HTTP502)
    assert cache.set("k", "v").degraded
    assert cache.get("k") is None  # the previous call's fallback store is gone with it


# -- the circuit ----------------------------------------------------------------------------


@pytest.fixture
def breaker_cache(
    proxy: FaultProxy, emulator: EmulatorHandle, clock: ManualClock
) -> Iterator[UpstashCache]:
    with make_cache(
        proxy.url, emulator.token, failure_threshold=2, probe_interval=30.0, max_retries=0
    ) as client:
        breaker_for(client.config.database("primary").breaker_key, clock=clock)
        yield client


def test_circuit_opens_half_opens_and_closes(
    proxy: FaultProxy, breaker_cache: UpstashCache, clock: ManualClock
) -> None:
    cache = breaker_cache
    breaker = breaker_for(cache.config.database("primary").breaker_key)
    assert cache.set("warm", 1).backend is CacheBackend.UPSTASH

    proxy.set_fault(Fault.HTTP502)
    cache.set("a", 1)
    assert breaker.state is CircuitState.CLOSED  # one failure is not an outage
    cache.set("a", 1)
    assert breaker.state is CircuitState.OPEN
    assert cache.current_backend is CacheBackend.LOCAL
    assert cache.info()["circuit"]["state"] == "open"

    sent = proxy.connections, proxy.forwarded
    with cache.request(deadline=DEADLINE):
        assert cache.set("b", 2).degraded
        assert cache.get("b") == 2
    assert (proxy.connections, proxy.forwarded) == sent  # open: nothing was sent

    clock.advance(30)
    cache.set("c", 3)  # the probe, while the fault is still on
    assert proxy.forwarded == sent[1] + 1
    assert breaker.state is CircuitState.OPEN  # failed probe: open for another interval

    proxy.clear()
    cache.set("d", 4)
    assert proxy.forwarded == sent[1] + 1  # still open until the interval passes

    clock.advance(30)
    written = cache.set("e", 5)  # the probe succeeds
    assert written.backend is CacheBackend.UPSTASH and not written.degraded
    assert breaker.state is CircuitState.CLOSED
    assert cache.current_backend is CacheBackend.UPSTASH
    assert cache.get("e") == 5


def test_what_a_request_read_from_upstash_still_answers_once_the_circuit_opens(
    proxy: FaultProxy, breaker_cache: UpstashCache
) -> None:
    cache = breaker_cache
    breaker = breaker_for(cache.config.database("primary").breaker_key)
    assert cache.set("read-before", {"from": "upstash"}).backend is CacheBackend.UPSTASH
    with cache.request(deadline=DEADLINE) as scope:
        assert cache.get("read-before") == {"from": "upstash"}
        proxy.set_fault(Fault.HTTP502)
        cache.set("x", 1)
        cache.set("x", 1)
        assert breaker.state is CircuitState.OPEN
        sent = proxy.connections, proxy.forwarded
        # the request's own read of Upstash, not the fallback store's miss
        assert cache.get("read-before") == {"from": "upstash"}
        assert cache.get("never-read") is None  # the fallback store answers the rest
        assert (proxy.connections, proxy.forwarded) == sent
    assert (scope.meter.hits, scope.meter.misses) == (2, 1)


def test_a_hung_probe_does_not_wedge_the_circuit(
    proxy: FaultProxy, breaker_cache: UpstashCache, clock: ManualClock
) -> None:
    cache = breaker_cache
    breaker = breaker_for(cache.config.database("primary").breaker_key)
    proxy.set_fault(Fault.HTTP502)
    cache.set("a", 1)
    cache.set("a", 1)
    clock.advance(30)
    assert breaker.allow()  # a probe whose function froze and never reports back
    assert breaker.state is CircuitState.HALF_OPEN
    assert cache.set("x", 1).degraded  # meanwhile: fallback, nothing sent
    proxy.clear()
    clock.advance(30)
    assert cache.set("y", 2).backend is CacheBackend.UPSTASH  # a fresh probe recovers
    assert breaker.state is CircuitState.CLOSED


def test_reconnect_probes_at_once(proxy: FaultProxy, breaker_cache: UpstashCache) -> None:
    cache = breaker_cache
    proxy.set_fault(Fault.REFUSE)
    cache.set("a", 1)
    cache.set("a", 1)
    assert cache.current_backend is CacheBackend.LOCAL
    assert cache.reconnect() is False  # still down
    proxy.clear()
    assert cache.reconnect() is True
    assert cache.current_backend is CacheBackend.UPSTASH


def test_command_errors_are_raised_not_hidden_and_do_not_open_the_circuit(
    proxy: FaultProxy, breaker_cache: UpstashCache
) -> None:
    cache = breaker_cache
    cache.set("text", "not a number")
    for _ in range(3):
        with pytest.raises(CacheError) as info:
            cache.increment("text")
        assert not isinstance(info.value, CacheUnavailable)
    assert cache.current_backend is CacheBackend.UPSTASH


# -- async ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.REFUSE, Fault.RESET, Fault.NONJSON])
async def test_async_concurrent_calls_fall_back_in_time(
    fault: Fault, proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    cache = make_cache(proxy.url, emulator.token, cls=AsyncUpstashCache)
    try:
        await cache.set("query:q", [1, 2])  # healthy: stored upstream
        inject(proxy, fault)
        started = time.monotonic()
        async with cache.request(deadline=DEADLINE):
            written = await cache.layer("sessions").set("s", {"u": 1})
            session, hits, query = await asyncio.gather(
                cache.layer("sessions").get("s"),
                cache.increment("ratelimit:ip"),
                cache.get("query:q"),
                return_exceptions=True,
            )
        assert time.monotonic() - started < RETURNS_BY
        assert written.degraded and session == {"u": 1}
        if fault in NOT_RUN:
            assert hits == 1
        else:  # it may have run upstream
            assert isinstance(hits, OutcomeUnknown)
        assert query is None  # upstream data is unreachable, and nothing pretends otherwise
        with pytest.raises(CacheUnavailable):
            await cache.layer("federation").set("job", 1)
    finally:
        await cache.aclose()


@pytest.mark.parametrize("fault", FORWARDED)
async def test_async_auto_pipelined_incr_runs_at_most_once(
    fault: Fault, proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    cache = make_cache(proxy.url, emulator.token, cls=AsyncUpstashCache)
    try:
        inject(proxy, fault)
        async with cache.request(deadline=DEADLINE):
            # A read and a write in the same tick share one /pipeline request: the read
            # must not drag the write into a retry.
            page, visits = await asyncio.gather(
                cache.get("page"), cache.increment("visits"), return_exceptions=True
            )
        assert page is None and isinstance(visits, OutcomeUnknown)
        proxy.clear()
        assert proxy.wait_forwarded(1)
        assert await asyncio.to_thread(server_get, emulator, "visits") == "1"
    finally:
        await cache.aclose()


def test_slow_but_within_the_attempt_timeout_is_served_by_upstash(
    proxy: FaultProxy, cache: UpstashCache
) -> None:
    proxy.set_fault(Fault.SLOW, delay=ATTEMPT / 3)
    with cache.request(deadline=DEADLINE) as scope:
        written = cache.set("k", "v")
        assert cache.get("k") == "v"
    assert not written.degraded and written.backend is CacheBackend.UPSTASH
    assert scope.meter.fallback_ops == 0


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.REFUSE, Fault.HTTP401, Fault.HTTP502])
def test_subscribing_through_a_fault_raises_in_time(
    fault: Fault, proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    inject(proxy, fault)
    started = time.monotonic()
    with PubSub(proxy.url, emulator.token, timeout=ATTEMPT) as sub, pytest.raises(CacheUnavailable):
        sub.subscribe("events")
    assert time.monotonic() - started < RETURNS_BY


def test_while_a_probe_is_out_the_circuit_is_half_open_and_others_fall_back(
    proxy: FaultProxy, emulator: EmulatorHandle, clock: ManualClock
) -> None:
    import threading

    # The probe's answer is held until the test has looked: no race with a timer.
    options = {
        "failure_threshold": 2,
        "max_retries": 0,
        "timeout": FAULT_LASTS,
        "budget": FAULT_LASTS,
    }
    with make_cache(proxy.url, emulator.token, **options) as cache:
        breaker = breaker_for(cache.config.database("primary").breaker_key, clock=clock)
        proxy.set_fault(Fault.HTTP502)
        cache.set("a", 1)
        cache.set("a", 1)
        assert breaker.state is CircuitState.OPEN
        proxy.set_fault(Fault.SLOW, delay=FAULT_LASTS)  # Upstash is back, answering slowly
        clock.advance(30)
        before = proxy.forwarded
        probe = threading.Thread(target=cache.set, args=("probe", 1))
        probe.start()
        assert proxy.wait_forwarded(before + 1)  # the probe reached Upstash and waits
        assert breaker.state is CircuitState.HALF_OPEN
        assert cache.set("other", 2).degraded  # not the probe: fallback, nothing sent
        proxy.release()
        probe.join(RETURNS_BY)
        assert not probe.is_alive()
        assert proxy.forwarded == before + 1  # the probe alone reached Upstash
        assert breaker.state is CircuitState.CLOSED  # the probe's success closed it
        assert cache.set("after", 3).backend is CacheBackend.UPSTASH


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_each_fault_opens_the_circuit_and_the_next_probe_recovers(
    fault: Fault, proxy: FaultProxy, emulator: EmulatorHandle, clock: ManualClock
) -> None:
    with make_cache(proxy.url, emulator.token, failure_threshold=1, max_retries=0) as cache:
        breaker_for(cache.config.database("primary").breaker_key, clock=clock)
        inject(proxy, fault)
        with cache.request(deadline=DEADLINE):
            assert cache.set("k", "during").degraded
        assert cache.current_backend is CacheBackend.LOCAL
        proxy.clear()
        clock.advance(30.0)  # the probe interval passes (config default: 30 s)
        written = cache.set("k", "after")
        assert written.backend is CacheBackend.UPSTASH and not written.degraded
        assert cache.current_backend is CacheBackend.UPSTASH
        assert server_get(emulator, "k") == '"after"'  # JSON text, as other clients read it
