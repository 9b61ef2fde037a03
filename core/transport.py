"""Sending one request: the transport contract and its httpx implementations.

A transport does one thing: send an :class:`~core.protocol.HttpRequest` and return the
:class:`~core.protocol.HttpResponse` within ``timeout`` seconds, or raise the error that
tells the retry policy what may have happened:

- :class:`ConnectionFailed`: the request never left (refused, DNS, TLS); safe to retry;
- :class:`CacheTimeout`: it may have reached the server; only reads are retried;
- :class:`ServerError`: the connection broke mid-answer; only reads are retried.

``httpx`` is imported here only, lazily, when the first client is created; the Workers
fetch transport in ``platforms/cloudflare`` implements the same two-method protocol.
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


class _Timeouts:
    """The last ``httpx.Timeout`` built: most attempts use the configured timeout."""

    def __init__(self) -> None:
        self._last: tuple[float, httpx.Timeout] | None = None

    def get(self, seconds: float) -> httpx.Timeout:
        last = self._last
        if last is not None and last[0] == seconds:
            return last[1]
        import httpx

        timeout = httpx.Timeout(seconds)
        self._last = (seconds, timeout)
        return timeout


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


class HttpxTransport:
    """Keep-alive ``httpx.Client`` created on first use (warm containers reuse it)."""

    def __init__(self, base_url: str, **client_options: Any) -> None:
        self.base_url = base_url
        self._options = client_options
        self._client: httpx.Client | None = None
        self._timeouts = _Timeouts()

    def __repr__(self) -> str:
        return f"HttpxTransport({self.base_url!r})"

    def _get_client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(
                base_url=self.base_url, headers={"User-Agent": _USER_AGENT}, **self._options
            )
        return self._client

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        import httpx

        client = self._get_client()
        started = time.monotonic()
        try:
            built = client.build_request(
                request.method,
                request.path,
                headers=request.headers,
                content=request.body,
                timeout=self._timeouts.get(timeout),
            )
            response = client.send(built, stream=True)
            try:
                chunks = []
                # Read by chunks so a server that trickles its answer cannot hold us past
                # the attempt timeout (httpx's read timeout is per chunk).
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() - started > timeout:
                        raise CacheTimeout(
                            f"the Upstash REST endpoint {self.base_url} was too slow"
                        )
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise _map_error(exc, self.base_url) from None
        return HttpResponse(response.status_code, _headers(response), b"".join(chunks))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class AsyncHttpxTransport:
    """Keep-alive ``httpx.AsyncClient`` created on first use, bound to one event loop."""

    def __init__(self, base_url: str, **client_options: Any) -> None:
        self.base_url = base_url
        self._options = client_options
        self._client: httpx.AsyncClient | None = None
        self._timeouts = _Timeouts()
        self._loop: object = None

    def __repr__(self) -> str:
        return f"AsyncHttpxTransport({self.base_url!r})"

    def _get_client(self) -> httpx.AsyncClient:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client's connections belong to the loop that opened them; a new loop
            # (asyncio.run per invocation) needs a new client.
            import httpx

            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers={"User-Agent": _USER_AGENT}, **self._options
            )
            self._loop = loop
        return self._client

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        import asyncio

        import httpx

        client = self._get_client()
        try:
            async with asyncio.timeout(timeout):
                response = await client.request(
                    request.method,
                    request.path,
                    headers=request.headers,
                    content=request.body,
                    timeout=self._timeouts.get(timeout),
                )
        except TimeoutError:
            raise CacheTimeout(f"the Upstash REST endpoint {self.base_url} was too slow") from None
        except httpx.HTTPError as exc:
            raise _map_error(exc, self.base_url) from None
        return HttpResponse(response.status_code, _headers(response), response.content)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
