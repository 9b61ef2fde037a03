"""Pipelines: many commands in one round trip, and every item's result (none lost).

    with cache.pipeline() as pipe:          # executes on a clean exit
        for memory_id, data in memories.items():
            pipe.set(f"memory:{memory_id}", data, ex=1800)
    print(pipe.results)

``execute()`` returns one entry per queued command, in order: the decoded value, or the
exception instance for an item that failed (a ``CommandError`` from the server, a
``DecodeError`` for a value that could not be decoded). One failing item never hides the
others. ``transaction=True`` sends the batch as ``/multi-exec``.

After ``execute()``, ``degraded`` says whether Upstash did not answer and the request's
fallback store did, as ``WriteResult.degraded`` does for one ``set``: the pipeline's
writes are then held only for the rest of the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, Self

from continuum.cache.drive import Batch, Operation
from continuum.cache.methods import Layered
from continuum.cache.operations import Operations, check_key, ttl_args
from continuum.errors import CacheError, CommandError, ValidationError
from continuum.namespace import DEFAULT_LAYER
from continuum.rest import Command, Reply
from continuum.sansio import Awaiting, Blocking, Plan, twin

__all__ = ["AsyncPipeline", "Pipeline", "PipelineHost", "PipelineQueue"]


class PipelineHost(Protocol):
    """What a pipeline needs of its client: the codec-bound operations, and a runner for a
    plan (its result for a sync client, an awaitable of it for an async one)."""

    @property
    def _ops(self) -> Operations: ...
    def _run(self, plan: Layered[Any]) -> Any: ...


_Decoder = Callable[[Reply], Any]


def _identity(reply: Reply) -> Any:
    return reply


def _ok(reply: Reply) -> bool:
    return reply in ("OK", b"OK")


def _int(reply: Reply) -> int:
    return int(reply) if isinstance(reply, int | bytes | str) else 0


def _bool(reply: Reply) -> bool:
    return _int(reply) > 0


class PipelineQueue:
    """The commands queued so far and how to decode each reply; ``execute`` sends them."""

    def __init__(self, cache: PipelineHost, *, transaction: bool = False) -> None:
        self._cache = cache
        self.transaction = transaction
        self._commands: list[Command] = []
        self._decoders: list[_Decoder] = []
        self._touches: list[str] = []
        self._write = False
        self.results: list[Any] | None = None
        self.degraded = False

    def __len__(self) -> int:
        return len(self._commands)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(queued={len(self._commands)})"

    def _add(self, command: Command, decoder: _Decoder, *, write: bool, key: str | None) -> Self:
        self._commands.append(command)
        self._decoders.append(decoder)
        self._write = self._write or write
        if write and key is not None:
            self._touches.append(key)
        return self

    def set(
        self, key: str, value: object, ttl: float | None = 300, *, ex: float | None = None
    ) -> Self:
        command = self._cache._ops.set_command(key, value, ex if ex is not None else ttl)
        return self._add(command, _ok, write=True, key=key)

    def get(self, key: str) -> Self:
        return self._add(("GET", check_key(key)), self._cache._ops.decode, write=False, key=None)

    def delete(self, *keys: str) -> Self:
        checked = [check_key(k) for k in keys]
        self._touches.extend(checked)
        return self._add(("DEL", *checked), _int, write=True, key=None)

    def exists(self, key: str) -> Self:
        return self._add(("EXISTS", check_key(key)), _bool, write=False, key=None)

    def expire(self, key: str, ttl: float) -> Self:
        args = ttl_args(ttl)
        name = "EXPIRE" if args[0] == "EX" else "PEXPIRE"
        return self._add((name, check_key(key), args[1]), _bool, write=True, key=key)

    def ttl(self, key: str) -> Self:
        return self._add(("TTL", check_key(key)), _int, write=False, key=None)

    def increment(self, key: str, amount: int = 1) -> Self:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValidationError("pipeline increment takes an integer amount")
        return self._add(("INCRBY", check_key(key), amount), _int, write=True, key=key)

    def publish(self, channel: str, message: str) -> Self:
        return self._add(("PUBLISH", check_key(channel), message), _int, write=True, key=None)

    def command(self, *args: str | bytes | int | float, write: bool = True) -> Self:
        """Any other command; its raw ``Reply`` is returned."""
        return self._add(args, _identity, write=write, key=None)

    @twin
    def execute(self) -> Layered[list[Any]]:
        """Send everything queued in one round trip; one result per command, in order."""
        return Plan(self._operation(), DEFAULT_LAYER, self._reset)

    def _run(self, plan: Layered[list[Any]]) -> Any:
        return self._cache._run(plan)

    def _operation(self) -> Operation[list[Any]]:
        if not self._commands:
            return []
        batch = Batch(
            list(self._commands), write=self._write, transaction=self.transaction,
            touches=list(self._touches),
        )  # fmt: skip
        replies = yield batch
        results: list[Any] = []
        for reply, decode in zip(replies, self._decoders, strict=True):
            if isinstance(reply, CommandError):
                results.append(reply)
                continue
            try:
                results.append(decode(reply))
            except CacheError as exc:
                results.append(exc)
        return results

    def _reset(self, results: list[Any], call: object) -> list[Any]:
        self.results = results
        self.degraded = bool(getattr(call, "degraded", False))
        self._commands, self._decoders, self._touches, self._write = [], [], [], False
        return results


class Pipeline(PipelineQueue, Blocking):
    """A synchronous pipeline (from :meth:`UpstashCache.pipeline`)."""

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None and self._commands:
            self.execute()


class AsyncPipeline(PipelineQueue, Awaiting):
    """An asynchronous pipeline (from :meth:`AsyncUpstashCache.pipeline`); awaited."""

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None and self._commands:
            await self.execute()
