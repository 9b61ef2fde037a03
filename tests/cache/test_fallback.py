"""Faults between the client and the emulator: the request keeps working, writes are never
silently dropped or doubled, and the circuit opens, probes and closes.

A real proxy (tests/resilience/fault_proxy.py) sits between the client and the emulator over
fakeredis; the emulator counts what actually ran on the server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from continuum import (
    AsyncUpstashCache,
    AuthenticationFailed,
    CacheBackend,
    CacheTimeout,
    CircuitOpen,
    ConnectionFailed,
    OutcomeUnknown,
    QuotaExceeded,
    ServerError,
    UpstashCache,
)
from tests.resilience.fault_proxy import Fault, FaultProxy, closed_port_url

MARGIN = 1.5  # seconds allowed beyond a deadline for scheduling on a busy machine


def client(url: str, token: str = "suite-token", **options: Any) -> UpstashCache:
    options.setdefault("timeout", 0.5)
    options.setdefault("budget", 2.0)
    options.setdefault("backoff_base", 0.01)
    return UpstashCache(rest_url=url, rest_token=token, **options)


def refused(url: str) -> str:
    return f"could not connect to the Upstash REST endpoint {url}: ConnectError"


def server_value(upstream: Any, key: str) -> Any:
    direct = UpstashCache(rest_url=upstream.url, rest_token=upstream.token)
    return direct.execute([["GET", key]], write=False)[0]


def test_connection_refused_falls_back_within_the_scope() -> None:
    cache = client(closed_port_url())
    started = time.monotonic()
    with cache.request(deadline=2) as scope:
        result = cache.set("session:1", {"user": 1})
        assert result and result.degraded and result.backend is CacheBackend.LOCAL
        assert cache.get("session:1") == {"user": 1}
    assert time.monotonic() - started < 2 + MARGIN
    assert scope.meter.degraded_writes == 1
    assert scope.meter.fallback_ops >= 2


def test_strict_layer_raises_instead_of_falling_back() -> None:
    url = closed_port_url()
    cache = client(url)
    with pytest.raises(ConnectionFailed) as caught:
        cache.layer("federation").set("event-1", {"op": "sync"})
    assert str(caught.value) == refused(url)


def test_fallback_can_be_disabled() -> None:
    url = closed_port_url()
    cache = client(url, fallback=False)
    with pytest.raises(ConnectionFailed) as caught:
        cache.set("k", 1)
    assert str(caught.value) == refused(url)


def test_a_hanging_server_costs_at_most_the_deadline(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.HANG)
    cache = client(proxy.url, timeout=5.0)
    started = time.monotonic()
    with cache.request(deadline=0.6):
        assert cache.get("k") is None  # the fallback store is empty
        assert cache.set("k", 1).degraded
    assert time.monotonic() - started < 0.6 + MARGIN
    with pytest.raises(CacheTimeout) as caught:
        cache.layer("federation").get("x")
    assert str(caught.value) == f"the Upstash REST endpoint {proxy.url} did not answer in time"


async def test_async_hanging_server_costs_at_most_the_deadline(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.HANG)
    cache = AsyncUpstashCache(rest_url=proxy.url, rest_token="suite-token", timeout=5.0)
    started = time.monotonic()
    async with cache.request(deadline=0.6):
        assert await cache.get("k") is None
        assert (await cache.set("k", 1)).degraded
    assert time.monotonic() - started < 0.6 + MARGIN
    await cache.aclose()


def test_a_write_that_reached_the_server_is_never_resent(proxy: FaultProxy, upstream: Any) -> None:
    proxy.set_fault(Fault.HTTP502)  # the server ran it, then a 502
    cache = client(proxy.url)
    with cache.request(deadline=2), pytest.raises(OutcomeUnknown) as caught:
        cache.increment("counter")  # no local 1 passing for the server's count
    assert str(caught.value) == (
        "the outcome of INCRBY is unknown: it may have run on Upstash, but Upstash answered "
        "HTTP 502"
    )
    assert proxy.requests == 1
    assert server_value(upstream, "counter") == b"1"  # ran exactly once on the server


def test_reads_are_retried_after_a_5xx(proxy: FaultProxy, upstream: Any) -> None:
    UpstashCache(rest_url=upstream.url, rest_token=upstream.token).set("k", "v")
    proxy.set_fault(Fault.STATUS, status=503, body=b"<html>Service Unavailable</html>")
    cache = client(proxy.url, max_retries=2)
    assert cache.get("k") is None
    assert proxy.requests == 3  # first attempt + 2 retries
    proxy.clear()
    assert cache.get("k") == "v"


def test_a_write_after_a_timeout_is_not_retried(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.HANG)
    cache = client(proxy.url, timeout=0.3, budget=3.0, max_retries=3)
    assert cache.set("k", 1).degraded
    assert proxy.requests == 1


def test_connect_errors_are_retried_for_writes_too() -> None:
    url = closed_port_url()
    cache = client(url, max_retries=2, fallback=False)
    meter_before = cache.meter.round_trips
    with pytest.raises(ConnectionFailed) as caught:
        cache.increment("n")
    assert str(caught.value) == refused(url)
    assert cache.meter.round_trips - meter_before == 3


NOT_JSON = "the REST endpoint answered a body that is not JSON"


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (401, b'{"error":"Unauthorized"}', AuthenticationFailed,
         "Upstash refused the token (HTTP 401); check UPSTASH_REDIS_REST_TOKEN"),
        (400, b'{"error":"ERR max daily request limit exceeded. Limit: 10000, Usage: 10001"}',
         QuotaExceeded, "Upstash refused the request: plan limit reached (400)"),
        (500, b'{"message":"internal error"}', ServerError, "Upstash answered HTTP 500"),
        (502, b"<html>Bad Gateway</html>", ServerError, "Upstash answered HTTP 502"),
        (200, b"this is not json", ServerError, NOT_JSON),
        # a lying server: nesting no Upstash answer has must not crash the JSON parser
        (200, b'{"result":' + b"[" * 100_000 + b"]" * 100_000 + b"}", ServerError, NOT_JSON),
        (200, b"[" * 100_000, ServerError, NOT_JSON),
    ],
)  # fmt: skip
def test_server_failures_map_to_the_tree_and_fall_back(
    proxy: FaultProxy, status: int, body: bytes, error: type[Exception], message: str
) -> None:
    proxy.set_fault(Fault.STATUS, status=status, body=body)
    cache = client(proxy.url)
    assert cache.set("k", 1).degraded
    with pytest.raises(error) as info:
        cache.layer("federation").set("k", 1)
    assert str(info.value) == message  # (and so it never carries the token)


@pytest.mark.parametrize("fault", [Fault.TRUNCATED, Fault.RESET])
def test_broken_bodies_fall_back(proxy: FaultProxy, fault: Fault) -> None:
    proxy.set_fault(fault)
    cache = client(proxy.url)
    assert cache.get("k") is None
    with pytest.raises(ServerError) as caught:
        cache.layer("federation").get("k")
    broke = "RemoteProtocolError" if fault is Fault.TRUNCATED else "ReadError"
    assert str(caught.value) == (
        f"the connection to the Upstash REST endpoint {proxy.url} broke: {broke}"
    )


def test_wrong_token_is_an_authentication_error(upstream: Any) -> None:
    cache = client(upstream.url, token="wrong-token-0000")
    with pytest.raises(AuthenticationFailed) as info:
        cache.layer("federation").get("k")
    assert str(info.value) == (
        "Upstash refused the token (HTTP 401); check UPSTASH_REDIS_REST_TOKEN"
    )  # and never the token itself


def test_a_wrong_token_cannot_open_the_circuit_for_correct_clients(upstream: Any) -> None:
    wrong = client(upstream.url, token="wrong-token-0000", failure_threshold=2)
    for _ in range(3):
        wrong.get("k")  # 401s: best-effort reads fall back, and the wrong client's circuit opens
    assert wrong.current_backend is CacheBackend.LOCAL
    right = client(upstream.url, token=upstream.token, failure_threshold=2)
    assert right.set("k", "v").backend is CacheBackend.UPSTASH
    assert right.current_backend is CacheBackend.UPSTASH
    assert server_value(upstream, "k") is not None


def test_circuit_opens_skips_the_network_then_probes_and_closes(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.STATUS, status=502)
    cache = client(proxy.url, max_retries=0, failure_threshold=3, probe_interval=0.2)
    for _ in range(3):
        assert cache.get("k") is None
    assert cache.current_backend is CacheBackend.LOCAL
    assert cache.info()["circuit"]["state"] == "open"
    sent = proxy.requests
    assert cache.set("k", 1).degraded
    with pytest.raises(CircuitOpen) as caught:
        cache.layer("federation").get("k")
    assert str(caught.value) == (
        f"Upstash at {proxy.url} is presumed down (circuit open); nothing was sent"
    )
    assert proxy.requests == sent  # open: nothing was sent
    proxy.clear()
    deadline = time.monotonic() + 5
    while cache.current_backend is not CacheBackend.UPSTASH and time.monotonic() < deadline:
        cache.get("k")  # after the probe interval, one of these is the probe
    assert cache.current_backend is CacheBackend.UPSTASH
    assert cache.set("k", 2) and not cache.set("k", 2).degraded


@pytest.mark.parametrize("method", ["reconnect", "_connect"])  # _connect: the seed's name
def test_reconnect_forces_a_probe(proxy: FaultProxy, method: str) -> None:
    proxy.set_fault(Fault.STATUS, status=502)
    cache = client(proxy.url, max_retries=0, failure_threshold=1, probe_interval=3600)
    cache.get("k")
    assert cache.current_backend is CacheBackend.LOCAL
    proxy.clear()
    assert getattr(cache, method)() is True
    assert cache.current_backend is CacheBackend.UPSTASH


async def test_async_connect_forces_a_probe(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.STATUS, status=502)
    cache = AsyncUpstashCache(
        rest_url=proxy.url, rest_token="suite-token", max_retries=0, failure_threshold=1,
        probe_interval=3600,
    )  # fmt: skip
    await cache.get("k")
    assert cache.current_backend is CacheBackend.LOCAL
    proxy.clear()
    assert await cache._connect() is True
    assert cache.current_backend is CacheBackend.UPSTASH
    await cache.aclose()


def test_no_unhandled_exception_from_best_effort_calls(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.STATUS, status=500, body=b"oops")
    cache = client(proxy.url, max_retries=0)
    with cache.request(deadline=3):
        assert cache.get("a") is None
        assert cache.set("a", 1)
        assert cache.exists("a") is True  # the scope's fallback store has it
        assert cache.delete("a") == 1
        assert cache.ping() is False
        assert cache.info()["keys"] is None
        assert cache.delete_pattern("a*") == 0
        with cache.pipeline() as pipe:
            pipe.set("b", 1)
            pipe.get("b")
        assert pipe.results == [True, 1]
    assert cache.get("b") is None  # outside the scope, a call is its own scope


def test_flush_never_pretends_to_succeed_while_down() -> None:
    url = closed_port_url()
    cache = client(url)
    with pytest.raises(ConnectionFailed) as caught:
        cache.flush(confirm=True)
    assert str(caught.value) == refused(url)


async def test_strict_and_best_effort_calls_sharing_a_pipeline_keep_their_policies() -> None:
    import asyncio

    cache = AsyncUpstashCache(
        rest_url=closed_port_url(), rest_token="suite-token", timeout=0.5, budget=2.0
    )
    async with cache.request(deadline=2):
        strict, relaxed = await asyncio.gather(
            cache.layer("federation").set("evt", 1), cache.set("k", 1), return_exceptions=True
        )
    assert isinstance(strict, ConnectionFailed)
    assert relaxed and relaxed.degraded  # type: ignore[union-attr]
    await cache.aclose()


def test_lambda_remaining_time_bounds_a_hanging_call(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.HANG)
    cache = client(proxy.url, timeout=5.0, budget=10.0)
    started = time.monotonic()
    with cache.request(remaining_ms=900) as c:  # 0.9 s left, minus the answer margin
        assert c.get("k") is None
        assert c.deadline.remaining() == 0
    assert time.monotonic() - started < 0.9 + MARGIN


async def test_reads_sharing_a_failed_write_request_are_retried_alone(
    proxy: FaultProxy, upstream: Any
) -> None:
    # gather() puts a read and a write in one /pipeline; the gateway answers 502 after
    # the server ran both. The write must not be resent; the read may be, on its own.
    cache = AsyncUpstashCache(
        rest_url=proxy.url, rest_token=upstream.token, timeout=1.0, backoff_base=0.01
    )
    await cache.set("profile", {"name": "Alice"})
    proxy.set_fault(Fault.HTTP502, times=1)  # ran, then a 502
    async with cache.request(deadline=3) as scope:
        profile, visits = await asyncio.gather(
            cache.get("profile"), cache.increment("visits"), return_exceptions=True
        )
    assert profile == {"name": "Alice"}  # served by Upstash, not an empty fallback
    assert isinstance(visits, OutcomeUnknown)  # the server ran it; no local 1 instead
    assert scope.meter.degraded_writes == 0
    assert server_value(upstream, "visits") == b"1"  # ran once on the server
    await cache.aclose()


def test_a_pattern_delete_cut_off_midway_finishes_on_the_fallback_store(
    proxy: FaultProxy, upstream: Any
) -> None:
    # Upstash answers the first SCAN page and its UNLINK, then stops. The walk must go on
    # over the request's fallback store from its start (an Upstash cursor means nothing
    # there), so a key written there during the outage is invalidated too.
    direct = UpstashCache(rest_url=upstream.url, rest_token=upstream.token)
    with direct.pipeline() as pipe:
        for i in range(1200):
            pipe.set(f"user:{i}", i)
    cache = client(proxy.url, token=upstream.token, max_retries=0, failure_threshold=10)
    with cache.request(deadline=5):
        proxy.set_fault(Fault.STATUS, status=502, times=1)
        assert cache.set("user:during-outage", 1).degraded
        proxy.set_fault(Fault.STATUS, status=502, skip=2)
        deleted = cache.delete_pattern("user:*")
        assert cache.get("user:during-outage") is None
    left_on_upstash = len(upstream.redis.keys("user:*"))
    assert 0 < left_on_upstash < 1200  # the cut really happened midway
    assert deleted == 1200 - left_on_upstash + 1


def test_a_pipeline_the_fallback_answered_says_so(upstream: Any) -> None:
    """Like ``set``'s ``WriteResult.degraded``: a pipeline whose writes only the request's
    fallback store holds must say so, or they would vanish with the request unnoticed."""
    down = client(closed_port_url())
    with down.request(deadline=2):
        pipe = down.pipeline()
        results = pipe.set("memory:1", {"m": 1}, ex=1800).get("memory:1").execute()
        assert (results, pipe.degraded) == ([True, {"m": 1}], True)
    healthy = client(upstream.url, upstream.token)
    pipe = healthy.pipeline()
    assert pipe.degraded is False, "nothing ran yet: nothing was degraded"
    results = pipe.set("memory:1", {"m": 1}, ex=1800).get("memory:1").execute()
    assert (results, pipe.degraded) == ([True, {"m": 1}], False)


async def test_an_async_pipeline_the_fallback_answered_says_so() -> None:
    down = AsyncUpstashCache(rest_url=closed_port_url(), rest_token="suite-token", timeout=0.5)
    async with down.request(deadline=2):
        pipe = down.pipeline()
        results = await pipe.set("memory:1", 1).increment("hits").execute()
        assert (results, pipe.degraded) == ([True, 1], True)
    await down.aclose()
