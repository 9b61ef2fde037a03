"""What a rate-limit check answers, and the HTTP headers that tell the client.

Times come from the server's clock (the script's ``TIME``), never this process's, so
instances with skewed clocks agree on them. ``reset`` is an absolute epoch time for
callers that want one; ``reset_after`` and ``retry_after`` are durations measured on the
server and are what the headers carry, so a skewed client clock cannot distort them.
"""

from __future__ import annotations

import math
from enum import StrEnum

from continuum.record import Record

__all__ = ["RateLimitResult", "Reason"]


class Reason(StrEnum):
    """Why a check was answered the way it was."""

    ALLOWED = "allowed"  # the server admitted the request
    LIMITED = "limited"  # the server refused it: over the limit
    BLOCKED_CACHE = "blocked_cache"  # refused from this process's memory, zero commands
    UNAVAILABLE = "unavailable"  # the backend could not answer; the outage policy decided


class RateLimitResult(Record):
    """The answer to one ``limit()`` call.

    ``allowed``: admit the request. ``limit``: the configured maximum. ``remaining``: units
    left after this request. ``reset``: epoch seconds (server clock) when the constraint
    lifts: the full quota is back when allowed, this request would fit when refused.
    ``retry_after``: seconds to wait before retrying (0 when allowed). ``reset_after``:
    seconds from now until ``reset``. ``reason``: a ``Reason`` value. Frozen (see
    :mod:`continuum.record`).
    """

    __slots__ = ("allowed", "limit", "reason", "remaining", "reset", "reset_after", "retry_after")
    __match_args__ = (
        "allowed", "limit", "remaining", "reset", "retry_after", "reason", "reset_after",
    )  # fmt: skip
    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after: float
    reason: str
    reset_after: float

    def __init__(
        self,
        allowed: bool,
        limit: int,
        remaining: int,
        reset: float,
        retry_after: float,
        reason: str,
        reset_after: float = 0.0,
    ) -> None:
        setter = object.__setattr__
        setter(self, "allowed", allowed)
        setter(self, "limit", limit)
        setter(self, "remaining", remaining)
        setter(self, "reset", reset)
        setter(self, "retry_after", retry_after)
        setter(self, "reason", reason)
        setter(self, "reset_after", reset_after)

    def __bool__(self) -> bool:
        return self.allowed

    def headers(self) -> dict[str, str]:
        """The standard response headers for this answer.

        ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (delta seconds,
        as the IETF RateLimit header fields draft specifies, not an epoch time), plus
        ``Retry-After`` (delta seconds) when the request is refused. Deltas are rounded up
        so a client that waits exactly that long is never refused for being early.
        """
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(_whole_seconds(self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, _whole_seconds(self.retry_after)))
        return headers


def _whole_seconds(seconds: float) -> int:
    if not math.isfinite(seconds) or seconds <= 0:
        return 0
    return math.ceil(seconds)
