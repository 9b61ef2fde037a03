"""``cache.request(...)``: one invocation's scope, and the cache bound to it.

``with cache.request(deadline=...) as c`` (or ``async with``) opens a
:class:`~continuum.scope.RequestScope` and gives a :class:`ScopedCache`; when the block
ends, the scope's meter is added to the client's totals behind ``info()``.
"""

from __future__ import annotations

from typing import Any, Protocol

from continuum.local import LocalCache
from continuum.rest import Reply
from continuum.scope import Deadline, Meter, RequestScope, enter_scope, exit_scope

__all__ = ["ScopeContext", "ScopedCache"]


class Metered(Protocol):
    """A client, as far as its scopes are concerned: the totals they add to."""

    _meter: Meter


class ScopedCache:
    """What ``with cache.request(...) as c`` gives: the cache, bound to one scope.

    Every cache method works on it (``c.get``, ``c.layer``, ...); ``meter``, ``deadline``,
    ``memo`` and ``local`` are this scope's, and stay readable after the block ends.
    """

    def __init__(self, cache: Metered, scope: RequestScope) -> None:
        self._cache = cache
        self.scope = scope

    def __repr__(self) -> str:
        return f"ScopedCache({self._cache!r}, {self.scope!r})"

    @property
    def meter(self) -> Meter:
        return self.scope.meter

    @property
    def deadline(self) -> Deadline:
        return self.scope.deadline

    @property
    def memo(self) -> dict[tuple[str, str], Reply]:
        return self.scope.memo

    @property
    def local(self) -> LocalCache:
        return self.scope.local

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)


class ScopeContext:
    """``with cache.request(...)`` / ``async with``: one invocation's scope."""

    def __init__(self, cache: Metered, deadline: Deadline) -> None:
        self._cache = cache
        self._deadline = deadline
        self._token: Any = None
        self.scope: RequestScope | None = None

    def _open(self) -> ScopedCache:
        self.scope = RequestScope(deadline=self._deadline)
        self._token = enter_scope(self.scope)
        return ScopedCache(self._cache, self.scope)

    def _close(self) -> None:
        if self._token is not None:
            exit_scope(self._token)
            self._token = None
        if self.scope is not None:
            _merge(self._cache._meter, self.scope.meter)

    def __enter__(self) -> ScopedCache:
        return self._open()

    def __exit__(self, *exc: object) -> None:
        self._close()

    async def __aenter__(self) -> ScopedCache:
        return self._open()

    async def __aexit__(self, *exc: object) -> None:
        self._close()


def _merge(total: Meter, part: Meter) -> None:
    """Fold a finished scope's meter into the client's totals (for ``info()``)."""
    for name in (
        "round_trips", "commands", "billed", "bytes_sent", "bytes_received", "hits", "misses",
        "fallback_ops", "degraded_writes", "errors", "time_spent",
    ):  # fmt: skip
        setattr(total, name, getattr(total, name) + getattr(part, name))
    for mine, theirs in (
        (total.layer_hits, part.layer_hits),
        (total.layer_misses, part.layer_misses),
    ):
        for layer, count in theirs.items():
            mine[layer] = mine.get(layer, 0) + count
