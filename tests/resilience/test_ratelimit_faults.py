"""The rate limiter under injected faults: the outage policy answers, within the deadline,
and a check the server may have run is never sent twice.

The limiter talks to the emulator through the ``FaultProxy``; usage is read straight from
the emulator with a second client, so the count is the server's own.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from continuum import AsyncUpstashCache, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.ratelimit import AsyncRateLimiter, BlockedCache, RateLimiter

from .fault_proxy import Fault, FaultProxy
from .test_faults import ALL_FAULTS, DEADLINE, FORWARDED, RETURNS_BY, inject, make_cache


@pytest.mark.parametrize("fault", ALL_FAULTS)
@pytest.mark.parametrize("fail_open", [True, False])
def test_the_outage_policy_answers_within_the_deadline(
    fault: Fault, fail_open: bool, proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    with make_cache(proxy.url, emulator.token) as cache:
        limiter = RateLimiter(cache, fail_open=fail_open, blocked=BlockedCache())
        assert limiter.limit("warm", limit=5).reason == "allowed"  # the script is loaded
        inject(proxy, fault)
        started = time.monotonic()
        with cache.request(deadline=DEADLINE):
            result = limiter.limit("u", limit=5)
        elapsed = time.monotonic() - started
    assert elapsed < RETURNS_BY, f"{fault}: {elapsed:.2f}s"
    assert result.reason == "unavailable"
    assert result.allowed is fail_open
    if fail_open:  # admitted, and told nothing is used up
        expected = {"RateLimit-Limit": "5", "RateLimit-Remaining": "5", "RateLimit-Reset": "0"}
    else:  # refused, and told when to try again
        expected = {
            "RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": "1",
            "Retry-After": "1",
        }  # fmt: skip
    assert result.headers() == expected


@pytest.mark.parametrize("fault", FORWARDED)
def test_a_check_the_server_ran_is_counted_once(
    fault: Fault, proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    with (
        make_cache(proxy.url, emulator.token) as cache,
        UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as direct,
    ):
        limiter = RateLimiter(cache, blocked=BlockedCache())
        limiter.limit("warm", limit=5)
        inject(proxy, fault)
        with cache.request(deadline=DEADLINE):
            limiter.limit("u", limit=5)
        assert proxy.wait_forwarded(2)  # the warm-up, then the faulted check
        used = RateLimiter(direct, blocked=BlockedCache()).get_usage("u", max_requests=5)
    assert proxy.forwarded == 2, f"{fault}: the check was sent again"
    assert used["current"] == 1, f"{fault}: the server counted {used['current']}"


@pytest.mark.parametrize("fault", FORWARDED)
async def test_async_check_sharing_a_pipeline_with_a_read_is_counted_once(
    fault: Fault, proxy: FaultProxy, emulator: EmulatorHandle
) -> None:
    cache = make_cache(proxy.url, emulator.token, cls=AsyncUpstashCache)
    try:
        limiter = AsyncRateLimiter(cache, fail_open=False, blocked=BlockedCache())
        await limiter.limit("warm", limit=5)  # the script is loaded: EVALSHA runs it
        inject(proxy, fault)
        started = time.monotonic()
        async with cache.request(deadline=DEADLINE):
            # the read and the check leave in one /pipeline request: the read's retry
            # must not carry the check along
            _, result = await asyncio.gather(cache.get("page"), limiter.limit("u", limit=5))
        assert time.monotonic() - started < RETURNS_BY
        assert not result.allowed and result.reason == "unavailable"
        proxy.clear()
        assert proxy.wait_forwarded(2)
    finally:
        await cache.aclose()
    with UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as direct:
        used = RateLimiter(direct, blocked=BlockedCache()).get_usage("u", max_requests=5)
    assert used["current"] == 1, f"{fault}: the server counted {used['current']}"
