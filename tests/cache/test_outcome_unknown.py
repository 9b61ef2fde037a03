"""A write whose outcome is unknown says so: ``OutcomeUnknown``, never a local stand-in.

The fault proxy plays an Upstash that applies a request and then never answers (it
forwards it to the emulator and holds the answer). An ``increment`` there used to return
the request-scoped fallback's ``1`` as if it were the server's count, although the server
had counted it; a repeatable write (``set``) still falls back and says ``degraded``.
"""

from __future__ import annotations

from typing import Any

import pytest

from continuum import AsyncUpstashCache, CacheUnavailable, OutcomeUnknown, UpstashCache
from tests.cache.test_fallback import client, closed_port_url, server_value
from tests.resilience.fault_proxy import Fault, FaultProxy


def timed_out(proxy: FaultProxy, names: str) -> str:
    return (
        f"the outcome of {names} is unknown: it may have run on Upstash, but the Upstash "
        f"REST endpoint {proxy.url} did not answer in time"
    )


@pytest.fixture
def applies_then_hangs(proxy: FaultProxy) -> FaultProxy:
    proxy.set_fault(Fault.SLOW, delay=60)  # forwarded (so it runs), the answer held back
    return proxy


def test_increment_says_its_outcome_is_unknown(
    applies_then_hangs: FaultProxy, upstream: Any
) -> None:
    proxy = applies_then_hangs
    cache = client(proxy.url, timeout=0.3)
    with cache.request(deadline=2) as scope, pytest.raises(OutcomeUnknown) as caught:
        cache.increment("counter", 5)
    assert str(caught.value) == timed_out(proxy, "INCRBY")
    assert isinstance(caught.value, CacheUnavailable)
    assert str(caught.value.__cause__) == (
        f"the Upstash REST endpoint {proxy.url} did not answer in time"
    )
    assert server_value(upstream, "counter") == b"5"  # it did run, once
    assert scope.local.get("counter") is None  # and nothing stands in for it locally
    assert proxy.requests == 1  # never resent
    proxy.clear()
    assert cache.increment("counter") == 6  # the server's count, as before


def test_other_writes_that_cannot_be_repeated_say_so_too(
    applies_then_hangs: FaultProxy, upstream: Any
) -> None:
    proxy = applies_then_hangs
    cache = client(proxy.url, timeout=0.3, failure_threshold=100)  # the circuit stays closed
    attempts = [
        (lambda: cache.increment("f", 0.5), "INCRBYFLOAT"),
        (lambda: cache.publish("chat", "hi"), "PUBLISH"),
        (lambda: cache.layer("federation").increment("n"), "INCRBY"),
        (lambda: cache.execute([["LPUSH", "q", "job"]]), "LPUSH"),
    ]
    for attempt, names in attempts:
        with pytest.raises(OutcomeUnknown) as caught:
            attempt()
        assert str(caught.value) == timed_out(proxy, names)
    with pytest.raises(OutcomeUnknown) as caught, cache.pipeline() as pipe:
        pipe.set("a", 1).increment("b")
    assert str(caught.value) == timed_out(proxy, "SET, INCRBY")
    assert [server_value(upstream, k) for k in ("f", "a", "b")] == [b"0.5", b"1", b"1"]
    direct = UpstashCache(rest_url=upstream.url, rest_token=upstream.token)
    assert direct.execute([["LRANGE", "q", 0, -1]], write=False) == [[b"job"]]
    assert proxy.requests == 5  # each sent once


def test_a_repeatable_write_still_falls_back_and_says_degraded(
    applies_then_hangs: FaultProxy, upstream: Any
) -> None:
    cache = client(applies_then_hangs.url, timeout=0.3)
    with cache.request(deadline=2):
        result = cache.set("k", {"v": 1})
        assert result and result.degraded  # Upstash did not confirm it
        assert cache.get("k") == {"v": 1}
    assert server_value(upstream, "k") == b'{"v":1}'  # (it happened to get there)


def test_an_increment_that_never_left_still_falls_back() -> None:
    cache = client(closed_port_url(), max_retries=0)
    with cache.request(deadline=2) as scope:
        assert cache.increment("n") == 1  # nothing was sent: the local count is all there is
        assert cache.increment("n") == 2
    assert scope.meter.degraded_writes == 2


async def test_the_async_client_says_so_too(applies_then_hangs: FaultProxy, upstream: Any) -> None:
    proxy = applies_then_hangs
    cache = AsyncUpstashCache(rest_url=proxy.url, rest_token="suite-token", timeout=0.3, budget=2.0)
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            await cache.increment("counter")
        assert str(caught.value) == (  # the async transport's own bound on the exchange
            "the outcome of INCRBY is unknown: it may have run on Upstash, but the Upstash "
            f"REST endpoint {proxy.url} was too slow"
        )
        assert (await cache.set("k", 1)).degraded
    finally:
        await cache.aclose()
    assert server_value(upstream, "counter") == b"1"


def test_without_fallback_the_same(applies_then_hangs: FaultProxy) -> None:
    cache = UpstashCache(
        rest_url=applies_then_hangs.url, rest_token="suite-token", timeout=0.3, fallback=False
    )
    with pytest.raises(OutcomeUnknown) as caught:
        cache.increment("n")
    assert str(caught.value) == timed_out(applies_then_hangs, "INCRBY")
