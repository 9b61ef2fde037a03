"""Sending one request: the transport contract and its httpx implementations.

A transport does one thing: send an :class:`~continuum.rest.protocol.HttpRequest` and return the
:class:`~continuum.rest.protocol.HttpResponse` within ``timeout`` seconds, or raise the error that
tells the retry policy what may have happened:

- :class:`ConnectionFailed`: the request never left (refused, DNS, TLS); safe to retry;
- :class:`CacheTimeout`: it may have reached the server; only reads are retried;
- :class:`ServerError`: the connection broke mid-answer; only reads are retried.

The httpx implementations talk to httpx's connection-pool transport
(``httpx.HTTPTransport``) directly rather than through ``httpx.Client``: the client's
cookie jar, redirect and auth machinery and per-request header merging cost more than
everything else this library does per command, and a REST call to Upstash needs none of
them. Connections are kept alive and reused (warm containers); TLS is verified as httpx
does by default. ``httpx`` is imported here only, lazily; the Workers fetch transport in
``platforms/cloudflare`` implements the same two-method protocol.

Two things ``httpx.Client`` would have done are done here instead:

- *The attempt timeout bounds the whole exchange.* httpx's read timeout applies to each
  socket read, so a server that trickles its status line and headers a byte at a time
  could hold a synchronous call forever. The sync pool's network backend is wrapped so
  every connect, read and write gets at most the time left until the attempt's end
  (async calls are bounded by ``asyncio.timeout``; see :mod:`continuum.rest.sockets`).
- *Proxies from the environment are honoured* (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``
  and ``NO_PROXY``, either case), as ``httpx.Client(trust_env=True)`` does, so a function
  in a VPC that reaches the internet only through a proxy still reaches Upstash. Loopback
  hosts (the emulator) never go through a proxy; an explicit ``proxy=`` option wins.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from continuum.config import DEFAULT_MAX_RESPONSE_SIZE, is_loopback
from continuum.errors import (
    CacheTimeout,
    ConfigurationError,
    ConnectionFailed,
    ResponseTooLarge,
    ServerError,
)
from continuum.rest.protocol import HttpRequest, HttpResponse
from continuum.rest.sockets import attempt_ends, connect_watch, deadline_backend, watching
from continuum.sansio import arun, run

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AsyncHttpxTransport",
    "AsyncTransport",
    "HttpxTransport",
    "ResponseCap",
    "Transport",
    "env_proxy",
]

_USER_AGENT = "continuum-cache/0.1"


class Transport(Protocol):
    """Synchronous transport: one request, one response, bounded by ``timeout``."""

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    """Asynchronous transport: one request, one response, bounded by ``timeout``."""

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse: ...

    async def aclose(self) -> None: ...


def _map_error(exc: Exception, url: str) -> Exception:
    """The one place where httpx's errors become ours (messages carry no token)."""
    import httpx

    where = f"Upstash REST endpoint {url}"
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ConnectionFailed(f"could not connect to the {where}: {type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return CacheTimeout(f"the {where} did not answer in time")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigurationError(f"invalid REST URL for the {where}")
    if isinstance(exc, httpx.TransportError):
        return ServerError(f"the connection to the {where} broke: {type(exc).__name__}")
    return exc


def env_proxy(url: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy the environment asks for to reach ``url``, as ``httpx.Client`` reads it."""
    env = os.environ if env is None else env

    def var(name: str) -> str:
        return (env.get(name.lower()) or env.get(name) or "").strip()

    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if not host or is_loopback(host):
        return None
    for entry in var("NO_PROXY").split(","):
        entry = entry.strip().lower().lstrip(".").rstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    scheme_var = "HTTPS_PROXY" if parts.scheme == "https" else "HTTP_PROXY"
    return var(scheme_var) or var("ALL_PROXY") or None


def _pool_options(base_url: str, options: dict[str, Any]) -> dict[str, Any]:
    if "proxy" in options:
        return options
    proxy = env_proxy(base_url)
    return {**options, "proxy": proxy} if proxy else options


def _proxy_error(exc: Exception) -> ConfigurationError:
    # The proxy URL may carry credentials: name the variables, never the value.
    return ConfigurationError(
        "the proxy set in HTTPS_PROXY/HTTP_PROXY/ALL_PROXY cannot be used "
        f"({type(exc).__name__}); fix it or exclude the host with NO_PROXY"
    )


class _Requests:
    """Builds ``httpx.Request`` objects cheaply: parsed URLs and timeouts are reused.

    Connecting gets at most ``connect_timeout`` of the attempt: nothing has been sent
    yet, so a connect that fails is retried for any command, and a lost SYN (which the
    kernel first resends after a whole second) costs a short wait and a fresh connect
    rather than the attempt."""

    def __init__(self, base_url: str, connect_timeout: float | None = None) -> None:
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self._urls: dict[str, httpx.URL] = {}
        self._timeout: tuple[float, dict[str, float]] | None = None

    def build(self, request: HttpRequest, timeout: float) -> httpx.Request:
        import httpx

        url = self._urls.get(request.path)
        if url is None:
            url = httpx.URL(self.base_url + request.path)
            if len(self._urls) < 8:  # "/", "/pipeline", "/multi-exec"; raw paths vary
                self._urls[request.path] = url
        last = self._timeout
        if last is None or last[0] != timeout:
            timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout)
            if self.connect_timeout is not None:
                # Not capped by ``timeout``: when less than the connect timeout is left,
                # the attempt's own bound stops the connect, and says it was connecting.
                timeouts["connect"] = self.connect_timeout
            last = (timeout, timeouts)
            self._timeout = last
        headers = {"User-Agent": _USER_AGENT, **request.headers}
        return httpx.Request(
            request.method,
            url,
            headers=headers,
            content=request.body,
            extensions={"timeout": last[1]},
        )

    def too_slow(self) -> CacheTimeout:
        return CacheTimeout(f"the Upstash REST endpoint {self.base_url} was too slow")


class ResponseCap:
    """Stops reading an answer that grows past ``limit`` bytes, or announces it will.

    Every transport (the httpx ones here, the Workers fetch one) reads through it::

        body = cap.body(status, content_length)   # raises if announced too large
        for chunk in stream:
            body.add(chunk)                        # raises past the limit
        data = body.data()
    """

    def __init__(self, base_url: str, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ConfigurationError("max_response_size must be a positive number of bytes")
        self.base_url = base_url
        self.limit = limit

    def body(self, status: int, content_length: str | bytes | None) -> _Body:
        """An empty body to fill; refuses one announced over the limit before any read."""
        try:
            length = int(content_length) if content_length is not None else None
        except ValueError:
            length = None  # a lying header: the chunks are counted anyway
        if length is not None and length > self.limit:
            raise self.error(status, f"announced {length} bytes")
        return _Body(self, status)

    def error(self, status: int, what: str) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"the Upstash REST endpoint {self.base_url} {what}, over the {self.limit}-byte "
            "limit; reading stopped (raise max_response_size if replies this large are "
            "expected, e.g. a very large MGET or pipeline)",
            status=status,
            limit=self.limit,
        )


class _Body:
    __slots__ = ("_cap", "_chunks", "_size", "_status")

    def __init__(self, cap: ResponseCap, status: int) -> None:
        self._cap = cap
        self._status = status
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._cap.limit:
            raise self._cap.error(self._status, "sent a larger answer")
        self._chunks.append(chunk)

    def data(self) -> bytes:
        return b"".join(self._chunks)


def _content_length(response: httpx.Response) -> bytes | None:
    for name, value in response.headers.raw:
        if name.lower() == b"content-length":
            return value
    return None


_OPEN, _READ, _CLOSE = "open", "read", "close"
#: What an exchange asks its transport for: open the request (the answer is the response
#: and an iterator over its body), read the next chunk (None at the end), close it.
_Io = tuple[str, Any]


class _HttpxTransport:
    """What both httpx transports share: the request builder, the cap, the exchange."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: Any = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        connect_timeout: float | None = None,
        **options: Any,
    ) -> None:
        self.base_url = base_url
        self._requests = _Requests(base_url, connect_timeout)
        self._cap = ResponseCap(base_url, max_response_size)
        self._options = options
        self._given = transport
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def _exchange(self, request: HttpRequest, timeout: float) -> Generator[_Io, Any, HttpResponse]:
        """Send ``request`` and read its answer by chunks, so a server that trickles its
        answer cannot hold us past the attempt timeout (httpx's read timeout applies to
        each chunk) and one that never stops cannot fill the memory."""
        import httpx

        started = time.monotonic()
        try:
            response, chunks = yield (_OPEN, self._requests.build(request, timeout))
            try:
                body = self._cap.body(response.status_code, _content_length(response))
                while (chunk := (yield (_READ, chunks))) is not None:
                    body.add(chunk)
                    if time.monotonic() - started > timeout:
                        raise self._requests.too_slow()
            finally:
                yield (_CLOSE, response)
        except httpx.HTTPError as exc:
            raise _map_error(exc, self.base_url) from None
        return HttpResponse(response.status_code, response.headers, body.data())


class HttpxTransport(_HttpxTransport):
    """Keep-alive httpx connection pool created on first use.

    ``transport`` replaces the pool (any ``httpx.BaseTransport``, e.g. a
    ``MockTransport``); ``connect_timeout`` bounds connecting within each attempt;
    other keyword arguments go to ``httpx.HTTPTransport``.
    """

    _transport: httpx.BaseTransport | None

    def _pool(self) -> httpx.BaseTransport:
        if self._transport is None:
            import httpx

            try:
                transport = httpx.HTTPTransport(**_pool_options(self.base_url, self._options))
            except (ImportError, ValueError) as exc:
                raise _proxy_error(exc) from None
            pool = getattr(transport, "_pool", None)
            if pool is not None and hasattr(pool, "_network_backend"):
                pool._network_backend = deadline_backend(pool._network_backend)
            self._transport = transport
        return self._transport

    def open(self) -> None:
        """Create the connection pool now (it connects nothing) rather than on first use."""
        self._pool()

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        with attempt_ends(timeout):
            return run(self._exchange(request, timeout), self._io)

    def _io(self, step: _Io) -> Any:
        kind, arg = step
        if kind is _READ:
            return next(arg, None)
        if kind is _OPEN:
            response = self._pool().handle_request(arg)
            return response, iter(response.stream)  # type: ignore[arg-type]
        arg.close()
        return None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class AsyncHttpxTransport(_HttpxTransport):
    """Keep-alive async httpx connection pool, created on first use per event loop."""

    _given: httpx.AsyncBaseTransport | None
    _transport: httpx.AsyncBaseTransport | None
    _loop: object = None

    def _pool(self) -> httpx.AsyncBaseTransport:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._given is not None:
            return self._given
        if self._transport is None or self._loop is not loop:
            # Connections belong to the loop that opened them; a new loop (asyncio.run
            # per invocation) needs a new pool.
            import httpx

            try:
                options = _pool_options(self.base_url, self._options)
                transport = httpx.AsyncHTTPTransport(**options)
            except (ImportError, ValueError) as exc:
                raise _proxy_error(exc) from None
            pool = getattr(transport, "_pool", None)
            if pool is not None and hasattr(pool, "_network_backend"):
                pool._network_backend = connect_watch(pool._network_backend)
            self._transport = transport
            self._loop = loop
        return self._transport

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        import asyncio

        with watching() as phase:
            try:
                async with asyncio.timeout(timeout):
                    return await arun(self._exchange(request, timeout), self._io)
            except TimeoutError:
                if phase.connecting:  # the request never left: any command may be retried
                    import httpx

                    expired = httpx.ConnectTimeout("the attempt's time is up")
                    raise _map_error(expired, self.base_url) from None
                raise self._requests.too_slow() from None

    async def _io(self, step: _Io) -> Any:
        kind, arg = step
        if kind is _READ:
            return await anext(arg, None)
        if kind is _OPEN:
            response = await self._pool().handle_async_request(arg)
            return response, aiter(response.stream)  # type: ignore[arg-type]
        await arg.aclose()
        return None

    async def aclose(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()
