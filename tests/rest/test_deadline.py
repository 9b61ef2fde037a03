"""The deadline arithmetic, on a hand-turned clock: no attempt starts or waits past it.

A stand-in transport plays a server that never answers (each attempt uses all the time
it is given, on the test's clock) or one that refuses at once; what is under test is the
executor's arithmetic, so nothing here depends on how busy the machine is. The same
faults over real sockets are the fault suite's (``tests/resilience``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from continuum import UpstashCache, UpstashConfig
from continuum.errors import CacheTimeout, CacheUnavailable, ConnectionFailed
from continuum.namespace import LAYERS
from continuum.rest import (
    AsyncRestExecutor,
    CircuitBreaker,
    HttpRequest,
    HttpResponse,
    RestExecutor,
)
from continuum.scope import Deadline
from tests.tooling import ManualClock

ATTEMPT = 0.3
DEADLINE = 1.0


class Server:
    """Stands in for an Upstash that never answers (or refuses): every attempt is recorded
    with its start on the clock and the timeout it was given."""

    def __init__(self, clock: ManualClock, error: CacheUnavailable, *, hangs: bool) -> None:
        self.clock = clock
        self.error = error
        self.hangs = hangs
        self.attempts: list[tuple[float, float]] = []

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        self.attempts.append((self.clock(), timeout))
        if self.hangs:
            self.clock.advance(timeout)  # the attempt ran out its whole timeout
        raise self.error

    def close(self) -> None:
        pass


class AsyncServer(Server):
    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:  # type: ignore[override]
        return super().send(request, timeout)

    async def aclose(self) -> None:
        pass


def config(**options: Any) -> UpstashConfig:
    settings: dict[str, Any] = {
        "timeout": ATTEMPT, "max_retries": 10, "backoff_base": 0.02, "backoff_cap": 0.02,
    }  # fmt: skip
    settings.update(options)
    return UpstashConfig(rest_url="http://127.0.0.1:9", rest_token="t" * 20, **settings)


def executor(server: Server, pauses: list[tuple[float, float]], **options: Any) -> RestExecutor:
    def pause(seconds: float) -> None:
        pauses.append((server.clock(), seconds))
        server.clock.advance(seconds)

    cfg = config(**options)
    breaker = CircuitBreaker(failure_threshold=100, clock=server.clock)
    return RestExecutor(cfg.database(), cfg, transport=server, breaker=breaker, pause=pause)


def test_reads_against_a_silent_server_stop_exactly_at_the_deadline() -> None:
    clock = ManualClock()
    server = Server(clock, CacheTimeout("no answer in time"), hangs=True)
    pauses: list[tuple[float, float]] = []
    deadline = Deadline.after(DEADLINE, clock=clock)
    ends = clock() + DEADLINE
    with pytest.raises(CacheTimeout) as caught:
        executor(server, pauses).execute([("GET", "k")], write=False, deadline=deadline)
    assert caught.value is server.error
    # 0.3 + 0.3 + 0.3 + what is left; the pauses between (at most 0.02 s each) fit before
    assert len(server.attempts) == 4
    for start, timeout in server.attempts:
        assert start < ends  # no attempt starts after the deadline
        assert timeout == min(ATTEMPT, ends - start)  # nor runs past it
    assert all(0 <= seconds < ends - at for at, seconds in pauses)  # nor waits past it
    assert clock() == pytest.approx(ends, abs=1e-9)  # the last attempt got what was left


def test_a_write_that_may_have_reached_the_server_is_never_sent_again() -> None:
    clock = ManualClock()
    server = Server(clock, CacheTimeout("no answer in time"), hangs=True)
    pauses: list[tuple[float, float]] = []
    started = clock()
    with pytest.raises(CacheTimeout):
        executor(server, pauses).execute(
            [("INCR", "hits")], write=True, deadline=Deadline.after(DEADLINE, clock=clock)
        )
    assert server.attempts == [(started, ATTEMPT)] and pauses == []


def test_a_refused_connection_is_retried_for_writes_until_the_retries_are_spent() -> None:
    clock = ManualClock()
    server = Server(clock, ConnectionFailed("refused"), hangs=False)
    pauses: list[tuple[float, float]] = []
    with pytest.raises(ConnectionFailed):
        executor(server, pauses, max_retries=3).execute(
            [("INCR", "hits")], write=True, deadline=Deadline.after(DEADLINE, clock=clock)
        )
    assert len(server.attempts) == 4 and len(pauses) == 3  # the request never left
    assert all(0 <= seconds <= 0.02 for _, seconds in pauses)


def test_a_backoff_longer_than_the_time_left_is_not_slept() -> None:
    for _ in range(50):  # the jitter is random: every draw must respect the deadline
        clock = ManualClock()
        server = Server(clock, ConnectionFailed("refused"), hangs=False)
        pauses: list[tuple[float, float]] = []
        ends = clock() + 0.1
        with pytest.raises(ConnectionFailed):
            executor(server, pauses, backoff_base=0.5, backoff_cap=0.5).execute(
                [("GET", "k")], write=False, deadline=Deadline.after(0.1, clock=clock)
            )
        assert all(seconds < ends - at for at, seconds in pauses)
        assert clock() < ends


def test_a_deadline_already_passed_sends_nothing() -> None:
    clock = ManualClock()
    server = Server(clock, CacheTimeout("unused"), hangs=True)
    deadline = Deadline.after(0.0, clock=clock)
    with pytest.raises(CacheTimeout) as caught:
        executor(server, []).execute([("GET", "k")], write=False, deadline=deadline)
    assert str(caught.value) == "the deadline passed before the request could be sent"
    assert server.attempts == []


def test_the_async_executor_keeps_the_same_arithmetic() -> None:
    clock = ManualClock()
    server = AsyncServer(clock, CacheTimeout("no answer in time"), hangs=True)

    async def pause(seconds: float) -> None:
        clock.advance(seconds)

    async def main() -> None:
        cfg = config()
        breaker = CircuitBreaker(failure_threshold=100, clock=clock)
        sender = AsyncRestExecutor(
            cfg.database(), cfg, transport=server, breaker=breaker, pause=pause
        )
        with pytest.raises(CacheTimeout):
            await sender.execute(
                [("GET", "k")], write=False, deadline=Deadline.after(DEADLINE, clock=clock)
            )

    ends = clock() + DEADLINE
    asyncio.run(main())
    assert len(server.attempts) == 4
    assert all(timeout == min(ATTEMPT, ends - start) for start, timeout in server.attempts)
    assert clock() == pytest.approx(ends, abs=1e-9)


def test_a_best_effort_layer_falls_back_and_a_strict_one_raises_within_the_deadline() -> None:
    clock = ManualClock()
    server = Server(clock, CacheTimeout("no answer in time"), hangs=True)
    cache = UpstashCache(
        rest_url="http://127.0.0.1:9", rest_token="t" * 20, timeout=ATTEMPT, max_retries=0,
        failure_threshold=100, transport_factory=lambda url: server,
    )  # fmt: skip
    ends = clock() + DEADLINE
    with cache.request(deadline=Deadline.after(DEADLINE, clock=clock)):
        written = cache.layer("sessions").set("s", {"u": 1})
        assert written.degraded and cache.layer("sessions").get("s") == {"u": 1}
        with pytest.raises(CacheTimeout):
            cache.layer("federation").set("job", 1)
    assert LAYERS["federation"].strict
    assert [timeout for _, timeout in server.attempts] == [ATTEMPT, ATTEMPT, ATTEMPT]
    assert clock() <= ends
