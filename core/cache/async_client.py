"""``AsyncUpstashCache``: the same API awaited, with auto-pipelining.

The methods are the sync client's, written once in :mod:`continuum.cache.methods`; this
module only says how a call waits: it awaits, sends every batch that is not a
transaction through the database's :class:`~continuum.cache.autopipeline.AutoPipeline`
(commands issued in the same event-loop tick share one ``/pipeline`` request), and lets
concurrent reads of one key in one request scope share a single command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from continuum.cache.autopipeline import AutoPipeline
from continuum.cache.call import CallState
from continuum.cache.drive import Batch, Replies
from continuum.cache.layers import AsyncCacheLayer
from continuum.cache.methods import CacheMethods
from continuum.cache.pipeline import AsyncPipeline
from continuum.config import ConnectionMode, Database, UpstashConfig
from continuum.errors import CacheUnavailable, CommandError
from continuum.namespace import LayerSpec
from continuum.rest import AsyncRestExecutor, AsyncTransport, Reply
from continuum.sansio import Awaiting, Plan, arun

if TYPE_CHECKING:
    import asyncio

    from continuum.pubsub import AsyncPubSub

__all__ = ["AsyncUpstashCache"]

T = TypeVar("T")


class AsyncUpstashCache(
    CacheMethods[AsyncTransport, AutoPipeline, AsyncCacheLayer, AsyncPipeline, "AsyncPubSub"],
    Awaiting,
):
    """The asynchronous client; same methods as :class:`UpstashCache`, awaited.

    ``auto_pipeline=False`` sends each call's batches on their own.
    """

    _layer_type = AsyncCacheLayer
    _pipeline_type = AsyncPipeline

    def _subscriber_type(self) -> type[AsyncPubSub]:
        from continuum.pubsub import AsyncPubSub

        return AsyncPubSub

    # The parameters of CacheBase.__init__, plus auto_pipeline.
    def __init__(
        self, config: UpstashConfig | None = None, mode: str | ConnectionMode = "auto",
        fallback: bool | None = None, rest_url: str | None = None,
        rest_token: str | None = None, redis_url: str | None = None,
        use_msgpack: bool | None = None, *,
        transport_factory: Callable[[str], AsyncTransport] | None = None,
        auto_pipeline: bool = True, **options: Any,
    ) -> None:  # fmt: skip
        super().__init__(
            config, mode, fallback, rest_url, rest_token, redis_url, use_msgpack,
            transport_factory=transport_factory, **options,
        )  # fmt: skip
        self._auto_pipeline = auto_pipeline

    def _new_sender(self, database: Database, transport: AsyncTransport | None) -> AutoPipeline:
        return AutoPipeline(AsyncRestExecutor(database, self.config, transport=transport))

    @staticmethod
    def _sleep(seconds: float) -> Awaitable[None]:
        import asyncio  # only async code pays for importing asyncio

        return asyncio.sleep(seconds)

    async def _run(self, plan: Plan[LayerSpec, T]) -> T:
        call = self._call(plan.route)
        result = await arun(plan.op, call, call.pause)
        return result if plan.finish is None else plan.finish(result, call)

    async def _execute(self, batch: Batch, call: CallState) -> Replies:
        if self._local is not None:
            return self._local_execute(batch, call)
        memo_key = self._memo_lookup(batch, call)
        if memo_key is None or call.scope is None:
            return await self._send(batch, call, None)
        if memo_key in call.scope.memo:
            return [call.scope.memo[memo_key]]
        # Concurrent reads of one key in one scope (gather) share a single command.
        import asyncio

        flight = (id(call.scope), memo_key)
        pending = self._inflight.get(flight)
        if pending is not None:
            return [await asyncio.shield(pending)]
        future: asyncio.Future[Reply | CommandError] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            replies = await self._send(batch, call, memo_key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._inflight.pop(flight, None)
        future.set_result(replies[0])
        return replies

    async def _send(
        self, batch: Batch, call: CallState, memo_key: tuple[str, str] | None
    ) -> Replies:
        auto = self._sender(call.spec.database)
        executor = auto.executor
        if call.stays_local or executor.breaker.sheds():  # nothing will be sent
            return self._unsent(batch, call, memo_key, executor.circuit_open)
        try:
            replies = await auto.send(batch, call, pipelined=self._auto_pipeline)
        except CacheUnavailable as exc:
            replies = self._fallback(batch, call, exc)
        self._memo_update(batch, call, memo_key, replies)
        return replies

    async def aclose(self) -> None:
        for auto in self._forget_senders():
            await auto.executor.aclose()

    async def __aenter__(self) -> AsyncUpstashCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
