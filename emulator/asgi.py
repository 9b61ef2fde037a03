"""The emulator as an ASGI application, served by uvicorn (``continuum.emulator.serving``).

Commands block (redis-py on a socket, or fakeredis's Lua under its server lock), so each
request runs on a worker thread while the event loop keeps accepting and parsing other
requests: a script running for seconds holds one worker, not the server. A server-sent
event stream is fed by a thread of its own and ends within a poll interval of the
client hanging up, which unsubscribes it (``PUBLISH`` stops counting it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from continuum.emulator.app import EmulatorApp
from continuum.emulator.backend import NeedsWorker
from continuum.emulator.request import HttpRequest

log = logging.getLogger("emulator")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WORKERS = 64
# A refused body is still counted up to this size (for the 413's "Actual:"), then dropped.
_COUNT_LIMIT = 64 * 1024 * 1024


class AsgiEmulator:
    """ASGI 3 application serving ``app`` (an ``EmulatorApp``)."""

    def __init__(self, app: EmulatorApp, *, workers: int = WORKERS) -> None:
        self.app = app
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="emulator")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not Upstash's
        req = await _request(scope, receive, self.app.max_request_bytes)
        # Quick fakeredis commands run right here: a thread hop would cost more than they
        # do. Anything that may block (scripts, a real Redis) goes to a worker.
        try:
            if self.app.backend.kind != "fakeredis":
                raise NeedsWorker
            response = self.app.handle(req, inline=True)
        except NeedsWorker:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self._executor, self.app.handle, req)
        # The method and path only: a ``?_token=`` query never reaches a log line.
        log.debug("%s %s %s", req.method, req.path[:200].decode("latin-1"), response.status)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if response.stream is None:
            await send({"type": "http.response.body", "body": response.body})
            return
        await _stream(response.stream, receive, send)


async def _request(scope: Scope, receive: Receive, limit: int) -> HttpRequest:
    headers: dict[str, str] = {}
    longest = 0
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
        longest = max(longest, len(raw_name) + len(raw_value) + 2)
    req = HttpRequest(
        scope.get("method", "GET"),
        scope.get("raw_path") or scope.get("path", "/").encode("latin-1"),
        scope.get("query_string", b""),
        headers,
        header_count=len(scope.get("headers", [])),
        longest_header=longest,
    )
    if req.method.upper() not in ("GET", "HEAD"):
        req.body, req.body_refused = await _body(receive, limit, headers.get("content-length"))
    return req


async def _body(receive: Receive, limit: int, declared: str | None) -> tuple[bytes, int | None]:
    """The body up to ``limit`` bytes; past it, nothing kept and the size it has."""
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return b"", int(declared)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif chunks:
            chunks.clear()
        if not message.get("more_body", False) or size > _COUNT_LIMIT:
            break
    if size > limit:
        return b"", size
    return b"".join(chunks), None


async def _stream(chunks: Iterator[bytes], receive: Receive, send: Send) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    gone = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if gone.is_set():
                    break
                if chunk:
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            with contextlib.suppress(RuntimeError):  # the loop closed first
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=produce, daemon=True, name="emulator-events").start()
    hangup = asyncio.ensure_future(_disconnected(receive))
    try:
        while True:
            item = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({item, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if item not in done:
                item.cancel()
                return
            chunk = item.result()
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        gone.set()
        hangup.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
