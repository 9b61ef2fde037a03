"""An outage over real sockets, with the DEFAULT settings: the fault proxy plays an Upstash
that hangs, one whose port drops every SYN (black-holed) and one that answers 503 slowly.

What the caller receives is compared whole (status, body, ``X-Cache-Backend``, the
fail-open limit headers, the fallback's answers). That the calls did not wait out the
fault is shown by mechanisms, never by a stopwatch: every attempt carried the request's
one deadline (the API's default share) and at most the default attempt timeout; a hung
server still holds every request the client gave up on; a black-holed connect ended in
the connect timeout; and once the circuit is open, nothing reaches the proxy at all. The
arithmetic of those defaults is ``test_outage_defaults.py``'s, on a hand-turned clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from continuum import AsyncUpstashCache, UpstashCache, UpstashConfig
from continuum.app import Api, ApiSettings, Request, Response
from continuum.cache.scoped import ScopeContext
from continuum.errors import CacheUnavailable
from continuum.rest import AsyncHttpxTransport, HttpRequest, HttpResponse, HttpxTransport
from continuum.rest.breaker import CircuitState, breaker_for, reset_breakers
from continuum.scope import Deadline, current_scope
from tests.cache.conftest import upstream
from tests.tooling import ManualClock

from .fault_proxy import Fault, FaultProxy

__all__ = ["upstream"]

KEY = "outage-socket-key-77c1"
DEFAULTS = UpstashConfig()
# What the defaults promise (README, "Timing"): an attempt and an API request's share.
ATTEMPT = 0.5
REQUEST_SHARE = 1.0
PUT_BODY = {"value": [1, 2, 3]}
DEGRADED_PUT = {"layer": "query", "key": "k", "stored": True, "degraded": True}
NOT_FOUND = {"error": {"code": "not_found", "message": "no value for key 'k' in layer 'query'"}}
FAULTS = ["hang", "blackhole", "slow_5xx"]
HELD = 30.0  # a slow 503 that comes only when released is a hang by another name: 0.3 s


@dataclass
class Sent:
    """One attempt as the transport saw it: its timeout, its request's deadline, and how
    it ended (the answer's status, or the error the transport raised)."""

    timeout: float
    deadline: Deadline | None
    outcome: str = ""


class Recorder:
    """What the recording transports share: each attempt, and the error it ended in."""

    sends: list[Sent]

    def _record(self, timeout: float) -> Sent:
        scope = current_scope()
        sent = Sent(timeout, scope.deadline if scope is not None else None)
        self.sends.append(sent)
        return sent


class RecordingTransport(HttpxTransport, Recorder):
    """The real httpx transport, as the executor builds it by default, recording attempts."""

    def __init__(self, url: str) -> None:
        super().__init__(url, connect_timeout=DEFAULTS.connect_timeout)
        self.sends = []

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        sent = self._record(timeout)
        try:
            response = super().send(request, timeout)
        except CacheUnavailable as exc:
            sent.outcome = f"{type(exc).__name__}: {exc}"
            raise
        sent.outcome = f"HTTP {response.status}"
        return response


class AsyncRecordingTransport(AsyncHttpxTransport, Recorder):
    def __init__(self, url: str) -> None:
        super().__init__(url, connect_timeout=DEFAULTS.connect_timeout)
        self.sends = []

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        sent = self._record(timeout)
        try:
            response = await super().send(request, timeout)
        except CacheUnavailable as exc:
            sent.outcome = f"{type(exc).__name__}: {exc}"
            raise
        sent.outcome = f"HTTP {response.status}"
        return response


class Scopes:
    """Remembers each request scope a client opened and the deadline it was asked for."""

    asked: list[object]
    opened: list[ScopeContext]

    def request(self, *, deadline: Any = None, remaining_ms: float | None = None) -> ScopeContext:
        self.asked.append(deadline)
        context: ScopeContext = super().request(  # type: ignore[misc]
            deadline=deadline, remaining_ms=remaining_ms
        )
        self.opened.append(context)
        return context


class SyncClient(Scopes, UpstashCache):
    pass


class AsyncClient(Scopes, AsyncUpstashCache):
    pass


@pytest.fixture
def proxy(upstream: Any) -> Iterator[FaultProxy]:
    reset_breakers()  # a port may be reused across tests: start from a closed circuit
    with FaultProxy.for_url(upstream.url) as running:
        yield running
    reset_breakers()


def inject(proxy: FaultProxy, fault: str) -> None:
    if fault == "hang":
        proxy.set_fault(Fault.HANG)
    elif fault == "blackhole":
        proxy.set_fault(Fault.BLACKHOLE)
    else:
        proxy.set_fault(Fault.STATUS, status=503, body=b"<html>503</html>", delay=0.3)


def outcomes(proxy: FaultProxy, fault: str) -> set[str]:
    """What each attempt may end in, as the transport reports it (whole texts)."""
    where = f"the Upstash REST endpoint {proxy.url}"
    # httpx's read timeout, or the bound on the whole attempt (asyncio.timeout), first
    timed_out = {
        f"CacheTimeout: {where} did not answer in time",
        f"CacheTimeout: {where} was too slow",
    }
    if fault == "hang":
        return timed_out
    if fault == "blackhole":
        return {f"ConnectionFailed: could not connect to {where}: ConnectTimeout"}
    # the 503 page; or, on a machine so busy that 0.3 s became 0.5, the attempt's timeout
    return {"HTTP 503", *timed_out}


def client(flavour: str, proxy: FaultProxy, token: str) -> tuple[Any, Recorder]:
    """A client with the default settings over a recording transport."""
    if flavour == "sync":
        transport: Recorder = RecordingTransport(proxy.url)
        cache: Any = SyncClient(
            rest_url=proxy.url, rest_token=token, transport_factory=lambda url: transport
        )
    else:
        transport = AsyncRecordingTransport(proxy.url)
        cache = AsyncClient(
            rest_url=proxy.url, rest_token=token, transport_factory=lambda url: transport
        )
    cache.asked, cache.opened = [], []
    return cache, transport


def api_over(flavour: str, proxy: FaultProxy, token: str) -> tuple[Api, Any, Recorder, Any]:
    """The API over a recording client, and the client's breaker, whose clock stands
    still: no probe comes due while the test looks."""
    cache, transport = client(flavour, proxy, token)
    clients = {"cache": cache} if flavour == "sync" else {"async_cache": cache}
    api = Api(ApiSettings(api_keys=(KEY,)), sink=lambda line: None, **clients)
    breaker = breaker_for(cache.config.database().breaker_key, clock=ManualClock())
    return api, cache, transport, breaker


def call(api: Api, flavour: str, method: str, body: object = None) -> Response:
    request = Request.build(
        method,
        "/v1/cache/query/k",
        headers={"authorization": f"Bearer {KEY}"},
        body=b"" if body is None else json.dumps(body).encode(),
    )
    if flavour == "sync":
        return api.handle(request)
    return asyncio.run(api.handle_async(request))


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("fault", FAULTS)
def test_the_first_api_requests_fall_back_without_waiting_out_the_fault(
    proxy: FaultProxy, upstream: Any, fault: str, flavour: str
) -> None:
    api, cache, transport, breaker = api_over(flavour, proxy, upstream.token)
    inject(proxy, fault)
    per_request: list[list[Sent]] = []
    while breaker.state is not CircuitState.OPEN:
        assert len(per_request) < 2, "a dead Upstash must open the circuit within two requests"
        first = len(transport.sends)
        reply = call(api, flavour, "PUT", PUT_BODY)
        assert (reply.status, reply.json()) == (200, DEGRADED_PUT)
        assert reply.headers["x-cache-backend"] == "local"
        assert reply.headers["ratelimit-limit"] == "100"  # the limit check failed open
        per_request.append(transport.sends[first:])
    # One deadline per request, the API's default share, and every attempt of the
    # request (its limit check and its write, however many round trips they take)
    # drew on that same deadline object.
    assert cache.asked == [REQUEST_SHARE] * len(per_request)
    for sends, context in zip(per_request, cache.opened, strict=True):
        assert sends and all(sent.deadline is context.scope.deadline for sent in sends)
    sends = transport.sends
    assert all(sent.timeout <= ATTEMPT for sent in sends)
    assert {sent.outcome for sent in sends} <= outcomes(proxy, fault)
    if fault == "hang":
        assert proxy.wait_holding(len(sends))  # the server still holds every one of them
    if fault == "blackhole":
        assert proxy.connections == 0  # no connect ever completed


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("fault", FAULTS)
def test_once_the_circuit_is_open_nothing_reaches_upstash(
    proxy: FaultProxy, upstream: Any, fault: str, flavour: str
) -> None:
    api, _, transport, breaker = api_over(flavour, proxy, upstream.token)
    inject(proxy, fault)
    while breaker.state is not CircuitState.OPEN:
        call(api, flavour, "PUT", PUT_BODY)
    seen = (proxy.connections, proxy.requests, len(transport.sends))
    put = call(api, flavour, "PUT", PUT_BODY)
    got = call(api, flavour, "GET")
    assert (put.status, put.json(), put.headers["x-cache-backend"]) == (200, DEGRADED_PUT, "local")
    assert (got.status, got.json(), got.headers["x-cache-backend"]) == (404, NOT_FOUND, "local")
    assert (proxy.connections, proxy.requests, len(transport.sends)) == seen


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bare_get_gives_up_on_its_own_and_answers_from_the_fallback(
    proxy: FaultProxy, upstream: Any, fault: str
) -> None:
    cache, transport = client("sync", proxy, upstream.token)
    inject(proxy, fault)
    assert cache.get("k") is None
    assert cache.meter.fallback_ops == 1 and cache.asked == []  # no scope was opened
    sends = transport.sends
    assert sends and all(sent.deadline is None for sent in sends)
    assert all(sent.timeout <= ATTEMPT for sent in sends)
    assert {sent.outcome for sent in sends} <= outcomes(proxy, fault)
    if fault == "hang":
        assert proxy.wait_holding(len(sends))


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_write_whose_attempt_expired_while_connecting_was_never_sent(
    proxy: FaultProxy, upstream: Any, flavour: str
) -> None:
    # The request has less time left than the connect timeout, so the attempt's own bound
    # stops the connect: it must still say the request never left, or the INCR would be
    # reported as one that may have run (OutcomeUnknown) instead of counted locally.
    left = DEFAULTS.connect_timeout * 0.8
    cache, transport = client(flavour, proxy, upstream.token)
    proxy.set_fault(Fault.BLACKHOLE)

    async def incr_async() -> Any:
        async with cache.request(deadline=left):
            return await cache.increment("hits")

    if flavour == "sync":
        with cache.request(deadline=left):
            counted = cache.increment("hits")
    else:
        counted = asyncio.run(incr_async())
    assert counted == 1  # the request's own count, from its fallback store
    assert [sent.outcome for sent in transport.sends] == [*outcomes(proxy, "blackhole")]
