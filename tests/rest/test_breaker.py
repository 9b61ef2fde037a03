"""The circuit breaker's state machine, driven by an injected clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from continuum.rest.breaker import CircuitBreaker, CircuitState, breaker_for, reset_breakers
from tests.tooling import ManualClock as Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, probe_interval=30, clock=clock)


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()


def test_one_probe_after_the_interval_then_success_closes(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()  # the probe
    assert breaker.state is CircuitState.HALF_OPEN
    assert not breaker.allow()  # everybody else keeps using the fallback
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()


def test_failed_probe_reopens_for_a_full_interval(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_probe_that_never_reports_does_not_wedge_the_breaker(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()  # this probe's function is frozen and never reports
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()  # a new probe
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_stragglers_do_not_extend_an_open_breaker(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 20
    breaker.record_failure()  # a request that started before the breaker opened
    clock.now += 10
    assert breaker.allow()


def test_force_probe_lets_the_next_caller_through(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    breaker.force_probe()
    assert breaker.snapshot()["next_probe_in"] == 0.0
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record_success()
    breaker.force_probe()  # closed: nothing to force
    assert breaker.state is CircuitState.CLOSED


def test_only_one_of_many_threads_gets_the_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def contend() -> None:
        barrier.wait()
        results.append(breaker.allow())

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_snapshot_reports_what_info_shows(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure(TimeoutError("secret-token-never-shown"))
    clock.now += 10
    snap = breaker.snapshot()
    assert snap["state"] == "open"
    assert snap["next_probe_in"] == pytest.approx(20)
    assert snap["opened"] == 1 and snap["failures"] == 3
    assert snap["last_error"] == "TimeoutError"
    assert "secret" not in repr(snap)


def test_registry_shares_one_breaker_per_url_and_applies_settings(clock: Clock) -> None:
    reset_breakers()
    a = breaker_for("https://one.upstash.io", probe_interval=0.5, clock=clock)
    assert breaker_for("https://one.upstash.io") is a
    assert breaker_for("https://two.upstash.io") is not a
    assert a.probe_interval == 0.5
    breaker_for("https://one.upstash.io", failure_threshold=1)
    a.record_failure()
    assert a.state is CircuitState.OPEN
    reset_breakers()
    assert breaker_for("https://one.upstash.io") is not a


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError) as caught:
        CircuitBreaker(failure_threshold=0)
    assert str(caught.value) == "failure_threshold must be at least 1"
    with pytest.raises(ValueError) as caught:
        CircuitBreaker(probe_interval=-1)
    assert str(caught.value) == "probe_interval must be >= 0 seconds"
