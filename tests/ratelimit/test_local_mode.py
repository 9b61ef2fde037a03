"""The limiter in local mode: a process-wide ``LocalCache`` runs the Python twins.

The store's clock is the one ``TIME`` answers from, so turning it by hand moves the
limiter's time exactly (the real code path; nothing is patched).
"""

from __future__ import annotations

import pytest

from continuum.errors import ValidationError
from continuum.local.store import LocalCache, Reply
from continuum.ratelimit import AsyncRateLimiter, BlockedCache, RateLimiter
from tests.tooling import ManualClock as Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(1_795_000_020.0)


@pytest.fixture
def store(clock: Clock) -> LocalCache:
    return LocalCache(clock=clock)


@pytest.mark.parametrize(
    "algorithm", ["sliding_log", "sliding_window", "fixed_window", "token_bucket"]
)
def test_each_algorithm_admits_the_limit_then_refuses(
    store: LocalCache, clock: Clock, algorithm: str
) -> None:
    limiter = RateLimiter(store, algorithm=algorithm, blocked=BlockedCache(clock=clock))
    results = [limiter.limit("u", limit=3, window_seconds=10) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    refused = results[-1]
    assert refused.reason == "limited"
    # the weighted previous window can hold a sliding-window counter past one window
    assert 0 < refused.retry_after <= (20 if algorithm == "sliding_window" else 10)
    assert refused.headers()["Retry-After"] == str(int(-(-refused.retry_after // 1)))
    clock.now += refused.retry_after
    assert limiter.limit("u", limit=3, window_seconds=10).allowed


def test_sliding_log_is_exact_at_every_instant(store: LocalCache, clock: Clock) -> None:
    limiter = RateLimiter(store, blocked=BlockedCache(clock=clock))
    for _ in range(2):
        assert limiter.limit("u", limit=3, window_seconds=10).allowed
    clock.now += 6
    assert limiter.limit("u", limit=3, window_seconds=10).allowed
    clock.now += 3.9  # 9.9 s after the first two: still inside their window
    assert not limiter.limit("u", limit=3, window_seconds=10).allowed
    clock.now += 0.1
    result = limiter.limit("u", limit=3, window_seconds=10, cost=2)
    assert result.allowed and result.remaining == 0


def test_seed_api_counts_reads_and_resets(store: LocalCache, clock: Clock) -> None:
    limiter = RateLimiter(store, blocked=BlockedCache(clock=clock))
    for _ in range(5):
        assert limiter.check_rate_limit("u", window_seconds=60, max_requests=5)
    assert not limiter.check_rate_limit("u", window_seconds=60, max_requests=5)
    usage = limiter.get_usage("u", window_seconds=60, max_requests=5)
    assert usage["current"] == 5 and usage["remaining"] == 0 and usage["limit"] == 5
    assert usage["reset"] == pytest.approx(1_795_000_080.0)
    assert limiter.get_usage("u", window_seconds=60, max_requests=5)["current"] == 5
    assert limiter.reset("u", window_seconds=60) is True
    assert limiter.get_usage("u", window_seconds=60)["current"] == 0
    assert limiter.check_rate_limit("u", window_seconds=60, max_requests=5)
    assert limiter.reset("never-seen") is False


def test_windows_and_algorithms_keep_separate_state(store: LocalCache, clock: Clock) -> None:
    blocked = BlockedCache(clock=clock)
    log = RateLimiter(store, blocked=blocked)
    fixed = RateLimiter(store, algorithm="fixed_window", blocked=blocked)
    assert log.limit("u", limit=1, window_seconds=1).allowed
    assert log.limit("u", limit=1, window_seconds=60).allowed
    assert fixed.limit("u", limit=1, window_seconds=60).allowed
    assert not log.limit("u", limit=1, window_seconds=60).allowed


def test_idle_identifiers_expire(store: LocalCache, clock: Clock) -> None:
    for algorithm in ["sliding_log", "sliding_window", "fixed_window", "token_bucket"]:
        RateLimiter(store, algorithm=algorithm, blocked=BlockedCache(clock=clock)).limit(
            "idle", limit=5, window_seconds=10
        )
    assert len(store) == 4
    clock.now += 21  # the sliding window remembers the previous window: two windows
    assert len(store) == 0


def test_hostile_identifiers_never_share_a_budget(store: LocalCache, clock: Clock) -> None:
    limiter = RateLimiter(store, blocked=BlockedCache(clock=clock))
    assert limiter.limit("a:b", limit=1).allowed
    assert not limiter.limit("a:b", limit=1).allowed
    for other in ["a", ":b", "a%3Ab", "a*", "*", "a\x00b", "x" * 40_000, "x" * 40_001]:
        assert limiter.limit(other, limit=1).allowed, other
    assert not limiter.limit("x" * 40_000, limit=1).allowed


LIMIT_RANGE = "limit must be an integer from 1 to 1000000000, not {}"
WINDOW_RANGE = "window_seconds must be between 0.001 and 316224000, not {}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, LIMIT_RANGE.format(0)),
        ({"limit": True}, LIMIT_RANGE.format(True)),
        ({"limit": 2.5}, LIMIT_RANGE.format(2.5)),
        ({"window_seconds": 0}, WINDOW_RANGE.format(0)),
        ({"window_seconds": float("nan")}, WINDOW_RANGE.format("nan")),
        ({"window_seconds": "60"}, "window_seconds must be a number, not '60'"),
        ({"cost": -1}, "cost must be a non-negative integer, not -1"),
        ({"cost": 1.5}, "cost must be a non-negative integer, not 1.5"),
        ({"cost": 101}, "cost 101 exceeds the limit 100: such a request could never be admitted"),
    ],
)
def test_bad_arguments_get_a_specific_error(
    store: LocalCache, kwargs: dict[str, object], message: str
) -> None:
    limiter = RateLimiter(store)
    with pytest.raises(ValidationError) as caught:
        limiter.limit("u", **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_unknown_algorithm_names_the_choices(store: LocalCache) -> None:
    with pytest.raises(ValidationError) as caught:
        RateLimiter(store, algorithm="leaky")
    assert str(caught.value) == (
        "unknown rate-limit algorithm 'leaky'; choose one of: sliding_log, sliding_window, "
        "fixed_window, token_bucket"
    )


async def test_async_twin_gives_the_same_answers(store: LocalCache, clock: Clock) -> None:
    limiter = AsyncRateLimiter(store, algorithm="token_bucket", blocked=BlockedCache(clock=clock))
    results = [await limiter.limit("u", limit=2, window_seconds=10) for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert (await limiter.get_usage("u", window_seconds=10, max_requests=2))["current"] == 2
    assert await limiter.reset("u", window_seconds=10)
    assert await limiter.check_rate_limit("u", window_seconds=10, max_requests=2)


def test_upstash_cache_in_local_mode_limits_with_the_twins() -> None:
    from continuum.cache import UpstashCache

    with UpstashCache(mode="local") as cache:
        limiter = RateLimiter(cache, limit=2, blocked=BlockedCache())
        assert [limiter.limit("u").allowed for _ in range(3)] == [True, True, False]
        assert limiter.get_usage("u")["current"] == 2
        assert limiter.reset("u")
        assert limiter.limit("u").reason == "allowed"


def test_sub_millisecond_windows_keep_separate_state(store: LocalCache, clock: Clock) -> None:
    limiter = RateLimiter(store, blocked=BlockedCache(clock=clock))
    assert limiter.limit("u", limit=1, window_seconds=0.0011).allowed
    assert limiter.limit("u", limit=1, window_seconds=0.0012).allowed
    assert limiter.limit("u", limit=1, window_seconds=0.001).allowed
    assert not limiter.limit("u", limit=1, window_seconds=0.0011).allowed


@pytest.mark.parametrize(
    "algorithm", ["sliding_log", "sliding_window", "fixed_window", "token_bucket"]
)
def test_cost_zero_peeks_without_counting(store: LocalCache, clock: Clock, algorithm: str) -> None:
    limiter = RateLimiter(store, algorithm=algorithm, blocked=BlockedCache(clock=clock))
    peek = limiter.limit("u", limit=2, window_seconds=10, cost=0)
    assert peek.allowed and peek.remaining == 2
    assert [limiter.limit("u", limit=2, window_seconds=10).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    full = limiter.limit("u", limit=2, window_seconds=10, cost=0)
    assert full.allowed and full.remaining == 0 and full.reason == "allowed"
    assert limiter.get_usage("u", window_seconds=10, max_requests=2)["current"] == 2


class SlowAnswers(LocalCache):
    """A store whose answers take ``latency`` seconds on the limiter's monotonic clock to
    come back, as an answer does over the network (the script itself runs at once)."""

    def __init__(self, server_clock: Clock, local_clock: Clock, latency: float) -> None:
        super().__init__(clock=server_clock)
        self.local_clock = local_clock
        self.latency = latency

    def run_script(self, sha: str, keys: list[bytes], args: list[bytes]) -> Reply:
        reply = super().run_script(sha, keys, args)
        self.local_clock.now += self.latency
        return reply


def test_a_remembered_refusal_never_outlives_the_servers_reset(clock: Clock) -> None:
    local = Clock(1_795_000_020.0)
    local.now = 500.0
    store = SlowAnswers(clock, local, latency=0.5)
    limiter = RateLimiter(store, blocked=BlockedCache(clock=local))
    assert limiter.limit("u", limit=1, window_seconds=10).allowed
    sent = local.now
    refused = limiter.limit("u", limit=1, window_seconds=10)
    assert not refused.allowed and refused.retry_after == pytest.approx(10.0)
    # the server measured 10 s from when it ran the script, before the answer travelled
    local.now = sent + 10.0
    clock.now += 10.0
    again = limiter.limit("u", limit=1, window_seconds=10)
    assert again.allowed and again.reason == "allowed"


async def test_a_limiter_over_the_wrong_flavour_of_cache_is_refused() -> None:
    from continuum.cache import AsyncUpstashCache, UpstashCache

    with UpstashCache(mode="local") as sync_cache, pytest.raises(ValidationError) as caught:
        AsyncRateLimiter(sync_cache)
    assert str(caught.value) == "UpstashCache is sync: use RateLimiter with it"
    async_cache = AsyncUpstashCache(mode="local")
    try:
        with pytest.raises(ValidationError) as caught:
            RateLimiter(async_cache)
        assert str(caught.value) == "AsyncUpstashCache is async: use AsyncRateLimiter with it"
    finally:
        await async_cache.aclose()


async def test_the_seed_api_defaults_to_the_limiters_own_limit(
    store: LocalCache, clock: Clock
) -> None:
    limiter = RateLimiter(store, limit=2, blocked=BlockedCache(clock=clock))
    assert [limiter.check_rate_limit("u") for _ in range(3)] == [True, True, False]
    assert limiter.get_usage("u")["limit"] == 2
    twin = AsyncRateLimiter(store, limit=2, blocked=BlockedCache(clock=clock))
    assert [await twin.check_rate_limit("v") for _ in range(3)] == [True, True, False]
