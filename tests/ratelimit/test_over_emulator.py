"""The limiter over the Upstash emulator (fakeredis, then real redis-server), as users run it.

Every check here goes through ``UpstashCache.run_script`` over HTTP to the emulator, and
the scripts read the server's clock. Windows are an hour long so that no fixed-window
edge falls inside a test.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from continuum.cache import AsyncUpstashCache, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.errors import CacheUnavailable, ValidationError
from continuum.ratelimit import AsyncRateLimiter, BlockedCache, RateLimiter

ALGORITHMS = ["sliding_log", "sliding_window", "fixed_window", "token_bucket"]
HOUR = 3600


@pytest.fixture
def cache(emulator: EmulatorHandle) -> Iterator[UpstashCache]:
    with UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as client:
        yield client


@pytest.fixture
async def acache(emulator: EmulatorHandle) -> AsyncIterator[AsyncUpstashCache]:
    client = AsyncUpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    yield client
    await client.aclose()


def keys(cache: UpstashCache) -> list[bytes]:
    reply = cache.execute([("KEYS", "*")], write=False)[0]
    assert isinstance(reply, list)
    return sorted(k for k in reply if isinstance(k, bytes))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_admits_the_limit_then_refuses(
    cache: UpstashCache, emulator: EmulatorHandle, algorithm: str
) -> None:
    limiter = RateLimiter(cache, algorithm=algorithm, blocked=BlockedCache())
    results = [limiter.limit("user-1", limit=5, window_seconds=HOUR) for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0, 0]
    refused = results[-1]
    assert refused.reason == "limited"
    assert 0 < refused.retry_after <= 2 * HOUR
    headers = refused.headers()
    assert headers["RateLimit-Limit"] == "5" and headers["RateLimit-Remaining"] == "0"
    assert 0 < int(headers["Retry-After"]) <= 2 * HOUR
    # the key lives in the toolkit's own namespace and expires when the identifier goes idle
    (key,) = keys(cache)
    assert key == f"continuum:rl:{algorithm}:3600000:user-1".encode()
    ttl = cache.execute([("PTTL", key)], write=False)[0]
    assert isinstance(ttl, int) and 0 < ttl <= 2 * HOUR * 1000


def test_one_round_trip_per_check(cache: UpstashCache, emulator: EmulatorHandle) -> None:
    limiter = RateLimiter(cache, blocked=BlockedCache())
    limiter.limit("warm", limit=10)  # the first run may need EVAL after NOSCRIPT
    emulator.reset_billing()
    for _ in range(5):
        limiter.limit("u", limit=10)
    assert emulator.requests() == 5  # one EVALSHA each; what it bills: test_scripts.py


def test_repeat_offenders_cost_zero_commands(cache: UpstashCache, emulator: EmulatorHandle) -> None:
    limiter = RateLimiter(cache, blocked=BlockedCache())
    for _ in range(3):
        limiter.limit("abuser", limit=3, window_seconds=HOUR)
    first = limiter.limit("abuser", limit=3, window_seconds=HOUR)
    assert first.reason == "limited"
    emulator.reset_billing()
    answers = [limiter.limit("abuser", limit=3, window_seconds=HOUR) for _ in range(200)]
    assert emulator.billed() == 0 and emulator.requests() == 0
    assert all(not a.allowed and a.reason == "blocked_cache" for a in answers)
    assert answers[-1].retry_after <= first.retry_after
    headers = answers[-1].headers()
    assert sorted(headers) == ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                               "Retry-After"]  # fmt: skip
    assert (headers["RateLimit-Limit"], headers["RateLimit-Remaining"]) == ("3", "0")
    assert 1 <= int(headers["Retry-After"]) <= HOUR
    # other identifiers, and a different limit for the same one, still ask the server
    assert limiter.limit("someone-else", limit=3, window_seconds=HOUR).allowed
    assert limiter.limit("abuser", limit=10, window_seconds=HOUR).allowed
    assert emulator.requests() == 2
    # reset forgets the refusal here and on the server
    assert limiter.reset("abuser", window_seconds=HOUR)
    assert limiter.limit("abuser", limit=3, window_seconds=HOUR).allowed


def test_instances_sharing_a_database_share_the_budget(emulator: EmulatorHandle) -> None:
    with (
        UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as one,
        UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as two,
    ):
        first = RateLimiter(one, blocked=BlockedCache())
        second = RateLimiter(two, blocked=BlockedCache())
        verdicts = [(first if i % 2 else second).check_rate_limit("u", 60, 4) for i in range(6)]
    assert verdicts == [True] * 4 + [False] * 2


def test_seed_api(cache: UpstashCache) -> None:
    limiter = RateLimiter(cache, limit=7, blocked=BlockedCache())
    for _ in range(3):
        assert limiter.check_rate_limit("u", window_seconds=60, max_requests=7)
    usage = limiter.get_usage("u", window_seconds=60)
    assert (usage["current"], usage["limit"], usage["remaining"]) == (3, 7, 4)
    assert usage["reset"] > 0
    assert limiter.reset("u", window_seconds=60) is True
    assert limiter.get_usage("u", window_seconds=60)["current"] == 0


def test_weighted_cost(cache: UpstashCache) -> None:
    for algorithm in ALGORITHMS:
        limiter = RateLimiter(cache, algorithm=algorithm, blocked=BlockedCache())
        assert limiter.limit("w", limit=10, window_seconds=HOUR, cost=7).remaining == 3
        refused = limiter.limit("w", limit=10, window_seconds=HOUR, cost=4)
        assert not refused.allowed and refused.remaining == 3, algorithm
        assert limiter.limit("w", limit=10, window_seconds=HOUR, cost=3).allowed, algorithm


def test_identifiers_cannot_reach_each_other(cache: UpstashCache) -> None:
    limiter = RateLimiter(cache, blocked=BlockedCache())
    assert limiter.limit("a:b", limit=1).allowed
    assert not limiter.limit("a:b", limit=1).allowed
    hostile = ["a", ":b", "a%3Ab", "a*", "*", "?", "[ab]", "a\x00b", "\x00", "x" * 40_000]
    for identifier in hostile:
        assert limiter.limit(identifier, limit=1).allowed, identifier[:20]
    assert not limiter.limit("x" * 40_000, limit=1).allowed
    assert all(len(k) < 300 for k in keys(cache))


async def test_async_limiter_over_async_cache(
    acache: AsyncUpstashCache, emulator: EmulatorHandle
) -> None:
    limiter = AsyncRateLimiter(acache, algorithm="fixed_window", blocked=BlockedCache())
    results = [await limiter.limit("u", limit=2, window_seconds=HOUR) for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    emulator.reset_billing()
    again = await limiter.limit("u", limit=2, window_seconds=HOUR)
    assert again.reason == "blocked_cache" and emulator.requests() == 0
    assert (await limiter.get_usage("u", HOUR, 2))["current"] == 2
    assert await limiter.reset("u", HOUR)
    assert await limiter.check_rate_limit("u", HOUR, 2)


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here any more


def test_outage_fails_open_by_default_and_closed_on_request() -> None:
    with UpstashCache(rest_url=_dead_url(), rest_token="t" * 20, budget=1.0) as dead:
        open_result = RateLimiter(dead, blocked=BlockedCache()).limit("u", limit=3)
        assert open_result.allowed and open_result.reason == "unavailable"
        closed = RateLimiter(dead, fail_open=False, blocked=BlockedCache()).limit("u", limit=3)
        assert not closed.allowed and closed.reason == "unavailable"
        assert closed.headers()["Retry-After"] == "1"
        usage = RateLimiter(dead, blocked=BlockedCache()).get_usage("u")
        assert usage["reason"] == "unavailable"
        with pytest.raises(CacheUnavailable):  # a reset that did not happen is not hidden
            RateLimiter(dead, blocked=BlockedCache()).reset("u")


async def test_async_outage_policy() -> None:
    dead = AsyncUpstashCache(rest_url=_dead_url(), rest_token="t" * 20, budget=1.0)
    try:
        result = await AsyncRateLimiter(dead, fail_open=False, blocked=BlockedCache()).limit("u")
        assert not result.allowed and result.reason == "unavailable"
    finally:
        await dead.aclose()


class AnswerDroppingProxy:
    """Forwards each HTTP request to the emulator, waits until it answers, then hangs up.

    The command has run on the server but the client never hears back: the case where
    retrying a non-idempotent script would count the request twice.
    """

    def __init__(self, target: str) -> None:
        import threading

        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    body += conn.recv(65536)
                with socket.create_connection(self.target) as upstream:
                    upstream.sendall(head + b"\r\n\r\n" + body)
                    upstream.recv(65536)  # the server has answered: the script ran

    def close(self) -> None:
        self.listener.close()


def test_a_check_whose_answer_is_lost_is_not_retried(
    cache: UpstashCache, emulator: EmulatorHandle
) -> None:
    direct = RateLimiter(cache, blocked=BlockedCache())
    direct.limit("warm", limit=5)  # the script is now cached on the server: EVALSHA runs it
    proxy = AnswerDroppingProxy(emulator.url)
    try:
        with UpstashCache(rest_url=proxy.url, rest_token=emulator.token, max_retries=3) as lossy:
            emulator.reset_billing()
            result = RateLimiter(lossy, blocked=BlockedCache()).limit("u", limit=5)
            assert result.allowed and result.reason == "unavailable"  # fail-open
            assert emulator.requests() == 1  # sent once, never again
    finally:
        proxy.close()
    assert direct.get_usage("u", max_requests=5)["current"] == 1  # counted exactly once


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_meter_bills_what_the_server_bills(
    cache: UpstashCache, emulator: EmulatorHandle, algorithm: str
) -> None:
    """Upstash bills an EVAL as 1 plus each redis.call it makes; the meter (what
    ``continuum cost --from-stats`` reads) must agree with the server's own count, over
    admitted, refused, peeked and reset checks alike (repeat refusals from the blocked
    cache cost nothing on either side)."""
    limiter = RateLimiter(cache, algorithm=algorithm, blocked=BlockedCache())
    before = emulator.billed()
    with cache.request(deadline=30) as scope:
        for _ in range(4):  # a NOSCRIPT answer and the EVAL after it are billed too
            limiter.limit("meter-user", limit=2, window_seconds=HOUR, cost=1)
        limiter.get_usage("meter-user", window_seconds=HOUR, max_requests=2)
        limiter.reset("meter-user", window_seconds=HOUR)
        billed = scope.meter.billed
    assert emulator.billed() - before == billed
    assert billed > scope.meter.commands  # the scripts' inner calls are counted


async def test_the_async_meter_bills_what_the_server_bills(
    acache: AsyncUpstashCache, emulator: EmulatorHandle
) -> None:
    limiter = AsyncRateLimiter(acache, blocked=BlockedCache())
    async with acache.request(deadline=30) as scope:
        for _ in range(3):
            await limiter.limit("meter-user", limit=2, window_seconds=HOUR)
    assert emulator.billed() == scope.meter.billed > scope.meter.commands


class CommandsOnly:
    """A store that can run commands but knows nothing of scripts (no ``run_script``):
    the limiter sends EVALSHA itself, then EVAL on NOSCRIPT."""

    def __init__(self, cache: UpstashCache) -> None:
        self.execute = cache.execute
        self.is_local = cache.is_local
        self.meter = cache.meter


def test_a_store_with_only_execute_is_limited_the_same(
    cache: UpstashCache, emulator: EmulatorHandle
) -> None:
    limiter = RateLimiter(CommandsOnly(cache), blocked=BlockedCache())
    results = [limiter.limit("plain", limit=2, window_seconds=HOUR) for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert [r.reason for r in results] == ["allowed", "allowed", "limited"]
    assert cache.meter.billed == emulator.billed()  # its calls are billed too
    with pytest.raises(ValidationError) as caught:
        RateLimiter(object())
    assert str(caught.value) == "object can run neither scripts nor commands"
