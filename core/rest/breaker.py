"""Circuit breakers: stop paying for timeouts when Upstash is down, notice when it is back.

A serverless function pays for every millisecond it waits. Once a database has failed
``failure_threshold`` times in a row its breaker opens and callers go straight to their
fallback (nothing is sent). After ``probe_interval`` seconds the next caller is let through
as a probe (half-open): success closes the breaker, failure re-opens it for another
interval. A probe that never reports back (its function was frozen or killed mid-request)
does not wedge the breaker: once the probe is older than the interval, another caller
may probe.

There are no threads and no timers: every transition happens inside ``allow()`` or a
``record_*`` call, against an injectable clock. Breakers are process-wide, one per database
URL (``breaker_for``), because a warm container should remember that Upstash is down; they
hold no cache data and are harmless to lose.

    >>> breaker = CircuitBreaker(failure_threshold=1, probe_interval=30)
    >>> breaker.record_failure()
    >>> breaker.state, breaker.allow()
    (<CircuitState.OPEN: 'open'>, False)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["CircuitBreaker", "CircuitState", "breaker_for", "reset_breakers"]


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe at a time."""

    def __init__(
        self,
        *,
        failure_threshold: int = 2,
        probe_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if probe_interval < 0:
            raise ValueError("probe_interval must be >= 0 seconds")
        self.failure_threshold = failure_threshold
        self.probe_interval = probe_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        self._forced = False
        self._last_error: str | None = None
        self._counts = {"successes": 0, "failures": 0, "opened": 0, "probes": 0}
        self._rejected = 0  # apart: the open circuit's hot path counts it without a dict

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state.value!r}, failures={self._failures})"

    @property
    def state(self) -> CircuitState:
        return self._state

    def sheds(self) -> bool:
        """Whether the breaker is open with time to go: the caller should not send.

        The lock-free half of :meth:`allow` without its transitions, so a caller can skip
        building a request at all while the circuit is open. ``False`` means "ask
        :meth:`allow`" (closed, or a probe may be due), never "send without asking".
        """
        if (
            self._state is _OPEN
            and not self._forced
            and self._clock() - self._opened_at < self.probe_interval
        ):
            self._rejected += 1  # informational; a lost increment under a race is fine
            return True
        return False

    def allow(self) -> bool:
        """Whether to send a request now. While open, exactly one caller per interval probes."""
        # Lock-free answers for the two common cases: healthy, and open with time to go.
        # Every request asks, so these must cost next to nothing; transitions take the lock.
        state = self._state
        if state is CircuitState.CLOSED:
            return True
        if (
            state is _OPEN
            and not self._forced
            and self._clock() - self._opened_at < self.probe_interval
        ):
            self._rejected += 1  # informational; a lost increment under a race is fine
            return False
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            now = self._clock()
            if self._state is CircuitState.OPEN:
                due = self._forced or now - self._opened_at >= self.probe_interval
            else:  # half-open: a probe is out; a stale one lets another caller try
                started = self._probe_started
                due = started is None or now - started >= self.probe_interval
            if not due:
                self._rejected += 1
                return False
            self._state = CircuitState.HALF_OPEN
            self._probe_started = now
            self._forced = False
            self._counts["probes"] += 1
            return True

    def record_success(self) -> None:
        """The backend answered: whatever the state, it is healthy again."""
        with self._lock:
            self._counts["successes"] += 1
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._probe_started = None
            self._forced = False

    def record_failure(self, error: BaseException | None = None) -> None:
        """The backend did not answer (a ``CacheUnavailable``, not a command error)."""
        with self._lock:
            self._counts["failures"] += 1
            if error is not None:
                self._last_error = type(error).__name__
            if self._state is CircuitState.OPEN:
                return  # a straggler from before the breaker opened: don't extend the wait
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()
                self._probe_started = None
                self._counts["opened"] += 1

    def force_probe(self) -> None:
        """``reconnect()``: if the breaker is not closed, the next ``allow()`` probes."""
        with self._lock:
            if self._state is not CircuitState.CLOSED:
                self._state = CircuitState.OPEN
                self._forced = True
                self._probe_started = None

    def snapshot(self) -> dict[str, object]:
        """What ``info()`` shows: state, counters and how long until the next probe."""
        with self._lock:
            now = self._clock()
            next_probe: float | None = None
            if self._state is CircuitState.OPEN:
                next_probe = (
                    0.0 if self._forced else max(0.0, self.probe_interval - (now - self._opened_at))
                )
            return {
                "state": self._state.value,
                "consecutive_failures": self._failures,
                "failure_threshold": self.failure_threshold,
                "probe_interval": self.probe_interval,
                "next_probe_in": next_probe,
                "last_error": self._last_error,
                **self._counts,
                "rejected": self._rejected,
            }


_OPEN = CircuitState.OPEN

_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker_for(
    key: str,
    *,
    failure_threshold: int | None = None,
    probe_interval: float | None = None,
    clock: Callable[[], float] | None = None,
) -> CircuitBreaker:
    """The process-wide breaker for one database URL, created on first use.

    Settings given here apply to the breaker whether it is new or not, so a configuration
    (or a test) can tune the breaker that every client of that URL shares.
    """
    with _registry_lock:
        breaker = _registry.get(key)
        if breaker is None:
            breaker = CircuitBreaker(clock=clock or time.monotonic)
            _registry[key] = breaker
        elif clock is not None:
            breaker._clock = clock
        if failure_threshold is not None:
            if failure_threshold < 1:
                raise ValueError("failure_threshold must be at least 1")
            breaker.failure_threshold = failure_threshold
        if probe_interval is not None:
            if probe_interval < 0:
                raise ValueError("probe_interval must be >= 0 seconds")
            breaker.probe_interval = probe_interval
        return breaker


def reset_breakers() -> None:
    """Forget every breaker (tests, or a process that wants a clean slate)."""
    with _registry_lock:
        _registry.clear()
