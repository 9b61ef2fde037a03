"""An ``AsyncTransport`` over the Workers fetch API, for Cloudflare Python Workers.

httpx cannot open sockets inside a Worker, and the SDK's ``workers.fetch`` has no
timeout, so this talks to the runtime's ``fetch`` directly: one request, one response,
bounded by ``timeout`` through an ``AbortController`` (which also cancels the underlying
subrequest, so an abandoned call stops using one of the Worker's six connections) and
an ``asyncio`` deadline around both the headers and the body.

Errors are mapped to the classes the retry policy understands (see ``continuum.rest.transport``):
a refused or unresolvable connection is ``ConnectionFailed`` (safe to retry anything);
an attempt past its timeout is ``CacheTimeout``; any other network failure, or a body
that breaks off, is ``ServerError``, because the request may have reached Upstash.
Messages name the endpoint, never the token (it travels only in the headers).

The ``js`` and ``pyodide`` modules exist only under Pyodide; they are imported when the
first request is sent, so this module can be imported (and type-checked) anywhere.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from continuum.config import DEFAULT_MAX_RESPONSE_SIZE
from continuum.errors import (
    CacheTimeout,
    ConfigurationError,
    ConnectionFailed,
    ResponseTooLarge,
    ServerError,
)
from continuum.rest.protocol import HttpRequest, HttpResponse
from continuum.rest.transport import ResponseCap

__all__ = ["FetchTransport"]

# Substrings of the runtime's error text that mean the request never left: refused,
# unreachable or unresolvable hosts (Node's undici and workerd word these differently).
_NEVER_SENT = (
    "ECONNREFUSED",
    "ENOTFOUND",
    "EAI_AGAIN",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "connection refused",
    "DNS lookup failed",
    "getaddrinfo",
)


class FetchTransport:
    """Sends Upstash REST requests with the Worker's ``fetch``.

    ``base_url`` is the database's REST URL; request paths are appended to it. One
    instance per database, kept at module level so the isolate's connection pool is
    reused across requests.
    """

    def __init__(
        self, base_url: str, *, max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ConfigurationError("the Upstash REST URL must start with https://")
        self.base_url = base_url.rstrip("/")
        self._cap = ResponseCap(self.base_url, max_response_size)

    def __repr__(self) -> str:
        return f"FetchTransport({self.base_url!r})"

    async def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        """Send ``request`` and read the whole answer within ``timeout`` seconds."""
        js = importlib.import_module("js")
        controller = js.AbortController.new()
        init = self._init(request, controller.signal)
        url = self.base_url + request.path
        try:
            async with asyncio.timeout(max(timeout, 0.001)):
                response = await self._fetch(js, url, init)
                body = await self._read(response, controller)
        except TimeoutError:
            controller.abort()
            raise CacheTimeout(f"the Upstash REST endpoint {self.base_url} was too slow") from None
        headers = {str(name).lower(): str(value) for name, value in response.headers.entries()}
        return HttpResponse(int(response.status), headers, body)

    async def aclose(self) -> None:
        """Nothing to release: the runtime owns the connections."""

    def _init(self, request: HttpRequest, signal: Any) -> Any:
        """The ``RequestInit`` dictionary, converted to a plain JS object."""
        ffi = importlib.import_module("pyodide.ffi")
        js = importlib.import_module("js")
        init: dict[str, Any] = {
            "method": request.method,
            "headers": dict(request.headers),
            "signal": signal,
            # Like httpx, never follow a redirect: it would carry the token elsewhere.
            "redirect": "manual",
        }
        if request.body and request.method not in {"GET", "HEAD"}:
            init["body"] = ffi.to_js(request.body)
        return ffi.to_js(init, dict_converter=js.Object.fromEntries)

    async def _fetch(self, js: Any, url: str, init: Any) -> Any:
        ffi = importlib.import_module("pyodide.ffi")
        try:
            return await js.fetch(url, init)
        except ffi.JsException as exc:
            text = _error_text(exc)
            if "AbortError" in text or "TimeoutError" in text:
                raise CacheTimeout(
                    f"the Upstash REST endpoint {self.base_url} was too slow"
                ) from None
            if any(marker.lower() in text.lower() for marker in _NEVER_SENT):
                raise ConnectionFailed(
                    f"could not connect to the Upstash REST endpoint {self.base_url}"
                ) from None
            raise ServerError(
                f"the request to the Upstash REST endpoint {self.base_url} failed: "
                f"{_first_line(text)}"
            ) from None

    async def _read(self, response: Any, controller: Any) -> bytes:
        """The body, read chunk by chunk so an answer announced or grown past
        ``max_response_size`` is refused (and its subrequest aborted) instead of filling
        the isolate's 128 MB."""
        ffi = importlib.import_module("pyodide.ffi")
        try:
            announced = response.headers.get("content-length")  # a JS null when absent
            length = announced if isinstance(announced, str) else None
            body = self._cap.body(int(response.status), length)
            stream = response.body
            if stream is not None:  # None: no body at all (e.g. 204)
                reader = stream.getReader()
                while not (part := await reader.read()).done:
                    body.add(bytes(part.value.to_bytes()))
        except ResponseTooLarge:
            controller.abort()
            raise
        except ffi.JsException as exc:
            raise ServerError(
                f"the answer from the Upstash REST endpoint {self.base_url} broke off: "
                f"{_first_line(_error_text(exc))}"
            ) from None
        return body.data()


def _error_text(exc: BaseException) -> str:
    """The JS error's name, message and (Node) cause, as one string to classify."""
    parts = [str(exc)]
    js_error = getattr(exc, "js_error", None)
    for attr in ("name", "message"):
        value = getattr(js_error, attr, None)
        if value is not None:
            parts.append(str(value))
    cause = getattr(js_error, "cause", None)
    if cause is not None:
        for attr in ("code", "message"):
            value = getattr(cause, attr, None)
            if value is not None:
                parts.append(str(value))
    return " ".join(parts)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "unknown error"
