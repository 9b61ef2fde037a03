"""The process-wide memory of refused identifiers, on a clock the test turns by hand.

The clock is the cache's monotonic clock parameter: the code path is the real one.
"""

from __future__ import annotations

from continuum.ratelimit import BlockedCache, RateLimitResult, Reason
from tests.tooling import ManualClock as Clock


def refused(retry_after: float) -> RateLimitResult:
    return RateLimitResult(False, 5, 0, 1_795_000_010.0, retry_after, Reason.LIMITED, retry_after)


def test_answers_until_the_server_given_delay_then_asks_again() -> None:
    clock = Clock()
    cache = BlockedCache(clock=clock)
    cache.remember("k", 5, 1, refused(10.0))
    clock.now += 4
    answer = cache.answer("k", 5, 1)
    assert answer is not None and not answer.allowed
    assert answer.reason == "blocked_cache"
    assert answer.retry_after == 6.0 and answer.headers()["Retry-After"] == "6"
    assert answer.reset == 1_795_000_010.0
    clock.now += 6
    assert cache.answer("k", 5, 1) is None
    assert len(cache) == 0


def test_only_requests_at_least_as_heavy_are_answered() -> None:
    cache = BlockedCache(clock=Clock())
    cache.remember("k", 5, 3, refused(10.0))
    assert cache.answer("k", 5, 2) is None  # a lighter request might fit
    assert cache.answer("k", 5, 4) is not None
    assert cache.answer("k", 6, 3) is None  # another limit is another question


def test_admissions_and_forget_leave_nothing_behind() -> None:
    cache = BlockedCache(clock=Clock())
    cache.remember("k", 5, 1, RateLimitResult(True, 5, 4, 0.0, 0.0, Reason.ALLOWED))
    assert len(cache) == 0
    cache.remember("k", 5, 1, refused(10.0))
    cache.remember("k", 7, 1, refused(10.0))
    cache.forget("k")
    assert cache.answer("k", 5, 1) is None and len(cache) == 0


def test_bounded_least_recently_used_first() -> None:
    cache = BlockedCache(3, clock=Clock())
    for name in "abc":
        cache.remember(name, 5, 1, refused(10.0))
    assert cache.answer("a", 5, 1) is not None  # touch a: b is now the oldest
    cache.remember("d", 5, 1, refused(10.0))
    assert len(cache) == 3
    assert cache.answer("b", 5, 1) is None
    assert all(cache.answer(name, 5, 1) is not None for name in "acd")


def test_the_delay_counts_from_when_the_request_was_sent() -> None:
    clock = Clock()
    cache = BlockedCache(clock=clock)
    sent = cache.now()
    clock.now += 0.5  # the answer's trip back
    cache.remember("k", 5, 1, refused(10.0), sent=sent)
    clock.now = sent + 9.9
    assert cache.answer("k", 5, 1) is not None
    clock.now = sent + 10.0  # the server admits from here: so must the cache
    assert cache.answer("k", 5, 1) is None
