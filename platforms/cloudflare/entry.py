"""The Cloudflare Python Worker: the reference API behind ``Default.fetch``.

``wrangler.toml`` deploys this file as the main module (staged with ``core`` by
``bundle.py``). Each request is translated into the core's
neutral ``Request``, answered by ``Api.handle_async`` over an ``AsyncUpstashCache`` whose
transport is the Workers fetch API (:class:`FetchTransport`), and translated back.

Configuration comes from ``self.env`` (``[vars]`` and ``wrangler secret put``), not from
``os.environ``, which Workers leave empty. The API object is built once per isolate for
a given configuration and reused by later requests, like a warm container's clients;
no cache data outlives a request (only the circuit breaker and the rate limiter's
memory of blocked identifiers do).

Nothing raises into the runtime: a bad configuration or a malformed request becomes a
JSON error with a stable code, like every other answer.
"""

from __future__ import annotations

import traceback
from typing import Any
from urllib.parse import urlsplit

from workers import (  # type: ignore[import-not-found,unused-ignore]
    Request as WorkerRequest,
)
from workers import (  # type: ignore[import-not-found,unused-ignore]
    Response,
    WorkerEntrypoint,
)

from continuum.app import Api, ApiError, ApiSettings, Request
from continuum.app import Response as ApiResponse
from continuum.errors import CacheError
from continuum.numbers import parse_decimal
from continuum.platforms.cloudflare.transport import FetchTransport

__all__ = ["ENV_NAMES", "Default", "api_for", "env_values"]

#: The bindings read from ``self.env``: Workers expose no way to list plain-text vars,
#: so the names the toolkit understands are spelled out (``CONTINUUM_CONFIG`` is left
#: out on purpose: a Worker has no files to read it from).
ENV_NAMES = (
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "UPSTASH_SESSIONS_REST_URL",
    "UPSTASH_SESSIONS_REST_TOKEN",
    "UPSTASH_FEDERATION_REST_URL",
    "UPSTASH_FEDERATION_REST_TOKEN",
    "UPSTASH_REDIS_URL",
    "CONTINUUM_API_KEYS",
    "CONTINUUM_CACHE_MODE",
    "CONTINUUM_CACHE_FALLBACK",
    "CONTINUUM_RATE_LIMIT",
    "CONTINUUM_RATE_WINDOW",
    "CONTINUUM_MAX_BODY",
    "CONTINUUM_TIMEOUT",
    "CONTINUUM_MAX_RESPONSE_SIZE",
    "CONTINUUM_CONNECT_TIMEOUT",
    "CONTINUUM_ATTEMPT_TIMEOUT",
    "CONTINUUM_BUDGET",
    "CONTINUUM_MAX_RETRIES",
    "CONTINUUM_FAILURE_THRESHOLD",
    "CONTINUUM_PROBE_INTERVAL",
)

_APIS: dict[tuple[tuple[str, str], ...], Api] = {}
_MAX_APIS = 4  # one per configuration seen by this isolate; normally exactly one


def env_values(env: Any) -> dict[str, str]:
    """The string bindings of ``env`` that the toolkit reads (secrets included)."""
    values: dict[str, str] = {}
    for name in ENV_NAMES:
        value = getattr(env, name, None)
        if isinstance(value, str):
            values[name] = value
    return values


def api_for(values: dict[str, str]) -> Api:
    """The isolate's ``Api`` for this configuration, built on first use.

    A bad configuration raises the ``ApiError`` the other platforms answer with: bad API
    settings are ``internal``, a cache that cannot be configured is ``unavailable`` (the
    reference API's own wording). Messages never contain a token.
    """
    key = tuple(sorted(values.items()))
    api = _APIS.get(key)
    if api is None:
        from continuum.cache import AsyncUpstashCache
        from continuum.config import UpstashConfig

        try:
            settings = ApiSettings.from_env(values)
        except CacheError as exc:
            raise ApiError("internal", f"the Worker is misconfigured: {exc}") from None
        try:
            config = UpstashConfig.from_env(values)
        except CacheError as exc:
            raise ApiError("unavailable", f"the cache is not configured: {exc}") from None
        limit = config.max_response_size
        cache = AsyncUpstashCache(
            config, transport_factory=lambda url: FetchTransport(url, max_response_size=limit)
        )
        api = Api(settings, async_cache=cache)
        if len(_APIS) >= _MAX_APIS:
            _APIS.clear()
        _APIS[key] = api
    return api


class Default(WorkerEntrypoint):  # type: ignore[misc,unused-ignore]
    """The Worker's default entrypoint; workerd makes one instance per request."""

    async def fetch(self, request: Any) -> Any:
        try:
            api = api_for(env_values(self.env))
        except ApiError as error:
            return _to_worker(Api(ApiSettings()).error_response(error))
        try:
            neutral = await _to_neutral(request, api.settings.max_body)
        except ApiError as error:
            return _to_worker(api.error_response(error))
        try:
            return _to_worker(await api.handle_async(neutral))
        except Exception as exc:  # the API promises not to raise; the runtime never sees it
            traceback.print_exc()
            failure = ApiError("internal", f"unexpected error ({type(exc).__name__})")
            return _to_worker(api.error_response(failure, neutral))


async def _to_neutral(request: Any, max_body: int) -> Request:
    """Translate the incoming request; the URL's path is still percent-encoded.

    The runtime hands over a ``workers.Request`` (converted by the SDK) or, depending on
    its version, the JavaScript ``Request`` itself; both are accepted.
    """
    if not isinstance(request, WorkerRequest):
        request = WorkerRequest(request)
    headers = [(str(name), str(value)) for name, value in request.headers.items()]
    declared = next((v for k, v in headers if k.lower() == "content-length"), "")
    length = parse_decimal(declared)
    if length is not None and length > max_body:
        raise ApiError("payload_too_large", f"the body is larger than {max_body} bytes")
    method = str(request.method)
    body = b"" if method in {"GET", "HEAD"} else await _read_body(request, max_body)
    url = urlsplit(str(request.url))
    return Request.build(
        method,
        url.path or "/",
        query_string=url.query,
        headers=headers,
        body=body,
        request_id=next((v for k, v in headers if k.lower() == "cf-ray"), ""),
        raw_path=True,
    )


async def _read_body(request: Any, max_body: int) -> bytes:
    """The body, read from its stream no further than ``max_body`` bytes.

    A chunked upload declares no length, and ``request.bytes()`` would buffer all of it
    (up to the platform's 100 MB) in an isolate that has 128 MB for every request it
    serves; past the limit the stream is cancelled and the request refused.
    """
    stream = request.body
    if getattr(stream, "getReader", None) is None:  # no body (JS null)
        return b""
    reader = stream.getReader()
    chunks: list[bytes] = []
    size = 0
    while True:
        result = await reader.read()
        if result.done:
            return b"".join(chunks)
        chunk = bytes(result.value.to_bytes())
        size += len(chunk)
        if size > max_body:
            await reader.cancel()
            raise ApiError("payload_too_large", f"the body is larger than {max_body} bytes")
        chunks.append(chunk)


def _to_worker(response: ApiResponse) -> Any:
    return Response(response.body, status=response.status, headers=dict(response.headers))
