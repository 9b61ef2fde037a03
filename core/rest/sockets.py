"""What the httpx transports put under httpx: each socket operation bounded by the
attempt, and an attempt's timeout while it is still connecting told apart.

- *Sync*: httpx's read timeout applies to each socket read, so a server that trickles
  its status line and headers a byte at a time could hold a call forever. The pool's
  network backend is wrapped (:func:`deadline_backend`) so every connect, TLS
  handshake, read and write gets at most the time left until the attempt's end
  (:func:`attempt_ends` sets it for the calling thread).
- *Async*: ``asyncio.timeout`` bounds the whole attempt, which says nothing of where
  the time ran out. The backend is wrapped (:func:`connect_watch`) to note while the
  attempt is connecting (TCP and TLS), so :func:`still_connecting` can say that a
  request whose attempt expired there never left.

Either way an attempt whose time ran out before its request was written reports a
``ConnectTimeout`` (``ConnectionFailed`` to the retry policy): the request never left,
so any command may be retried and a write is not reported as one that may have run.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpcore

__all__ = ["attempt_ends", "connect_watch", "deadline_backend", "watching"]

_attempt = threading.local()


@contextmanager
def attempt_ends(seconds: float) -> Iterator[None]:
    """Bound every socket operation of this thread for the next ``seconds``."""
    _attempt.ends = time.monotonic() + seconds
    try:
        yield
    finally:
        _attempt.ends = None


def _bounded(timeout: float | None, *, connecting: bool = False) -> float | None:
    """The socket timeout for one operation: at most the time left in this attempt."""
    ends: float | None = getattr(_attempt, "ends", None)
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        import httpcore

        error = httpcore.ConnectTimeout if connecting else httpcore.ReadTimeout
        raise error("the attempt's time is up")
    return left if timeout is None else min(timeout, left)


def deadline_backend(inner: httpcore.NetworkBackend) -> httpcore.NetworkBackend:
    """Wrap a sync httpcore network backend so no socket operation outlives the attempt."""
    import httpcore

    class Stream(httpcore.NetworkStream):
        def __init__(self, stream: httpcore.NetworkStream) -> None:
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, _bounded(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, _bounded(timeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> httpcore.NetworkStream:
            bounded = _bounded(timeout, connecting=True)
            return Stream(self._stream.start_tls(ssl_context, server_hostname, bounded))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.NetworkStream:
            bounded = _bounded(timeout, connecting=True)
            return Stream(inner.connect_tcp(host, port, bounded, local_address, socket_options))

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.NetworkStream:
            bounded = _bounded(timeout, connecting=True)
            return Stream(inner.connect_unix_socket(path, bounded, socket_options))

        def sleep(self, seconds: float) -> None:
            inner.sleep(seconds)

    return Backend()


class _Phase:
    """Whether an attempt is connecting (TCP or TLS) right now."""

    __slots__ = ("connecting",)

    def __init__(self) -> None:
        self.connecting = False


_phase: contextvars.ContextVar[_Phase | None] = contextvars.ContextVar(
    "continuum_attempt_phase", default=None
)


@contextmanager
def watching() -> Iterator[_Phase]:
    """One async attempt's phase, noted by a :func:`connect_watch` backend in this task."""
    phase = _Phase()
    token = _phase.set(phase)
    try:
        yield phase
    finally:
        _phase.reset(token)


def connect_watch(inner: httpcore.AsyncNetworkBackend) -> httpcore.AsyncNetworkBackend:
    """Wrap an async httpcore network backend to note while the attempt is connecting.

    The flag is set before a connect or TLS handshake and cleared only when it completes:
    an attempt cancelled in between (its ``asyncio.timeout`` fired) stays "connecting".
    """
    import httpcore

    def connecting(value: bool) -> None:
        phase = _phase.get()
        if phase is not None:
            phase.connecting = value

    class Stream(httpcore.AsyncNetworkStream):
        def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
            self._stream = stream

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return await self._stream.read(max_bytes, timeout)

        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            await self._stream.write(buffer, timeout)

        async def aclose(self) -> None:
            await self._stream.aclose()

        async def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> httpcore.AsyncNetworkStream:
            connecting(True)
            stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
            connecting(False)
            return Stream(stream)

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class Backend(httpcore.AsyncNetworkBackend):
        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.AsyncNetworkStream:
            connecting(True)
            stream = await inner.connect_tcp(host, port, timeout, local_address, socket_options)
            connecting(False)
            return Stream(stream)

        async def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.AsyncNetworkStream:
            connecting(True)
            stream = await inner.connect_unix_socket(path, timeout, socket_options)
            connecting(False)
            return Stream(stream)

        async def sleep(self, seconds: float) -> None:
            await inner.sleep(seconds)

    return Backend()
