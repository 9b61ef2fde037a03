"""Sending one request: the transport contract and its httpx implementations.

A transport does one thing: send an :class:`~core.protocol.HttpRequest` and return the
:class:`~core.protocol.HttpResponse` within ``timeout`` seconds, or raise the error that
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
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import CacheTimeout, ConfigurationError, ConnectionFailed, ServerError
from core.protocol import HttpRequest, HttpResponse

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncHttpxTransport", "AsyncTransport", "HttpxTransport", "Transport"]

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


class _Requests:
    """Builds ``httpx.Request`` objects cheaply: parsed URLs and timeouts are reused."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
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
            last = (timeout, dict.fromkeys(("connect", "read", "write", "pool"), timeout))
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


class HttpxTransport:
    """Keep-alive httpx connection pool created on first use.

    ``transport`` replaces the pool (any ``httpx.BaseTransport``, e.g. a
    ``MockTransport``); other keyword arguments go to ``httpx.HTTPTransport``.
    """

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None, **options: Any
    ) -> None:
        self.base_url = base_url
        self._requests = _Requests(base_url)
        self._options = options
        self._transport = transport

    def __repr__(self) -> str:
        return f"HttpxTransport({self.base_url!r})"

    def _pool(self) -> httpx.BaseTransport:
        if self._transport is None:
            import httpx

            self._transport = httpx.HTTPTransport(**self._options)
        return self._transport

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        import httpx

        started = time.monotonic()
        try:
            response = self._pool().handle_request(self._requests.build(request, timeout))
            try:
                chunks = []
                # Read by chunks so a server that trickles its answer cannot hold us past
                # the attempt timeout (the read timeout applies to each chunk).
                for chunk in response.stream:  # type: ignore[union-attr]
                    chunks.append(chunk)
                    if time.monotonic() - started > timeout:
                        raise self._requests.too_slow()
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise _map_error(exc, self.base_url) from None
        return HttpResponse(response.status_code, response.headers, b"".join(chunks))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class AsyncHttpxTransport:
    """Keep-alive async httpx connection pool, created on first use per event loop."""

    def __init__(
        self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        self.base_url = base_url
        self._requests = _Requests(base_url)
        self._options = options
        self._given = transport
        self._transport: httpx.AsyncBaseTransport | None = transport
        self._loop: object = None

    def __repr__(self) -> str:
        return f"AsyncHttpxTransport({self.base_url!r})"

    def _pool(self) -> httpx.AsyncBaseTransport:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._given is not None:
            return self._given
        if self._transport is None or self._loop is not loop:
            # Connections belong to the loop that opened them; a new loop (asyncio.run
            # per invocation) needs a new pool.
            import httpx

            self._transport = httpx.AsyncHTTPTransport(**self._options)
            self._loop = loop
        return self._transport

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        import asyncio

        import httpx

        try:
            async with asyncio.timeout(timeout):
                built = self._requests.build(request, timeout)
                response = await self._pool().handle_async_request(built)
                try:
                    body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
                finally:
                    await response.aclose()
        except TimeoutError:
            raise self._requests.too_slow() from None
        except httpx.HTTPError as exc:
            raise _map_error(exc, self.base_url) from None
        return HttpResponse(response.status_code, response.headers, body)

    async def aclose(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()
