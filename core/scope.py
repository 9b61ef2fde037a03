"""What lives for one invocation only: deadline, fallback store, read memo and meter.

A serverless invocation has a hard time limit and a bill per millisecond, so each request
gets a ``RequestScope``: a ``Deadline`` every network call respects, its own ``LocalCache``
to fall back on when Upstash can't answer (created on first use, dropped with the scope,
so no cache data outlives the request or leaks into the next one), a memo so the same key
read twice costs one command, and a ``Meter`` whose figures end up in the response's
``Server-Timing`` header and in ``info()``.

The current scope travels in a ``contextvars.ContextVar``, so it follows ``await`` and
``asyncio`` tasks and never crosses threads or concurrent requests.

    >>> with RequestScope(budget=2.0) as scope:
    ...     current_scope() is scope
    True
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable

from continuum.errors import ValidationError
from continuum.local import LocalCache, Reply

__all__ = [
    "DEFAULT_BUDGET",
    "Deadline",
    "Meter",
    "RequestScope",
    "current_scope",
    "enter_scope",
    "exit_scope",
]

DEFAULT_BUDGET = 10.0
"""Seconds a scope may spend on the cache when nobody says otherwise."""


class Deadline:
    """A point on the monotonic clock after which no cache call may still be waiting."""

    __slots__ = ("_at", "_clock")

    def __init__(self, at: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._at = at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """``seconds`` from now (negative means already passed; ``math.inf``, never)."""
        return cls(clock() + max(0.0, _seconds(seconds, "a deadline")), clock=clock)

    @classmethod
    def never(cls) -> Deadline:
        """No limit (a long-running consumer); ``remaining()`` is infinite."""
        return cls(math.inf)

    @classmethod
    def from_remaining_ms(cls, remaining_ms: float, *, margin: float = 0.25) -> Deadline:
        """From a platform's time left (Lambda's ``get_remaining_time_in_millis()``),
        keeping ``margin`` seconds to answer the request once the cache gives up."""
        ms = _seconds(remaining_ms, "remaining_ms", unit="milliseconds")
        return cls.after(ms / 1000.0 - _seconds(margin, "margin"))

    def remaining(self) -> float:
        """Seconds left, never negative."""
        left = self._at - self._clock()
        return left if left > 0.0 else 0.0

    @property
    def expired(self) -> bool:
        return self._clock() >= self._at

    def cap(self, timeout: float) -> float:
        """A per-attempt timeout that never runs past the deadline."""
        return min(timeout, self.remaining())

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"


class Meter:
    """What one scope cost: the figures a serverless bill and a slow request are made of.

    ``billed`` is what Upstash bills: the commands sent plus each redis.call a script
    reported making. A plain class rather than a dataclass, which would cost about
    0.5 ms at import on every cold start; it compares and prints by :meth:`as_dict`.
    """

    __slots__ = (
        "billed",
        "bytes_received",
        "bytes_sent",
        "commands",
        "degraded_writes",
        "errors",
        "fallback_ops",
        "hits",
        "layer_hits",
        "layer_misses",
        "misses",
        "round_trips",
        "time_spent",
    )

    def __init__(self) -> None:
        self.round_trips = 0
        self.commands = 0
        self.billed = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.hits = 0
        self.misses = 0
        self.fallback_ops = 0
        self.degraded_writes = 0
        self.errors = 0
        self.time_spent = 0.0
        self.layer_hits: dict[str, int] = {}
        self.layer_misses: dict[str, int] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Meter):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.as_dict().items())
        return f"Meter({shown})"

    def add_round_trip(
        self, *, commands: int, sent: int = 0, received: int = 0, seconds: float = 0.0
    ) -> None:
        """One HTTP request to Upstash carrying ``commands`` commands."""
        self.round_trips += 1
        self.commands += commands
        self.billed += commands
        self.bytes_sent += sent
        self.bytes_received += received
        self.time_spent += seconds

    def add_script_calls(self, calls: int) -> None:
        """A script that ran on Upstash made ``calls`` redis.call()s, each billed."""
        self.billed += calls

    def hit(self, layer: str | None = None) -> None:
        self.hits += 1
        if layer is not None:
            self.layer_hits[layer] = self.layer_hits.get(layer, 0) + 1

    def miss(self, layer: str | None = None) -> None:
        self.misses += 1
        if layer is not None:
            self.layer_misses[layer] = self.layer_misses.get(layer, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {
            "round_trips": self.round_trips,
            "commands": self.commands,
            "billed_commands": self.billed,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "hits": self.hits,
            "misses": self.misses,
            "fallback_ops": self.fallback_ops,
            "degraded_writes": self.degraded_writes,
            "errors": self.errors,
            "time_spent_ms": round(self.time_spent * 1000.0, 3),
            "layer_hits": dict(self.layer_hits),
            "layer_misses": dict(self.layer_misses),
        }

    def server_timing(self) -> str:
        """The ``Server-Timing`` header value (RFC: ``name;dur=ms;desc="text"``, comma list).

        Browsers' devtools show it next to the request, so a slow page shows how much of
        it was the cache and how many round trips it took.
        """
        parts = [
            f"cache;dur={self.time_spent * 1000.0:.1f}",
            f'cache-rt;desc="{self.round_trips}"',
            f'cache-cmd;desc="{self.commands}"',
        ]
        if self.fallback_ops:
            parts.append(f'cache-fallback;desc="{self.fallback_ops}"')
        return ", ".join(parts)


class RequestScope:
    """One invocation's cache state. Use as a context manager or via ``enter_scope``.

    ``deadline``: a ``Deadline``, or seconds from now as ``cache.request()`` takes it;
    ``budget``: seconds from now (``DEFAULT_BUDGET`` when neither is given).
    """

    def __init__(
        self,
        *,
        deadline: Deadline | float | None = None,
        budget: float | None = None,
        max_local_keys: int | None = 10_000,
    ) -> None:
        if deadline is not None and budget is not None:
            raise ValidationError("give a deadline or a budget, not both")
        if isinstance(deadline, Deadline):
            self.deadline = deadline
        else:
            seconds = deadline if deadline is not None else budget
            self.deadline = Deadline.after(DEFAULT_BUDGET if seconds is None else seconds)
        self.memo: dict[tuple[str, str], Reply] = {}
        self.meter = Meter()
        self._max_local_keys = max_local_keys
        self._local: LocalCache | None = None
        self._tokens: list[contextvars.Token[RequestScope | None]] = []

    @property
    def local(self) -> LocalCache:
        """The fallback store, created on first use (most requests never need it)."""
        if self._local is None:
            self._local = LocalCache(max_keys=self._max_local_keys)
        return self._local

    @property
    def used_fallback(self) -> bool:
        return self.meter.fallback_ops > 0 or self.meter.degraded_writes > 0

    def __repr__(self) -> str:
        return (
            f"RequestScope(deadline={self.deadline!r}, round_trips={self.meter.round_trips}, "
            f"fallback_ops={self.meter.fallback_ops})"
        )

    def __enter__(self) -> RequestScope:
        self._tokens.append(enter_scope(self))
        return self

    def __exit__(self, *exc: object) -> None:
        exit_scope(self._tokens.pop())

    async def __aenter__(self) -> RequestScope:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


def _seconds(value: object, what: str, *, unit: str = "seconds") -> float:
    """A number (of seconds), or ValidationError naming ``what`` (never a TypeError later)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(f"{what} needs a number of {unit}, not {value!r}")
    return float(value)


_current: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "continuum_request_scope", default=None
)


def current_scope() -> RequestScope | None:
    """The scope of the running request, or None outside any."""
    return _current.get()


def enter_scope(scope: RequestScope) -> contextvars.Token[RequestScope | None]:
    return _current.set(scope)


def exit_scope(token: contextvars.Token[RequestScope | None]) -> None:
    _current.reset(token)
