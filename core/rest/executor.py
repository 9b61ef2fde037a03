"""Executing a batch of commands over REST: deadlines, safe retries, the breaker, metering.

``RestExecutor.execute(commands, write=..., transaction=...)`` is the REST side of the one
method everything above the transport uses (``LocalCache.execute`` is the other). It:

- plans the batch into requests (:mod:`continuum.rest.protocol`) and sends them in order;
- sends a known script's EVALSHA as EVAL where the database may not hold it yet, and
  once more as EVAL after a NOSCRIPT (:mod:`continuum.rest.scripts`);
- gives each attempt ``min(config.timeout, time left)`` and never starts or sleeps past
  the overall deadline (the request scope's, or ``config.budget`` outside a scope); a
  batch that finds the deadline already passed sends nothing and leaves the breaker be;
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
from collections.abc import Callable, Generator, Sequence
from typing import Any, Generic, TypeVar

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
from continuum.rest.protocol import (
    Command,
    HttpRequest,
    HttpResponse,
    PlannedRequest,
    Reply,
    RestProtocol,
)
from continuum.rest.scripts import resendable, scripts
from continuum.rest.transport import AsyncHttpxTransport, AsyncTransport, HttpxTransport, Transport
from continuum.sansio import Awaiting, Blocking, Pause, Plan, arun, run, twin
from continuum.scope import Deadline, Meter, current_scope

__all__ = ["AsyncRestExecutor", "ExecutorBase", "RestExecutor", "RetryPolicy"]

T = TypeVar("T")
TransportT = TypeVar("TransportT", Transport, AsyncTransport)
#: What the executor's logic asks its runner to send: ``(request, timeout)``.
Send = tuple[HttpRequest, float]


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


class ExecutorBase(Generic[TransportT]):
    """Everything but the waiting, for :class:`RestExecutor` and :class:`AsyncRestExecutor`.

    ``pause`` waits between attempts (``time.sleep``, or ``asyncio.sleep`` for the async
    executor, when None); a test passes its hand-turned clock's ``advance`` instead.
    """

    def __init__(
        self,
        database: Database,
        config: UpstashConfig,
        *,
        transport: TransportT | None = None,
        breaker: CircuitBreaker | None = None,
        pause: Callable[[float], Any] | None = None,
    ) -> None:
        self.database = database
        self.config = config
        # every configured token stays out of the messages built from a server's text
        secrets = [db.token for db in config.databases.values()]
        self.protocol = RestProtocol(database.token, secrets=secrets)
        self.breaker = breaker or breaker_for(
            database.breaker_key,
            failure_threshold=config.failure_threshold,
            probe_interval=config.probe_interval,
        )
        self.retry = RetryPolicy(
            max_retries=config.max_retries, base=config.backoff_base, cap=config.backoff_cap
        )
        self.transport: TransportT = transport or self._default_transport()
        self._pause = pause

    def _default_transport(self) -> TransportT:
        raise NotImplementedError

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
            raise _too_late()
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

    @twin
    def execute(
        self,
        commands: Sequence[Command],
        *,
        write: bool,
        transaction: bool = False,
        deadline: Deadline | None = None,
        meter: Meter | None = None,
    ) -> Plan[None, list[Reply | CommandError]]:
        """Run ``commands`` in as few round trips as the protocol allows; one reply each."""
        return Plan(self._batch(commands, write, transaction, deadline, meter), None)

    def _batch(
        self,
        commands: Sequence[Command],
        write: bool,
        transaction: bool,
        deadline: Deadline | None,
        meter: Meter | None,
    ) -> Generator[Send | Pause, Any, list[Reply | CommandError]]:
        deadline, meter = self._context(deadline, meter)
        if deadline.expired:
            # An earlier call of the request spent its time: this one sends nothing, so
            # the breaker is neither asked (no probe is used up) nor told of a failure
            # (a healthy database that was slow once must not look twice as sick).
            raise _too_late()
        url = self.database.url
        scripted = scripts.prepare(commands)
        sent = commands
        if scripted:  # EVAL where this database may not hold the script yet
            sent = list(commands)
            for at in scripted:
                sent[at] = scripts.as_sent(url, commands[at])
        plans = self._plan(sent, transaction)
        started = time.perf_counter()
        replies: list[Reply | CommandError] = [None] * len(commands)
        done = 0
        try:
            for planned in plans:
                results = yield from self._exchange(planned, sent, write, deadline, meter)
                _place(replies, planned, results)
                done += 1
            if scripted:
                noscript = [at for at in scripted if _observe(url, commands[at], replies[at])]
                if resendable(noscript, len(commands), transaction):
                    # flushed on the server: nothing ran for these, so EVAL them now
                    again = [scripts.as_sent(url, commands[at], force_eval=True) for at in noscript]
                    for planned in self._plan(again, False):
                        results = yield from self._exchange(planned, again, write, deadline, meter)
                        for position, result in zip(planned.positions, results, strict=True):
                            replies[noscript[position]] = result
                            _observe(url, commands[noscript[position]], result)
                        done += 1
        except BaseException as exc:
            if write and done and isinstance(exc, CacheUnavailable):
                exc.may_have_run = True  # an earlier request of this batch did run
            self._finish(meter, started, exc)
            raise
        self._finish(meter, started, None)
        return replies

    def _exchange(
        self,
        planned: PlannedRequest,
        commands: Sequence[Command],
        write: bool,
        deadline: Deadline,
        meter: Meter | None,
    ) -> Generator[Send | Pause, Any, list[Reply | CommandError]]:
        """One request, retried while the policy allows: yields ``(request, timeout)`` to
        send it, or the :class:`Pause` before the next attempt."""
        attempt = 0
        while True:
            sent = False
            try:
                timeout = self._attempt_timeout(deadline)
                self._meter_send(meter, planned)
                sent = True
                response: HttpResponse = yield (planned.request, timeout)
                self._meter_receive(meter, response)
                return self.protocol.parse(planned, response, commands)
            except CacheUnavailable as exc:
                wait = self.retry.delay(exc, attempt, write=write, left=deadline.remaining())
                if wait is None:
                    # sent, and neither refused nor sure never to have arrived: a write
                    # may have run (what ``OutcomeUnknown`` reports)
                    if write and sent and isinstance(exc, CacheTimeout | ServerError):
                        exc.may_have_run = True
                    raise
                yield Pause(wait)
                attempt += 1

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


class RestExecutor(ExecutorBase[Transport], Blocking):
    """Runs batches over a synchronous transport (httpx by default)."""

    def _default_transport(self) -> Transport:
        return HttpxTransport(
            self.database.url,
            max_response_size=self.config.max_response_size,
            connect_timeout=self.config.connect_timeout,
        )

    def _run(self, plan: Plan[None, T]) -> T:
        replies: T = run(plan.op, self._send, self._pause)
        return replies

    def _send(self, step: Send) -> HttpResponse:
        return self.transport.send(*step)

    def close(self) -> None:
        self.transport.close()


class AsyncRestExecutor(ExecutorBase[AsyncTransport], Awaiting):
    """Runs batches over an asynchronous transport (httpx by default)."""

    def _default_transport(self) -> AsyncTransport:
        return AsyncHttpxTransport(
            self.database.url,
            max_response_size=self.config.max_response_size,
            connect_timeout=self.config.connect_timeout,
        )

    async def _run(self, plan: Plan[None, T]) -> T:
        return await arun(plan.op, self._send, self._pause)

    async def _send(self, step: Send) -> HttpResponse:
        return await self.transport.send(*step)

    async def aclose(self) -> None:
        await self.transport.aclose()


def _too_late() -> CacheTimeout:
    return CacheTimeout("the deadline passed before the request could be sent")


def _observe(url: str, command: Command, reply: Reply | CommandError) -> bool:
    """Record whether ``url`` holds the script ``command`` ran; True for NOSCRIPT."""
    return scripts.observe(url, str(command[1]), reply)


def _place(
    replies: list[Reply | CommandError],
    planned: PlannedRequest,
    results: list[Reply | CommandError],
) -> None:
    """Put one request's results back at their commands' positions in the batch."""
    for position, result in zip(planned.positions, results, strict=True):
        replies[position] = result
