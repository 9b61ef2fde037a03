"""When the executor retries, and how long it waits (no I/O: the policy on its own)."""

from __future__ import annotations

import pytest

from continuum.errors import (
    AuthenticationFailed,
    CacheTimeout,
    CircuitOpen,
    ConnectionFailed,
    QuotaExceeded,
    ServerError,
)
from continuum.rest.executor import RetryPolicy

POLICY = RetryPolicy(max_retries=3, base=0.1, cap=0.25)


def test_a_request_that_never_left_is_retried_even_for_writes() -> None:
    for write in (False, True):
        assert POLICY.delay(ConnectionFailed("x"), 0, write=write, left=10) is not None


@pytest.mark.parametrize("error", [CacheTimeout("x"), ServerError("x", status=502)])
def test_reads_are_retried_after_timeouts_and_5xx_writes_never(error: Exception) -> None:
    assert POLICY.delay(error, 0, write=False, left=10) is not None  # type: ignore[arg-type]
    assert POLICY.delay(error, 0, write=True, left=10) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [AuthenticationFailed("x"), QuotaExceeded("x"), CircuitOpen("x")])
def test_hopeless_failures_are_not_retried(error: Exception) -> None:
    assert POLICY.delay(error, 0, write=False, left=10) is None  # type: ignore[arg-type]


def test_full_jitter_stays_under_the_exponential_bound_and_the_cap() -> None:
    for attempt, bound in ((0, 0.1), (1, 0.2), (2, 0.25)):
        waits = [
            POLICY.delay(ConnectionFailed("x"), attempt, write=False, left=10) for _ in range(200)
        ]
        assert all(w is not None and 0 <= w <= bound for w in waits)
        assert len({round(w or 0, 6) for w in waits}) > 50  # jittered, not fixed


def test_gives_up_after_max_retries_and_never_sleeps_past_the_deadline() -> None:
    assert POLICY.delay(ConnectionFailed("x"), 3, write=False, left=10) is None
    waits = [POLICY.delay(ConnectionFailed("x"), 2, write=False, left=0.05) for _ in range(200)]
    assert all(w is None or w < 0.05 for w in waits)
    assert POLICY.delay(ConnectionFailed("x"), 0, write=False, left=0.0) is None
