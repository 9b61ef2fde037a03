"""What one call of a client carries: its layer, deadline and meter, where it ran.

A :class:`CallState` lives for one public call (``get``, ``set``, a pipeline's
``execute``...): every batch of the call's operation goes through it, so a call that
fell back stays on the fallback store, and ``WriteResult`` can say where a write went.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from continuum.config import CacheBackend
from continuum.errors import CacheTimeout, CacheUnavailable
from continuum.local import LocalCache
from continuum.record import Record

if TYPE_CHECKING:
    from continuum.cache.drive import Batch
    from continuum.namespace import LayerSpec
    from continuum.scope import Deadline, Meter, RequestScope

__all__ = ["CallState", "Runner", "WriteResult", "fell_back"]


class Runner(Protocol):
    """What a call needs of its client: run one batch of it, and sleep (each blocking,
    or returning an awaitable)."""

    def _execute(self, batch: Batch, call: CallState) -> Any: ...
    def _sleep(self, seconds: float) -> Any: ...


class WriteResult(Record):
    """The outcome of a write: truthy when stored; ``degraded`` when Upstash did not
    confirm it and the request's fallback store has it (Upstash may have it too: a write
    that timed out may still have run there). Frozen (see :mod:`continuum.record`)."""

    __slots__ = ("backend", "degraded", "ok")
    __match_args__ = ("ok", "backend", "degraded")
    ok: bool
    backend: CacheBackend
    degraded: bool

    def __init__(self, ok: bool, backend: CacheBackend, degraded: bool = False) -> None:
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "degraded", degraded)

    def __bool__(self) -> bool:
        return self.ok


class CallState:
    """Per-call state: its layer, where its batches ran, and the fallback store if one was
    needed. It also carries the call's steps out for the driver: a batch goes to the
    client's ``_execute``, a pause to its ``_sleep`` (blocking, or awaitable)."""

    __slots__ = ("backend", "client", "deadline", "degraded", "local", "meter", "scope", "spec")

    def __init__(
        self,
        client: Runner,
        scope: RequestScope | None,
        deadline: Deadline,
        meter: Meter,
        spec: LayerSpec,
    ) -> None:
        self.client = client
        self.scope = scope
        self.deadline = deadline
        self.meter = meter
        self.spec = spec
        self.backend = _UPSTASH
        self.degraded = False
        self.local: LocalCache | None = None

    @property
    def stays_local(self) -> bool:
        """This call already fell back: its next batches go to the same store, unsent."""
        return self.degraded

    def __call__(self, batch: Batch) -> Any:
        return self.client._execute(batch, self)

    def pause(self, seconds: float) -> Any:
        """Sleep ``seconds`` (an operation's pause), unless the deadline comes first."""
        if self.deadline.remaining() <= seconds:
            raise CacheTimeout("the deadline leaves no time to wait")
        return self.client._sleep(seconds)

    def fallback_store(self) -> LocalCache:
        if self.scope is not None:
            return self.scope.local
        if self.local is None:
            self.local = LocalCache()
        return self.local


_UPSTASH = CacheBackend.UPSTASH  # an enum member read from its class costs a lookup each time


def fell_back() -> CacheUnavailable:
    """What a call that already fell back meets for its next batches (they are not sent)."""
    return CacheUnavailable("an earlier batch of this call fell back; it stays local")
