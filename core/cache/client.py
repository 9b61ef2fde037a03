"""``UpstashCache``: the seed's API over Upstash REST, blocking.

    cache = UpstashCache()                      # REST from the environment, else local
    cache.set("user:123", {"name": "Alice"}, ttl=3600)
    with cache.request(remaining_ms=ctx.get_remaining_time_in_millis()):
        user = cache.get("user:123")            # memoised for the rest of the request

Every method is written once (:mod:`continuum.cache.methods`, over the operations of
:mod:`continuum.cache.operations`) and runs here on one of three stores: Upstash over
REST, the request scope's :class:`~continuum.local.store.LocalCache` when Upstash cannot
answer (best-effort layers only; strict layers raise), or, in local mode, one
``LocalCache`` owned by this instance. A call outside ``cache.request(...)`` is its own
scope. Network and server failures never escape a best-effort call: they become a
fallback, visible as ``WriteResult.degraded`` and in the meter. This module only says
how a call waits: it blocks.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

from continuum.cache.call import CallState, fell_back
from continuum.cache.drive import Batch, Replies
from continuum.cache.layers import CacheLayer
from continuum.cache.methods import CacheMethods
from continuum.cache.pipeline import Pipeline
from continuum.config import Database
from continuum.errors import CacheUnavailable
from continuum.namespace import LayerSpec
from continuum.rest import RestExecutor, Transport
from continuum.sansio import Blocking, Plan, run
from continuum.scope import Deadline, current_scope

if TYPE_CHECKING:
    from continuum.pubsub import PubSub

__all__ = ["UpstashCache"]

T = TypeVar("T")


class UpstashCache(CacheMethods[Transport, RestExecutor, CacheLayer, Pipeline, "PubSub"], Blocking):
    """The synchronous client (see the module docstring)."""

    _layer_type = CacheLayer
    _pipeline_type = Pipeline

    def _subscriber_type(self) -> type[PubSub]:
        from continuum.pubsub import PubSub

        return PubSub

    def _new_sender(self, database: Database, transport: Transport | None) -> RestExecutor:
        return RestExecutor(database, self.config, transport=transport)

    @staticmethod
    def _sleep(seconds: float) -> None:
        time.sleep(seconds)

    def _run(self, plan: Plan[LayerSpec, T]) -> T:
        scope = current_scope()  # CacheBase._call, inline: every call starts here
        if scope is not None:
            call: CallState = _Call(self, scope, scope.deadline, scope.meter, plan.route)
        else:
            call = _Call(self, None, Deadline.after(self.config.budget), self._meter, plan.route)
        result = run(plan.op, call, call.pause)
        finish = plan.finish
        return result if finish is None else finish(result, call)

    def _execute(self, batch: Batch, call: CallState) -> Replies:
        return _Call.__call__(call, batch)  # type: ignore[arg-type]  # any call of this client

    def prepare(self) -> None:
        """Build each database's executor and HTTP connection pool now, sending nothing:
        for a function's init phase, so its first request (or a Lambda SnapStart
        snapshot) finds them ready. Without it they are built on first use."""
        if self._local is not None:
            return
        for name in self.config.databases:
            opener = getattr(self._sender(name).transport, "open", None)
            if opener is not None:
                opener()

    def close(self) -> None:
        for executor in self._forget_senders():
            executor.close()

    def __enter__(self) -> UpstashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Call(CallState):
    """A call of :class:`UpstashCache`, which carries each of its batches out itself: the
    driver hands a batch straight to it, one frame less per batch than asking the client
    (the open circuit's fallback is mostly such frames)."""

    __slots__ = ()
    client: UpstashCache

    def __call__(self, batch: Batch) -> Replies:
        client = self.client
        if client._local is not None:
            return client._local_execute(batch, self)
        scope = self.scope
        memo_key = None
        if scope is not None and scope.memo:  # only a memo holding something can answer
            memo_key = client._memo_lookup(batch, self)
            if memo_key is not None and memo_key in scope.memo:
                return [scope.memo[memo_key]]
        database = self.spec.database
        executor = client._senders.get(database) or client._sender(database)
        if self.degraded or executor.breaker.sheds():  # nothing is sent (_unsent, inline)
            reason = fell_back if self.degraded else executor.circuit_open
            replies = client._fallback(batch, self, reason)
            if batch.write:  # a read the scope's store answered needs no copy in the memo
                client._memo_update(batch, self, None, replies)  # a write has no memo key
            return replies
        if memo_key is None:  # the answer may fill an empty memo
            memo_key = client._memo_lookup(batch, self)
        try:
            replies = executor.execute(
                batch.commands, write=batch.write, transaction=batch.transaction,
                deadline=self.deadline, meter=self.meter,
            )  # fmt: skip
        except CacheUnavailable as exc:
            replies = client._fallback(batch, self, exc)
        client._memo_update(batch, self, memo_key, replies)
        return replies
