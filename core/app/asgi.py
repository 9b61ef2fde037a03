"""A raw ASGI callable over ``Api.handle_async``, for any ASGI server (uvicorn, Hypercorn).

No framework: Starlette or FastAPI would add 150-570 ms to every cold start for
routing the API already does. The body is read up to the configured maximum and no
further, so a huge upload costs nothing beyond the 413 it gets. Lifespan messages are
acknowledged (servers that send them get an answer) but nothing is done on them:
the API and its client are built before the server starts and reused by every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from continuum.app.api import Api
from continuum.app.http import ApiError, Request, Response

__all__ = ["AsgiApp", "Scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AsgiApp:
    """ASGI 3 application serving ``api``.

    ``remaining`` maps the ASGI scope to the seconds the request may still take;
    ``None`` means the API's default.
    """

    def __init__(
        self,
        api: Api,
        *,
        remaining: Callable[[Scope], float | None] | None = None,
    ):
        self.api = api
        self._remaining = remaining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self._respond(scope, receive)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        limit = self.api.settings.max_body
        body, too_large = await _read_body(receive, limit)
        raw_path = scope.get("raw_path")
        try:
            request = Request.build(
                scope.get("method", "GET"),
                raw_path.decode("latin-1") if isinstance(raw_path, bytes) else scope["path"],
                raw_path=isinstance(raw_path, bytes),
                query_string=scope.get("query_string", b""),
                headers=[(k, v) for k, v in scope.get("headers", [])],
                body=body,
                remaining=self._remaining(scope) if self._remaining else None,
            )
        except ApiError as error:
            return self.api.error_response(error)
        if too_large:
            refusal = ApiError("payload_too_large", f"the body is larger than {limit} bytes")
            return self.api.error_response(refusal, request)
        return await self.api.handle_async(request)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """Read the request body, stopping once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
