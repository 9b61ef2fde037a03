"""Executing a batch of commands over REST: deadlines, safe retries, the breaker, metering.

``RestExecutor.execute(commands, write=..., transaction=...)`` is the REST side of the one
method everything above the transport uses (``LocalCache.execute`` is the other). It:

- plans the batch into requests (:mod:`continuum.rest.protocol`) and sends them in order;
- gives each attempt ``min(config.timeout, time left)`` and never starts or sleeps past
  the overall deadline (the request scope's, or ``config.budget`` outside a scope);
- retries with exponential backoff and full jitter only when it cannot run a command
  twice: any batch when the request never left (:class:`ConnectionFailed`); read-only
  batches after a timeout or a 5xx; never a write that may have reached the server;
- asks the database's circuit breaker first (:class:`CircuitOpen` when it is open) and
  reports every success or outage to it;
- meters round trips, commands and bytes into the active scope's meter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from continuum.config import Database, UpstashConfig
from continuum.errors import (
    CacheTimeout,
    CacheUnavailable,
    CircuitOpen,
    CommandError,
    ConnectionFailed,
    ResponseTooLarge,
    ServerError,
)
from continuum.rest.breaker import CircuitBreaker, breaker_for
from continuum.rest.protocol import Command, HttpResponse, PlannedRequest, Reply, RestProtocol
from continuum.rest.transport import AsyncHttpxTransport, AsyncTransport, HttpxTransport, Transport
from continuum.scope import Deadline, Meter, current_scope

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["AsyncRestExecutor", "RestExecutor", "RetryPolicy"]


class RetryPolicy:
    """When to try again, and after how long (exponential backoff, full jitter)."""

    def __init__(self, *, max_retries: int, base: float, cap: float) -> None:
        self.max_retries = max_retries
        self.base = base
        self.cap = cap

    def delay(
        self, exc: CacheUnavailable, attempt: int, *, write: bool, left: float
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up now."""
        if attempt >= self.max_retries:
            return None
        if isinstance(exc, ConnectionFailed):
            safe = True
        elif isinstance(exc, ResponseTooLarge):  # the same answer would come again
            safe = False
        elif isinstance(exc, CacheTimeout | ServerError):
            safe = not write
        else:  # authentication, quota, breaker: retrying cannot help
            safe = False
        if not safe:
            return None
        wait = random.uniform(0.0, min(self.cap, self.base * 2**attempt))
        return wait if wait < left else None


class _Base:
    def __init__(
        self,
        database: Database,
        config: UpstashConfig,
        *,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.database = database
        self.config = config
        self.protocol = RestProtocol(database.token)
        self.breaker = breaker or breaker_for(
            database.breaker_key,
            failure_threshold=config.failure_threshold,
            probe_interval=config.probe_interval,
        )
        self.retry = RetryPolicy(
            max_retries=config.max_retries, base=config.backoff_base, cap=config.backoff_cap
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.database!r})"

    def _context(
        self, deadline: Deadline | None, meter: Meter | None
    ) -> tuple[Deadline, Meter | None]:
        scope = current_scope()
        if deadline is None:
            deadline = scope.deadline if scope is not None else Deadline.after(self.config.budget)
        if meter is None and scope is not None:
            meter = scope.meter
        return deadline, meter

    def circuit_open(self) -> CircuitOpen:
        """The error for a request the open circuit kept from being sent."""
        return CircuitOpen(
            f"Upstash at {self.database.url} is presumed down (circuit open); nothing was sent"
        )

    def _admit(self) -> None:
        if not self.breaker.allow():
            raise self.circuit_open()

    def _plan(self, commands: Sequence[Command], transaction: bool) -> list[PlannedRequest]:
        # The breaker first: while Upstash is down, a call must cost no more than the
        # fallback itself, so nothing is encoded for a request that will not be sent.
        # (Keys and values were already validated by the operation that built the batch.)
        self._admit()
        return self.protocol.plan(commands, transaction=transaction)  # may refuse input

    def _attempt_timeout(self, deadline: Deadline) -> float:
        left = deadline.remaining()
        if left <= 0:
            raise CacheTimeout("the deadline passed before the request could be sent")
        return min(self.config.timeout, left)

    @staticmethod
    def _meter_send(meter: Meter | None, planned: PlannedRequest) -> None:
        if meter is not None:
            meter.round_trips += 1
            meter.commands += len(planned.positions)
            meter.billed += len(planned.positions)
            meter.bytes_sent += len(planned.request.body)

    @staticmethod
    def _meter_receive(meter: Meter | None, response: HttpResponse) -> None:
        if meter is not None:
            meter.bytes_received += len(response.body)

    def _finish(self, meter: Meter | None, started: float, failure: BaseException | None) -> None:
        if meter is not None:
            meter.time_spent += time.perf_counter() - started
        if isinstance(failure, CircuitOpen):
            return
        if isinstance(failure, CacheUnavailable):
            if meter is not None:
                meter.errors += 1
            self.breaker.record_failure(failure)
        elif failure is None or isinstance(failure, CommandError):
            self.breaker.record_success()  # the server answered, even if it said no


class RestExecutor(_Base):
    """Runs batches over a synchronous transport (httpx by default)."""

    def __init__(
        self,
        database: Database,
        config: UpstashConfig,
        *,
        transport: Transport | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(database, config, breaker=breaker)
        self.transport: Transport = transport or HttpxTransport(
            database.url, max_response_size=config.max_response_size
        )

    def execute(
        self,
        commands: Sequence[Command],
        *,
        write: bool,
        transaction: bool = False,
        deadline: Deadline | None = None,
        meter: Meter | None = None,
    ) -> list[Reply | CommandError]:
        deadline, meter = self._context(deadline, meter)
        plans = self._plan(commands, transaction)
        started = time.perf_counter()
        replies: list[Reply | CommandError] = [None] * len(commands)
        try:
            for planned in plans:
                results = self._run(planned, commands, write, deadline, meter)
                _place(replies, planned, results)
        except BaseException as exc:
            self._finish(meter, started, exc)
            raise
        self._finish(meter, started, None)
        return replies

    def _run(
        self,
        planned: PlannedRequest,
        commands: Sequence[Command],
        write: bool,
        deadline: Deadline,
        meter: Meter | None,
    ) -> list[Reply | CommandError]:
        attempt = 0
        while True:
            try:
                timeout = self._attempt_timeout(deadline)
                self._meter_send(meter, planned)
                response = self.transport.send(planned.request, timeout)
                self._meter_receive(meter, response)
                return self.protocol.parse(planned, response, commands)
            except CacheUnavailable as exc:
                wait = self.retry.delay(exc, attempt, write=write, left=deadline.remaining())
                if wait is None:
                    raise
                time.sleep(wait)
                attempt += 1

    def close(self) -> None:
        self.transport.close()


class AsyncRestExecutor(_Base):
    """Runs batches over an asynchronous transport (httpx by default)."""

    def __init__(
        self,
        database: Database,
        config: UpstashConfig,
        *,
        transport: AsyncTransport | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(database, config, breaker=breaker)
        self.transport: AsyncTransport = transport or AsyncHttpxTransport(
            database.url, max_response_size=config.max_response_size
        )

    async def execute(
        self,
        commands: Sequence[Command],
        *,
        write: bool,
        transaction: bool = False,
        deadline: Deadline | None = None,
        meter: Meter | None = None,
    ) -> list[Reply | CommandError]:
        deadline, meter = self._context(deadline, meter)
        plans = self._plan(commands, transaction)
        started = time.perf_counter()
        replies: list[Reply | CommandError] = [None] * len(commands)
        try:
            for planned in plans:
                send = self.transport.send
                results = await self._run(planned, commands, write, deadline, meter, send)
                _place(replies, planned, results)
        except BaseException as exc:
            self._finish(meter, started, exc)
            raise
        self._finish(meter, started, None)
        return replies

    async def _run(
        self,
        planned: PlannedRequest,
        commands: Sequence[Command],
        write: bool,
        deadline: Deadline,
        meter: Meter | None,
        send: Callable[..., Awaitable[HttpResponse]],
    ) -> list[Reply | CommandError]:
        attempt = 0
        while True:
            try:
                timeout = self._attempt_timeout(deadline)
                self._meter_send(meter, planned)
                response = await send(planned.request, timeout)
                self._meter_receive(meter, response)
                return self.protocol.parse(planned, response, commands)
            except CacheUnavailable as exc:
                wait = self.retry.delay(exc, attempt, write=write, left=deadline.remaining())
                if wait is None:
                    raise
                import asyncio  # only async code pays for importing asyncio

                await asyncio.sleep(wait)
                attempt += 1

    async def aclose(self) -> None:
        await self.transport.aclose()


def _place(
    replies: list[Reply | CommandError],
    planned: PlannedRequest,
    results: list[Reply | CommandError],
) -> None:
    """Put one request's results back at their commands' positions in the batch."""
    for position, result in zip(planned.positions, results, strict=True):
        replies[position] = result
