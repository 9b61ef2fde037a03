"""The DEFAULT settings against an outage, on a hand-turned clock: what an API request and
a bare call may spend, when the circuit opens, and that an open circuit costs no wait.

A stand-in transport plays Upstash failing in one of three ways, each attempt taking on
the test's clock the time the real failure takes: ``hang`` (accepts, never answers: the
whole attempt, then a timeout), ``blackhole`` (connects never complete: the connect
timeout, then ``ConnectionFailed``) and ``slow_5xx`` (a 503 page after 0.3 s). Everything
else (the API, the limiter, the cache, the executor, the breaker) is the real code with
its defaults, and every deadline, retry pause and the breaker run on the hand-turned clock:
what is asserted is arithmetic, independent of how busy the machine is. The same outages
over real sockets, through the fault proxy, are in ``test_outage.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from continuum import AsyncUpstashCache, UpstashCache, UpstashConfig
from continuum.app import Api, ApiSettings, Request, Response
from continuum.cache.autopipeline import AutoPipeline
from continuum.config import CacheBackend, Database
from continuum.errors import CacheTimeout, ConnectionFailed, OutcomeUnknown
from continuum.rest import AsyncRestExecutor, HttpRequest, HttpResponse, RestExecutor
from continuum.rest.breaker import CircuitBreaker, CircuitState, breaker_for, reset_breakers
from continuum.scope import Deadline
from tests.tooling import ManualClock

URL = "http://127.0.0.1:9"
TOKEN = "outage-token-0123456789"
KEY = "outage-api-key-5e2a"
DEFAULTS = UpstashConfig()
API_DEFAULTS = ApiSettings()
BOUND = 1.5  # seconds: the most an API request or a bare call may cost in an outage
SLOW_5XX = 0.3  # seconds before the 503 page comes
KINDS = ["hang", "blackhole", "slow_5xx"]
PUT_BODY = {"value": [1, 2, 3]}
DEGRADED_PUT = {"layer": "query", "key": "k", "stored": True, "degraded": True}
NOT_FOUND = {"error": {"code": "not_found", "message": "no value for key 'k' in layer 'query'"}}


class Outage:
    """Upstash failing as ``kind`` says, or answering ``replies`` (one per attempt, None
    meaning a hang) when given; each attempt is recorded as ``(start, timeout)``."""

    def __init__(self, clock: ManualClock, kind: str, replies: list[bytes | None] | None = None):
        self.clock = clock
        self.kind = kind
        self.replies = replies
        self.attempts: list[tuple[float, float]] = []

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        self.attempts.append((self.clock(), timeout))
        kind = self.kind
        if self.replies is not None:
            reply = self.replies.pop(0)
            if reply is not None:
                return HttpResponse(200, {}, reply)
            kind = "hang"
        if kind == "blackhole":
            self.clock.advance(min(DEFAULTS.connect_timeout, timeout))
            raise ConnectionFailed("could not connect: ConnectTimeout")
        if kind == "slow_5xx" and timeout > SLOW_5XX:
            self.clock.advance(SLOW_5XX)
            return HttpResponse(503, {"content-type": "text/html"}, b"<html>503</html>")
        self.clock.advance(timeout)
        raise CacheTimeout("did not answer in time")

    def close(self) -> None:
        pass


class AsyncOutage(Outage):
    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:  # type: ignore[override]
        return super().send(request, timeout)

    async def aclose(self) -> None:
        pass


class ClockedCache(UpstashCache):
    """The sync client, its retry pauses passing on the test's clock (the executor takes a
    pause function; the client has no setting for it, so this hook is private)."""

    clock: ManualClock

    def _new_sender(self, database: Database, transport: Any) -> RestExecutor:
        return RestExecutor(database, self.config, transport=transport, pause=self.clock.advance)


class ClockedAsyncCache(AsyncUpstashCache):
    clock: ManualClock

    def _new_sender(self, database: Database, transport: Any) -> AutoPipeline:
        async def pause(seconds: float) -> None:
            self.clock.advance(seconds)

        executor = AsyncRestExecutor(database, self.config, transport=transport, pause=pause)
        return AutoPipeline(executor)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManualClock]:
    """Every deadline (the API's, a scope's, a bare call's) and the breaker on one clock."""
    clock = ManualClock()
    after = Deadline.after.__func__  # type: ignore[attr-defined]

    def on_clock(cls: type[Deadline], seconds: float, **_: object) -> Deadline:
        return after(cls, seconds, clock=clock)  # type: ignore[no-any-return]

    monkeypatch.setattr(Deadline, "after", classmethod(on_clock))
    reset_breakers()
    yield clock
    reset_breakers()


def breaker(clock: ManualClock) -> CircuitBreaker:
    key = UpstashConfig(rest_url=URL, rest_token=TOKEN).database().breaker_key
    return breaker_for(key, clock=clock)


def cache_on(clock: ManualClock, outage: Outage, flavour: str = "sync") -> Any:
    """A client with the default settings whose only stand-in is the transport."""
    cls = ClockedCache if flavour == "sync" else ClockedAsyncCache
    cache = cls(rest_url=URL, rest_token=TOKEN, transport_factory=lambda url: outage)
    cache.clock = clock
    breaker(clock)
    return cache


def api_on(clock: ManualClock, outage: Outage, flavour: str) -> Api:
    cache = cache_on(clock, outage, flavour)
    clients = {"cache": cache} if flavour == "sync" else {"async_cache": cache}
    return Api(ApiSettings(api_keys=(KEY,)), sink=lambda line: None, **clients)


def outage_for(clock: ManualClock, kind: str, flavour: str) -> Outage:
    return (Outage if flavour == "sync" else AsyncOutage)(clock, kind)


def call(
    api: Api, flavour: str, method: str, body: object = None, remaining: float | None = None
) -> Response:
    request = Request.build(
        method,
        "/v1/cache/query/k",
        headers={"authorization": f"Bearer {KEY}"},
        body=b"" if body is None else json.dumps(body).encode(),
        remaining=remaining,
    )
    if flavour == "sync":
        return api.handle(request)
    return asyncio.run(api.handle_async(request))


def spent(clock: ManualClock, action: Callable[[], Any]) -> tuple[Any, float]:
    """What ``action`` returned, and how much of the hand-turned clock it used."""
    started = clock()
    result = action()
    return result, clock() - started


def test_the_defaults_are_the_ones_the_readme_explains() -> None:
    assert (DEFAULTS.connect_timeout, DEFAULTS.timeout, DEFAULTS.budget) == (0.25, 0.5, 1.0)
    assert (DEFAULTS.max_retries, DEFAULTS.failure_threshold, DEFAULTS.probe_interval) == (
        2,
        2,
        10.0,
    )
    assert API_DEFAULTS.timeout == 1.0


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_first_api_requests_wait_at_most_the_request_deadline(
    clock: ManualClock, kind: str, flavour: str
) -> None:
    outage = outage_for(clock, kind, flavour)
    api = api_on(clock, outage, flavour)
    requests = 0
    while breaker(clock).state is not CircuitState.OPEN:
        requests += 1
        assert requests <= 2, "a dead Upstash must open the circuit within two requests"
        first = len(outage.attempts)
        started = clock()
        reply, used = spent(clock, lambda: call(api, flavour, "PUT", PUT_BODY))
        assert (reply.status, reply.json()) == (200, DEGRADED_PUT)
        assert reply.headers["x-cache-backend"] == "local"
        assert reply.headers["ratelimit-limit"] == "100"  # the limit check failed open
        # The limit check and the write drew on one deadline: together, at most 1 s.
        assert used <= API_DEFAULTS.timeout + 1e-9 <= BOUND
        attempts = outage.attempts[first:]
        assert attempts  # Upstash was tried (in one round trip or two)
        for start, timeout in attempts:
            assert timeout <= DEFAULTS.timeout
            assert start + timeout <= started + API_DEFAULTS.timeout + 1e-9


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_once_the_circuit_is_open_a_request_sends_nothing_and_waits_for_nothing(
    clock: ManualClock, kind: str, flavour: str
) -> None:
    outage = outage_for(clock, kind, flavour)
    api = api_on(clock, outage, flavour)
    while breaker(clock).state is not CircuitState.OPEN:
        call(api, flavour, "PUT", PUT_BODY)
    sent = len(outage.attempts)
    put, put_spent = spent(clock, lambda: call(api, flavour, "PUT", PUT_BODY))
    got, got_spent = spent(clock, lambda: call(api, flavour, "GET"))
    assert (put.status, put.json(), put.headers["x-cache-backend"]) == (200, DEGRADED_PUT, "local")
    # the fallback lives as long as its request: the value written above is not served
    assert (got.status, got.json(), got.headers["x-cache-backend"]) == (404, NOT_FOUND, "local")
    assert len(outage.attempts) == sent and put_spent == got_spent == 0.0


@pytest.mark.parametrize(
    ("remaining", "deadline"), [(None, 1.0), (29.75, 1.0), (0.3, 0.3)], ids=str
)
def test_the_request_deadline_is_the_apis_share_and_the_platform_can_only_shorten_it(
    clock: ManualClock, remaining: float | None, deadline: float
) -> None:
    outage = Outage(clock, "hang")
    api = api_on(clock, outage, "sync")
    started = clock()
    reply, used = spent(clock, lambda: call(api, "sync", "PUT", PUT_BODY, remaining=remaining))
    assert (reply.status, reply.json()) == (200, DEGRADED_PUT)
    # The key's limit check and the write travel as one gated write, sent once (a write
    # that may have arrived is not repeated): one attempt, cut to the request's deadline.
    attempt = min(deadline, DEFAULTS.timeout)
    assert used == pytest.approx(attempt)
    assert outage.attempts == [(started, pytest.approx(attempt))]
    assert breaker(clock).snapshot()["consecutive_failures"] == 1
    assert breaker(clock).state is CircuitState.CLOSED


@pytest.mark.parametrize("kind", KINDS)
def test_a_bare_get_outside_a_scope_gives_up_within_the_budget(
    clock: ManualClock, kind: str
) -> None:
    outage = Outage(clock, kind)
    cache = cache_on(clock, outage)
    started = clock()
    value, used = spent(clock, lambda: cache.get("k"))
    assert value is None and cache.meter.fallback_ops == 1
    assert used <= DEFAULTS.budget + 1e-9 <= BOUND
    assert len(outage.attempts) >= 2  # a read is retried while time remains
    for start, timeout in outage.attempts:
        assert timeout <= DEFAULTS.timeout
        assert start + timeout <= started + DEFAULTS.budget + 1e-9


def test_bare_writes_keep_their_contract_within_one_attempt(clock: ManualClock) -> None:
    outage = Outage(clock, "hang")
    cache = cache_on(clock, outage)
    written, used = spent(clock, lambda: cache.set("k", 1))
    assert (written.ok, written.backend, written.degraded) == (True, CacheBackend.LOCAL, True)
    assert used == DEFAULTS.timeout <= BOUND  # a write that may have arrived is sent once
    with pytest.raises(OutcomeUnknown) as caught:
        cache.increment("hits")
    assert str(caught.value) == (
        "the outcome of INCRBY is unknown: it may have run on Upstash, but did not answer in time"
    )
    assert [timeout for _, timeout in outage.attempts] == [DEFAULTS.timeout, DEFAULTS.timeout]


def test_one_slow_reply_on_a_healthy_database_does_not_open_the_circuit(
    clock: ManualClock,
) -> None:
    # Each call: the first attempt hangs, then Upstash answers. Then a call whose every
    # attempt hangs, then a healthy one: a failure in between is forgiven.
    ok = b'{"result":null}'
    outage = Outage(clock, "hang", replies=[None, ok, None, ok, None, None, ok])
    cache = cache_on(clock, outage)
    assert cache.get("a") is None and cache.get("b") is None
    assert breaker(clock).snapshot()["consecutive_failures"] == 0
    assert cache.get("c") is None and cache.meter.fallback_ops == 1  # every attempt hung
    assert breaker(clock).state is CircuitState.CLOSED
    assert cache.get("d") is None and cache.meter.fallback_ops == 1  # Upstash answered
    assert breaker(clock).snapshot()["consecutive_failures"] == 0
    assert outage.replies == []


def test_a_dead_database_opens_the_circuit_on_the_second_failed_call(clock: ManualClock) -> None:
    outage = Outage(clock, "hang")
    cache = cache_on(clock, outage)
    cache.get("a")
    assert breaker(clock).state is CircuitState.CLOSED
    cache.get("b")
    assert breaker(clock).state is CircuitState.OPEN
    sent = len(outage.attempts)
    value, used = spent(clock, lambda: cache.get("c"))
    assert (value, used, len(outage.attempts)) == (None, 0.0, sent)
    clock.advance(DEFAULTS.probe_interval)  # then one call probes
    cache.get("d")
    assert len(outage.attempts) > sent and breaker(clock).state is CircuitState.OPEN
