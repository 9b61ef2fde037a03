"""Auto-pipelining: commands issued in the same event-loop tick share one request.

In async code, ``asyncio.gather`` of a session read, a rate-limit check and a query read
sends one ``/pipeline`` request, as ``@upstash/redis`` does; each caller awaits its own
slice of the replies (or the request's error). The async client sends every batch that
is not a transaction through its database's :class:`AutoPipeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from continuum.cache.call import CallState
from continuum.cache.drive import Batch, Replies
from continuum.errors import CacheTimeout, ServerError, ValidationError
from continuum.rest import AsyncRestExecutor

if TYPE_CHECKING:
    import asyncio

__all__ = ["AutoPipeline"]


class AutoPipeline:
    """Commands issued in the same event-loop tick share one ``/pipeline`` request.

    Each caller awaits its own slice of the replies (or the request's error). Callers of
    different request scopes are never mixed: each scope has its own queue.
    """

    def __init__(self, executor: AsyncRestExecutor) -> None:
        self.executor = executor
        self.breaker = executor.breaker  # what the cache asks before it builds a plan
        self._queues: dict[int, list[tuple[Batch, asyncio.Future[Replies]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, batch: Batch, call: CallState, *, pipelined: bool) -> Replies:
        """``batch``'s replies: from a shared ``/pipeline`` request when ``pipelined``
        (a transaction never is), else from a request of its own."""
        if pipelined and not batch.transaction:
            return await self.submit(batch, call)
        return await self.executor.execute(
            batch.commands, write=batch.write, transaction=batch.transaction,
            deadline=call.deadline, meter=call.meter,
        )  # fmt: skip

    async def submit(self, batch: Batch, call: CallState) -> Replies:
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Replies] = loop.create_future()
        key = id(call.scope) if call.scope is not None else 0
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = []
            loop.call_soon(self._flush, key, call)
        queue.append((batch, future))
        return await future

    def _flush(self, key: int, call: CallState) -> None:
        items = self._queues.pop(key, [])
        if items:
            import asyncio

            task = asyncio.get_running_loop().create_task(self._send(items, call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self, items: list[tuple[Batch, asyncio.Future[Replies]]], call: CallState
    ) -> None:
        commands = [command for batch, _ in items for command in batch.commands]
        try:
            replies = await self.executor.execute(
                commands, write=any(batch.write for batch, _ in items),
                deadline=call.deadline, meter=call.meter,
            )  # fmt: skip
        except ValidationError as exc:
            # Refused while planning, so nothing was sent: only the callers whose own
            # commands cannot be sent get the error; the others still go, together.
            sendable = self._sendable(items)
            if 0 < len(sendable) < len(items):
                await self._send(sendable, call)
            else:
                self._fail(items, exc)
            return
        except (CacheTimeout, ServerError) as exc:
            # The request carried a write, so it was not retried; the reads that shared it
            # may still be retried on their own (a write is never sent twice).
            reads = [item for item in items if not item[0].write]
            self._fail([item for item in items if item[0].write], exc)
            if reads and len(reads) < len(items):
                await self._send(reads, call)
            else:
                self._fail(reads, exc)
            return
        except BaseException as exc:
            self._fail(items, exc)
            if not isinstance(exc, Exception):
                raise  # cancelled: the callers were told, the task still stops
            return
        start = 0
        for batch, future in items:
            end = start + len(batch.commands)
            if not future.done():
                future.set_result(replies[start:end])
            start = end

    def _sendable(
        self, items: list[tuple[Batch, asyncio.Future[Replies]]]
    ) -> list[tuple[Batch, asyncio.Future[Replies]]]:
        """The items whose commands can be planned; the others get their own error."""
        sendable = []
        for batch, future in items:
            try:
                self.executor.protocol.plan(batch.commands)
            except ValidationError as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                sendable.append((batch, future))
        return sendable

    @staticmethod
    def _fail(items: list[tuple[Batch, asyncio.Future[Replies]]], exc: BaseException) -> None:
        import asyncio

        for _, future in items:
            if future.done():
                continue
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
