"""Subscribe to channels over Upstash's REST server-sent events, sync and async.

``POST /subscribe/<channel>`` (or ``/psubscribe/<pattern>``) with
``Accept: text/event-stream`` keeps the response open and streams one SSE event per
message, ``data: message,<channel>,<payload>`` (``pmessage,<pattern>,<channel>,<payload>``
for patterns). Each channel or pattern gets its own stream, because that is what the REST
API documents; every stream feeds one queue that ``listen()`` and ``get_message()`` read.
The payload is split off using the name we subscribed to, so commas in a channel name or
a message survive intact. A message arrives exactly as published (line breaks, NUL, any
character), with two exceptions the protocol imposes: a CR or CRLF arrives as LF (an event
stream's lines end with any of the three) and bytes that are not UTF-8 arrive as U+FFFD
(an event stream is UTF-8 text). A stream only ever reports its own subscription's
messages: on a channel's stream every message is on that channel, on a pattern's the
channel must match the pattern, and only its first event confirms it; any other event is
logged (``continuum.pubsub``) and left out, so a payload can never pose as a message on
another channel, whatever the server does with its line breaks.

A stream that breaks or that the server ends is reopened, resubscribing to the same name,
after a short backoff (0.1 s, doubling, at most ``reconnect_attempts`` tries in a row; a
stream that lived ``HEALTHY_AFTER`` seconds starts the count afresh, so a server that ends
every stream at once is given up on rather than hammered, whatever it sent). The
confirmation of a resubscription is not repeated to the reader, and messages published
while no stream was open are lost, as with any Redis subscriber. A refused token
or a rejected name is not retried. Once the attempts are spent, ``listen()`` and
``get_message()`` raise ``ConnectionFailed`` saying why.

This is for long-running consumers (a worker, a local dev server), not for a function that
answers one request: holding a stream open costs wall-clock time on every platform.

    with PubSub(url, token) as sub:
        sub.subscribe("chat")
        for message in sub.listen():
            if message.type == "message":
                print(message.channel, message.data)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from continuum.config import is_loopback
from continuum.errors import (
    AuthenticationFailed,
    CacheError,
    CacheTimeout,
    CacheUnavailable,
    CommandError,
    ConfigurationError,
    ConnectionFailed,
    QuotaExceeded,
    ResponseTooLarge,
    ServerError,
)
from continuum.rest import Redactor
from continuum.sansio import Awaiting, Blocking, Pause, Plan, arun, run, twin
from continuum.sse import MAX_EVENT_SIZE, Events, Message, SseParser, to_message

__all__ = ["MAX_EVENT_SIZE", "AsyncPubSub", "Message", "PubSub", "SseParser", "to_message"]

RECONNECT_ATTEMPTS = 3
HEALTHY_AFTER = 1.0  # seconds a stream must live to count as a success
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 2.0
# what a new stream would meet again: reconnecting cannot help
_PERMANENT = (
    AuthenticationFailed, CommandError, ConfigurationError, QuotaExceeded, ResponseTooLarge,
)  # fmt: skip
# A blocked reader wakes this often. A lock wait is interrupted only by a signal delivered
# to the waiting thread, and the OS may hand a process's Ctrl-C to a stream thread instead:
# waking lets Python run the handler in the main thread within this long.
_WAIT_SLICE = 0.25


def _broken(exc: Exception, where: str) -> CacheError:
    """Why a stream stopped, from what reading it raised."""
    if isinstance(exc, ResponseTooLarge):
        return exc
    if isinstance(exc, httpx.HTTPError):
        return _transport_error(exc, where)
    return ConnectionFailed(f"the {where} stream broke ({type(exc).__name__})")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError("the REST URL must look like https://<host>")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigurationError(
            f"refusing plain http:// to {host}: the token would cross the network unencrypted; "
            "use https:// (http is allowed only for loopback, e.g. the local emulator)"
        )
    return url.rstrip("/")


def _status_error(status: int, body: bytes, where: str, clean: Redactor) -> CacheError:
    """The exception for a subscribe request that did not start a stream."""
    text = ""
    with contextlib.suppress(ValueError, AttributeError):
        text = clean(json.loads(body).get("error", ""))[:200]
    if status in (401, 403):
        return AuthenticationFailed(f"Upstash refused the token for {where} (HTTP {status})")
    if "limit exceeded" in text.lower():
        return QuotaExceeded(f"Upstash plan limit reached: {text}")
    if status == 400 and text:
        return CommandError(text, command="subscribe")
    return ServerError(f"{where} answered HTTP {status} instead of an event stream", status=status)


def _transport_error(exc: httpx.HTTPError, where: str) -> CacheUnavailable:
    if isinstance(exc, httpx.TimeoutException):
        return CacheTimeout(f"no answer from {where} in time ({type(exc).__name__})")
    return ConnectionFailed(f"could not reach {where} ({type(exc).__name__})")


class _End:
    """Queued when a stream stops: ``error`` is None when we closed it ourselves."""

    def __init__(self, error: CacheError | None) -> None:
        self.error = error


def _backoff(attempt: int) -> float:
    return float(min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (attempt - 1)))


def _given_up(ended: CacheError, last: CacheError, attempts: int) -> CacheError:
    """The error a reader sees once reconnecting stopped."""
    if isinstance(last, _PERMANENT) or attempts == 0:
        return last
    return ConnectionFailed(f"{ended}; {attempts} reconnect attempt(s) failed, the last: {last}")


class _Streak:
    """Counts reconnect attempts in a row; a healthy stream starts the count afresh."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.failures = 0

    def stream_ended(self, opened: float) -> None:
        if time.monotonic() - opened >= HEALTHY_AFTER:
            self.failures = 0

    def next_delay(self, last: CacheError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if isinstance(last, _PERMANENT) or self.failures >= self.limit:
            return None
        self.failures += 1
        return _backoff(self.failures)


#: What the subscriber's logic asks its runner for; each is ``(kind, argument)``.
_SEND = "send"  # send the subscribe request (streaming): the response
_READ = "read"  # read a refused response's whole body: bytes
_CHUNKS = "chunks"  # an iterator over a stream's body
_NEXT = "next"  # the iterator's next chunk, or None at the end
_CLOSE = "close"  # close a response or the HTTP client
_TAKE = "take"  # the queue's next item within a timeout (None: wait), or None
_STOP = "stop"  # stop these streams (a close): wake their readers, wait for them
_Io = tuple[str, Any]


ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)


class _Subscriber(Generic[ClientT]):
    """Everything but the waiting, for :class:`PubSub` and :class:`AsyncPubSub`.

    The logic (subscribing, reading a stream, reconnecting, closing) is written once as
    generators of ``_Io`` steps (see :mod:`continuum.sansio`); each class carries the
    steps out with its own I/O: threads and blocking reads, or tasks and awaits.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        client: ClientT | None = None,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        max_event_size: int = MAX_EVENT_SIZE,
        secrets: Iterable[str] = (),
    ) -> None:
        if not token:
            raise ConfigurationError("a REST token is needed to subscribe")
        if isinstance(reconnect_attempts, bool) or not isinstance(reconnect_attempts, int):
            raise ConfigurationError("reconnect_attempts must be an integer")
        if reconnect_attempts < 0:
            raise ConfigurationError("reconnect_attempts cannot be negative")
        if isinstance(max_event_size, bool) or not isinstance(max_event_size, int):
            raise ConfigurationError("max_event_size must be an integer")
        if max_event_size <= 0:
            raise ConfigurationError("max_event_size must be positive")
        self._max_event = max_event_size
        self._reconnects = reconnect_attempts
        self._url = _check_url(url)
        self._host = urlsplit(self._url).netloc
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        # a server's error text never brings a token back into an exception
        self._redact = Redactor([token, *secrets])
        self._timeout = timeout
        self._closed = False
        self._client: ClientT = client or self._new_client(timeout)
        self._own_client = client is None
        self._queue = self._new_queue()
        self._stop = threading.Event()  # set by close(): wakes a reconnect's wait
        # One stream per channel or pattern: what close() needs to stop it.
        self._streams: dict[tuple[bool, str], Any] = {}
        self._lock = threading.Lock()  # the streams' readers may be threads

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}(url={self._url!r}, closed={self._closed})"

    def _new_client(self, timeout: float) -> ClientT:
        raise NotImplementedError

    def _new_queue(self) -> Any:
        """The queue every stream feeds (``put_nowait``) and the readers take from."""
        raise NotImplementedError

    def _start(self, response: httpx.Response, name: str, is_pattern: bool) -> None:
        """Read the stream in the background (a thread, or a task)."""
        raise NotImplementedError

    def _entry(self, response: httpx.Response) -> Any:
        """What ``_streams`` keeps for the stream now read through ``response``."""
        raise NotImplementedError

    # -- the public methods ------------------------------------------------------------

    @twin
    def subscribe(self, *channels: str) -> Plan[None, None]:
        """Subscribe to channels, one stream each (a channel already subscribed is kept)."""
        return Plan(self._opening(False, channels), None)

    @twin
    def psubscribe(self, *patterns: str) -> Plan[None, None]:
        """Subscribe to glob patterns of channels, one stream each."""
        return Plan(self._opening(True, patterns), None)

    @twin
    def get_message(self, timeout: float) -> Plan[None, Message | None]:
        """The next message, or None if none arrives within ``timeout`` seconds."""
        return Plan(self._next(max(0.0, timeout)), None)

    @twin
    def close(self) -> Plan[None, None]:
        """Stop every stream and wake any reader blocked in ``listen()``."""
        return Plan(self._closing(), None)

    # -- the logic, written once -------------------------------------------------------

    def _target(self, is_pattern: bool, name: str) -> tuple[str, str]:
        if not name:
            raise ValueError("channel and pattern names cannot be empty")
        kind = "psubscribe" if is_pattern else "subscribe"
        return f"{self._url}/{kind}/{quote(name, safe='')}", f"{kind} on {self._host}"

    def _opening(self, is_pattern: bool, names: tuple[str, ...]) -> Generator[_Io, Any, None]:
        for name in names:
            if self._closed:
                raise CacheError(f"this {type(self).__name__} is closed")
            if (is_pattern, name) in self._streams:
                continue
            response = yield from self._connecting(is_pattern, name)
            self._start(response, name, is_pattern)

    def _connecting(self, is_pattern: bool, name: str) -> Generator[_Io, Any, httpx.Response]:
        """POST the subscription and check that an event stream started; raises CacheError."""
        target, where = self._target(is_pattern, name)
        request = self._client.build_request("POST", target, headers=self._headers)
        try:
            response: httpx.Response = yield (_SEND, request)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, where) from None
        try:
            body = (yield (_READ, response)) if response.status_code != 200 else b""
            _check_response(response, body, where, self._redact)
        except BaseException as exc:
            yield (_CLOSE, response)
            if isinstance(exc, httpx.HTTPError):
                raise _transport_error(exc, where) from None
            raise
        # The timeout bounds connecting and the wait for headers; a quiet channel may
        # then stay silent for hours, so body reads must not time out.
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            timeouts["read"] = None
        return response

    def _lifetime(
        self, response: httpx.Response, name: str, is_pattern: bool
    ) -> Generator[_Io | Pause, Any, None]:
        """Read the stream into the queue; reopen it when it ends, within the attempts."""
        key = (is_pattern, name)
        streak = _Streak(self._reconnects)
        current: httpx.Response | None = response
        resubscribed = False
        error: CacheError | None = None
        try:
            while current is not None:
                opened = time.monotonic()
                ended = yield from self._draining(current, name, is_pattern, resubscribed)
                yield (_CLOSE, current)
                current = None
                if self._closed:
                    return
                streak.stream_ended(opened)
                last: CacheError = ended
                while current is None:
                    delay = streak.next_delay(last)
                    if delay is None:
                        error = _given_up(ended, last, streak.failures)
                        return
                    yield Pause(delay)  # close() wakes (or cancels) this wait
                    if self._closed:
                        return
                    try:
                        current = yield from self._connecting(is_pattern, name)
                    except CacheError as exc:
                        last = exc
                with self._lock:
                    if self._closed:
                        return
                    self._streams[key] = self._entry(current)
                resubscribed = True
        finally:
            if current is not None:
                yield (_CLOSE, current)
            with self._lock:
                self._streams.pop(key, None)  # so it can be subscribed again
            if not self._closed:
                self._queue.put_nowait(_End(error))

    def _draining(
        self, response: httpx.Response, name: str, is_pattern: bool, resubscribed: bool
    ) -> Generator[_Io, Any, CacheError]:
        """Queue the stream's messages until it ends; returns why it ended."""
        _, where = self._target(is_pattern, name)
        events = Events(self._max_event, where, name, is_pattern, resubscribed)
        try:
            chunks = yield (_CHUNKS, response)
            while (chunk := (yield (_NEXT, chunks))) is not None:
                for message in events.feed(chunk):
                    self._queue.put_nowait(message)
        except Exception as exc:
            return _broken(exc, where)
        return ConnectionFailed(f"the server ended the {where} stream")

    def _next(self, timeout: float | None) -> Generator[_Io, Any, Message | None]:
        item: Message | _End | None = yield (_TAKE, timeout)
        if item is None or isinstance(item, Message):
            return item
        if item.error is not None and not self._closed:
            raise item.error
        return None

    def _closing(self) -> Generator[_Io, Any, None]:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        yield (_STOP, streams)
        self._queue.put_nowait(_End(None))
        if self._own_client:
            yield (_CLOSE, self._client)


def _check_response(response: httpx.Response, body: bytes, where: str, clean: Redactor) -> None:
    if response.status_code != 200:
        raise _status_error(response.status_code, body, where, clean)
    ctype = response.headers.get("content-type", "")
    if not ctype.startswith("text/event-stream"):
        raise ServerError(f"{where} answered {ctype or 'no content type'}, not an event stream")


class PubSub(_Subscriber[httpx.Client], Blocking):
    """Blocking subscriber; one reader thread per stream feeds a single queue.

    ``client`` is an ``httpx.Client`` to send the requests with (one is made otherwise).
    """

    def _new_client(self, timeout: float) -> httpx.Client:
        return httpx.Client(timeout=timeout)

    def _new_queue(self) -> queue.Queue[Message | _End]:
        return queue.Queue()

    def _run(self, plan: Plan[None, Any]) -> Any:
        return run(plan.op, self._io)

    def _io(self, step: _Io) -> Any:
        kind, arg = step
        if kind is _NEXT:
            return next(arg, None)
        if kind is _TAKE:
            return _take(self._queue, arg)
        if kind is _SEND:
            return self._client.send(arg, stream=True)
        if kind is _CHUNKS:
            return arg.iter_bytes()
        if kind is _READ:
            return arg.read()
        if kind is _CLOSE:
            return arg.close()
        self._stop.set()
        for response, _ in arg:
            _interrupt(response)
        for _, thread in arg:
            thread.join(timeout=self._timeout)
        return None

    def _start(self, response: httpx.Response, name: str, is_pattern: bool) -> None:
        lifetime = self._lifetime(response, name, is_pattern)
        thread = threading.Thread(target=run, args=(lifetime, self._io, self._stop.wait))
        thread.daemon = True
        with self._lock:
            self._streams[(is_pattern, name)] = (response, thread)
        thread.start()

    def _entry(self, response: httpx.Response) -> Any:
        return (response, threading.current_thread())

    def listen(self) -> Iterator[Message]:
        """Messages as they arrive, until ``close()``.

        A broken stream is reopened (see the module's docstring); once the reconnect
        attempts are spent this raises ``ConnectionFailed``.
        """
        while not self._closed and (message := run(self._next(None), self._io)) is not None:
            yield message

    def __enter__(self) -> PubSub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _take(source: queue.Queue[Message | _End], timeout: float | None) -> Message | _End | None:
    """The next item, or None after ``timeout`` seconds (None: wait for ever), waiting in
    slices of ``_WAIT_SLICE`` so that Ctrl-C is never stuck behind a lock wait."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    while True:
        wait = _WAIT_SLICE
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        try:
            return source.get(timeout=wait)
        except queue.Empty:
            if deadline is not None and time.monotonic() >= deadline:
                return None


def _interrupt(response: httpx.Response) -> None:
    """Closing a response from another thread does not wake a blocked ``recv``; shutting
    the socket down does."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


class AsyncPubSub(_Subscriber[httpx.AsyncClient], Awaiting):
    """The asyncio twin: one reader task per stream feeds a single queue.

    ``client`` is an ``httpx.AsyncClient`` to send the requests with.
    """

    def _new_client(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout)

    def _new_queue(self) -> asyncio.Queue[Message | _End]:
        return asyncio.Queue()

    async def _run(self, plan: Plan[None, Any]) -> Any:
        return await arun(plan.op, self._io)

    async def _io(self, step: _Io) -> Any:
        kind, arg = step
        if kind is _NEXT:
            return await anext(arg, None)
        if kind is _TAKE:
            try:
                return await asyncio.wait_for(self._queue.get(), arg)
            except TimeoutError:
                return None
        if kind is _SEND:
            return await self._client.send(arg, stream=True)
        if kind is _CHUNKS:
            return arg.aiter_bytes()
        if kind is _READ:
            return await arg.aread()
        if kind is _CLOSE:
            return await arg.aclose()
        for task in arg:
            task.cancel()
        await asyncio.gather(*arg, return_exceptions=True)
        return None

    def _start(self, response: httpx.Response, name: str, is_pattern: bool) -> None:
        lifetime = self._lifetime(response, name, is_pattern)
        self._streams[(is_pattern, name)] = asyncio.create_task(arun(lifetime, self._io))

    def _entry(self, response: httpx.Response) -> Any:
        return asyncio.current_task()

    async def listen(self) -> AsyncIterator[Message]:
        """Messages as they arrive, until ``close()`` (see :meth:`PubSub.listen`)."""
        while not self._closed and (message := await arun(self._next(None), self._io)) is not None:
            yield message

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> AsyncPubSub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
