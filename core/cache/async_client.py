"""``AsyncUpstashCache``: the same API awaited, with auto-pipelining.

In async code, commands issued in the same event-loop tick (``asyncio.gather`` of a
session read, a rate-limit check and a query read) share one ``/pipeline`` request, as
``@upstash/redis`` does; each caller awaits its own result or error. Everything else
(configuration, scopes, fallback, layers, operations) is shared with :mod:`continuum.cache.client`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from continuum.cache.base import (
    SCAN_COUNT,
    STRICT,
    CacheBase,
    CallState,
    WriteResult,
    fell_back,
    script_op,
)
from continuum.cache.drive import Batch, Operation, Replies, adrive
from continuum.cache.layers import AsyncCacheLayer
from continuum.cache.operations import escape_glob
from continuum.cache.pipeline import AsyncPipeline
from continuum.cache.spec import DEFAULT_LAYER, LayerSpec, layer_spec
from continuum.config import ConnectionMode, UpstashConfig
from continuum.errors import (
    CacheError,
    CacheTimeout,
    CacheUnavailable,
    CommandError,
    ServerError,
    ValidationError,
)
from continuum.rest.executor import AsyncRestExecutor
from continuum.rest.protocol import Command, Reply, Script
from continuum.rest.transport import AsyncTransport

if TYPE_CHECKING:
    import asyncio

    from continuum.pubsub import AsyncPubSub

__all__ = ["AsyncUpstashCache"]


class _AutoPipeline:
    """Commands issued in the same event-loop tick share one ``/pipeline`` request.

    Each caller awaits its own slice of the replies (or the request's error). Callers of
    different request scopes are never mixed: each scope has its own queue.
    """

    def __init__(self, executor: AsyncRestExecutor) -> None:
        self._executor = executor
        self._queues: dict[int, list[tuple[Batch, asyncio.Future[Replies]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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
            replies = await self._executor.execute(
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
                self._executor.protocol.plan(batch.commands)
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


class AsyncUpstashCache(CacheBase):
    """The asynchronous client; same methods as :class:`UpstashCache`, awaited."""

    def __init__(
        self,
        config: UpstashConfig | None = None,
        mode: str | ConnectionMode = "auto",
        fallback: bool | None = None,
        rest_url: str | None = None,
        rest_token: str | None = None,
        redis_url: str | None = None,
        use_msgpack: bool | None = None,
        *,
        transport_factory: Callable[[str], AsyncTransport] | None = None,
        auto_pipeline: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            config, mode, fallback, rest_url, rest_token, redis_url, use_msgpack, **options
        )
        self._transport_factory = transport_factory
        self._auto_pipeline = auto_pipeline
        self._executors: dict[str, tuple[AsyncRestExecutor, _AutoPipeline]] = {}
        self._inflight: dict[tuple[int, tuple[str, str]], asyncio.Future[Reply | CommandError]] = {}

    def _executor(self, database: str) -> tuple[AsyncRestExecutor, _AutoPipeline]:
        entry = self._executors.get(database)
        if entry is None:
            db = self.config.database(database)
            for other in self._executors.values():
                if other[0].database.url == db.url and other[0].database.token == db.token:
                    entry = other
                    break
            else:
                transport = self._transport_factory(db.url) if self._transport_factory else None
                executor = AsyncRestExecutor(db, self.config, transport=transport)
                entry = (executor, _AutoPipeline(executor))
            self._executors[database] = entry
        return entry

    async def _execute(self, batch: Batch, spec: LayerSpec, call: CallState) -> Replies:
        if self._local is not None:
            return self._local_execute(batch, call)
        memo_key = self._memo_lookup(batch, spec, call)
        if memo_key is None or call.scope is None:
            return await self._send(batch, spec, call, None)
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
            replies = await self._send(batch, spec, call, memo_key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._inflight.pop(flight, None)
        future.set_result(replies[0])
        return replies

    async def _send(
        self, batch: Batch, spec: LayerSpec, call: CallState, memo_key: tuple[str, str] | None
    ) -> Replies:
        executor, auto = self._executor(spec.database)
        stays = call.stays_local
        if stays or executor.breaker.sheds():  # nothing will be sent: encode nothing
            reason = fell_back if stays else executor.circuit_open
            replies = self._fallback(batch, spec, call, reason)
            if batch.write:  # a read the scope's store answered needs no copy in the memo
                self._memo_update(batch, spec, call, memo_key, replies)
            return replies
        try:
            if self._auto_pipeline and not batch.transaction:
                replies = await auto.submit(batch, call)
            else:
                replies = await executor.execute(
                    batch.commands, write=batch.write, transaction=batch.transaction,
                    deadline=call.deadline, meter=call.meter,
                )  # fmt: skip
        except CacheUnavailable as exc:
            replies = self._fallback(batch, spec, call, exc)
        self._memo_update(batch, spec, call, memo_key, replies)
        return replies

    async def _run(self, op: Operation[Any], spec: LayerSpec, call: CallState | None = None) -> Any:
        call = call or self._call()

        async def pause(seconds: float) -> None:
            if call.deadline.remaining() <= seconds:
                raise CacheTimeout("the deadline leaves no time to wait")
            import asyncio

            await asyncio.sleep(seconds)

        async def execute(batch: Batch) -> Replies:
            return await self._execute(batch, spec, call)

        return await adrive(op, execute, pause)

    # -- internal forms used by layers -------------------------------------------------

    async def _get(self, key: str, spec: LayerSpec) -> Any:
        call = self._call()
        value = await self._run(self._ops.get(key), spec, call)
        self._count_read(spec, value is not None, call)
        return value

    async def _set(
        self, key: str, value: object, ttl: float | None, spec: LayerSpec
    ) -> WriteResult:
        call = self._call()
        ok = await self._run(self._ops.set(key, value, ttl), spec, call)
        return self._write_result(ok, call)

    async def _delete(self, keys: tuple[str, ...], spec: LayerSpec) -> int:
        return int(await self._run(self._ops.delete(keys), spec))

    async def _exists(self, keys: tuple[str, ...], spec: LayerSpec) -> int:
        return int(await self._run(self._ops.exists(keys), spec))

    async def _expire(self, key: str, ttl: float, spec: LayerSpec) -> bool:
        return bool(await self._run(self._ops.expire(key, ttl), spec))

    async def _ttl(self, key: str, spec: LayerSpec) -> int:
        return int(await self._run(self._ops.ttl(key), spec))

    async def _increment(self, key: str, amount: int | float, spec: LayerSpec) -> int | float:
        result: int | float = await self._run(self._ops.increment(key, amount), spec)
        return result

    async def _delete_pattern(self, pattern: str, allow_all: bool, spec: LayerSpec) -> int:
        op = self._ops.delete_pattern(pattern, allow_all=allow_all, count=SCAN_COUNT)
        return int(await self._run(op, spec))

    async def _get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None, spec: LayerSpec
    ) -> Any:
        op = self._ops.get_or_set(
            key, self._atimed(key, compute), ttl,
            expected_compute=self._expected_compute(key),
            lock_timeout=min(10.0, max(1.0, self.config.budget)),
        )  # fmt: skip
        return await self._run(op, spec)

    def _atimed(self, key: str, compute: Callable[[], Any]) -> Callable[[], Any]:
        async def run() -> Any:
            started = time.perf_counter()
            try:
                result = compute()
                import inspect

                if inspect.isawaitable(result):
                    result = await result
                return result
            finally:
                self._observe_compute(key, time.perf_counter() - started)

        return run

    # -- the public API ------------------------------------------------------------------

    async def get(self, key: str) -> Any:
        return await self._get(key, DEFAULT_LAYER)

    async def set(
        self, key: str, value: object, ttl: float | None = 300, *, ex: float | None = None
    ) -> WriteResult:
        return await self._set(key, value, ex if ex is not None else ttl, DEFAULT_LAYER)

    async def delete(self, *keys: str) -> int:
        return await self._delete(keys, DEFAULT_LAYER)

    async def delete_pattern(self, pattern: str, *, allow_all: bool = False) -> int:
        return await self._delete_pattern(pattern, allow_all, DEFAULT_LAYER)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValidationError("an empty prefix would delete every key; use flush()")
        return await self._delete_pattern(escape_glob(prefix) + "*", False, DEFAULT_LAYER)

    async def exists(self, key: str) -> bool:
        return await self._exists((key,), DEFAULT_LAYER) > 0

    async def expire(self, key: str, ttl: float) -> bool:
        return await self._expire(key, ttl, DEFAULT_LAYER)

    async def ttl(self, key: str) -> int:
        return await self._ttl(key, DEFAULT_LAYER)

    async def increment(self, key: str, amount: int | float = 1) -> int | float:
        return await self._increment(key, amount, DEFAULT_LAYER)

    async def get_or_set(
        self, key: str, compute: Callable[[], Any], ttl: float | None = 300
    ) -> Any:
        return await self._get_or_set(key, compute, ttl, DEFAULT_LAYER)

    def pipeline(self, *, transaction: bool = False) -> AsyncPipeline:
        return AsyncPipeline(self, transaction=transaction)

    async def publish(self, channel: str, message: object) -> int:
        return int(await self._run(self._ops.publish(channel, message), DEFAULT_LAYER))

    def pubsub(self) -> AsyncPubSub:
        """A :class:`continuum.pubsub.AsyncPubSub` subscriber over REST server-sent events."""
        from continuum.pubsub import AsyncPubSub

        url, token = self._pubsub_target()
        return AsyncPubSub(url, token, timeout=self.config.timeout)

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[str | bytes | int],
        *, fallback: bool = False,
    ) -> Reply:  # fmt: skip
        spec = DEFAULT_LAYER if fallback else STRICT
        return await self._run(script_op(script, keys, args), spec)  # type: ignore[no-any-return]

    async def execute(
        self, commands: Sequence[Command], *, write: bool = True, transaction: bool = False
    ) -> Replies:
        batch = Batch(list(commands), write=write, transaction=transaction, touches=None)
        return await self._execute(batch, DEFAULT_LAYER, self._call())

    async def ping(self) -> bool:
        try:
            return bool(await self._run(self._ops.ping(), STRICT))
        except CacheError:
            return False

    async def info(self) -> dict[str, Any]:
        try:
            keys: int | None = int(await self._run(self._ops.dbsize(), STRICT))
        except CacheError:
            keys = None
        return self._info(keys)

    async def flush(self, *, confirm: bool = False) -> bool:
        if not confirm:
            raise ValidationError("flush() deletes every key; call flush(confirm=True)")
        return bool(await self._run(self._ops.flush(), STRICT))

    async def reconnect(self) -> bool:
        if self._local is not None:
            return False
        self._force_probes()
        return await self.ping()

    async def _connect(self) -> bool:
        """:meth:`reconnect` under the name the seed's troubleshooting guide uses."""
        return await self.reconnect()

    def layer(self, name: str) -> AsyncCacheLayer:
        return AsyncCacheLayer(self, layer_spec(name))

    async def aclose(self) -> None:
        for executor, _ in {id(e[0]): e for e in self._executors.values()}.values():
            await executor.aclose()
        self._executors.clear()

    async def __aenter__(self) -> AsyncUpstashCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
