"""The process-wide memory of refused identifiers: repeat offenders cost zero commands.

When the server refuses a request it also says, on its own clock, how long until a request
of that cost could fit (``retry_after``), assuming nothing else is admitted meanwhile;
admissions only push that moment later, so until then every request of at least that cost
is certainly refused. The entry stores that duration as a deadline on this process's
*monotonic* clock, counted from when the request was *sent*: the server measured
``retry_after`` at some instant between sending and the answer's arrival, so counting from
the send never outlives the server's own reset (counting from the arrival would refuse
for up to a round trip after the server would admit). Wall-clock skew between this
instance and the server plays no part: the only error is the request's own latency (the
entry may expire up to one round trip early, which costs one extra command, never an
extra admission). ``time.time`` is never consulted, so a wrong or jumping system clock
can neither extend a block nor cut it short.

Bounded (least recently used entries go first) and guarded by a lock for threaded
servers. Losing it is harmless: the next request simply asks the server. ``reset()``
clears this process's entry; another process's reset is seen here only once the entry
runs out, at most one retry-after later.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from continuum.ratelimit.result import RateLimitResult, Reason

__all__ = ["BlockedCache", "blocked_identifiers"]


class _Entry:
    __slots__ = ("cost", "deadline", "result")  # not a dataclass: see sansio.Pause

    def __init__(self, deadline: float, cost: int, result: RateLimitResult) -> None:
        self.deadline = deadline  # monotonic seconds
        self.cost = cost
        self.result = result


class BlockedCache:
    """An LRU of refused (key, limit) pairs until the server said they could retry."""

    def __init__(
        self, max_entries: int = 4096, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def now(self) -> float:
        """This cache's clock: read it just before sending the request ``remember`` records."""
        return self._clock()

    def remember(
        self, key: str, limit: int, cost: int, result: RateLimitResult, *, sent: float | None = None
    ) -> None:
        """Record a refusal the server answered to a request sent at ``sent`` (``now()``).

        Without ``sent`` the refusal is taken to have been measured just now.
        """
        if result.allowed or result.retry_after <= 0 or self._max <= 0:
            return
        start = self._clock() if sent is None else sent
        entry = _Entry(start + result.retry_after, cost, result)
        with self._lock:
            self._entries[(key, limit)] = entry
            self._entries.move_to_end((key, limit))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def answer(self, key: str, limit: int, cost: int) -> RateLimitResult | None:
        """The refusal for a request that is certainly still over the limit, else None."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get((key, limit))
            if entry is None:
                return None
            left = entry.deadline - now
            if left <= 0:
                del self._entries[(key, limit)]
                return None
            if cost < entry.cost:
                return None  # a cheaper request may fit: ask the server
            self._entries.move_to_end((key, limit))
        shift = entry.result.retry_after - left  # time passed since the server answered
        return entry.result._replace(
            reason=Reason.BLOCKED_CACHE.value,
            retry_after=left,
            reset=entry.result.reset,
            reset_after=max(0.0, entry.result.reset_after - shift),
        )

    def forget(self, key: str) -> None:
        """Drop every entry for ``key`` (after ``reset``)."""
        with self._lock:
            for stale in [k for k in self._entries if k[0] == key]:
                del self._entries[stale]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


blocked_identifiers = BlockedCache()
