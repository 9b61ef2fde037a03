"""``continuum dev``: the reference API on loopback over an embedded Upstash emulator.

The fastest way to see the toolkit work: no account, no token to create, no internet.
It starts the emulator (fakeredis in-process, or ``--redis-url`` for a real Redis),
serves the API (its ASGI app) on uvicorn, and prints the
URL, a development API key and curl commands to paste. ``--use-env`` serves over the
Upstash database named by ``UPSTASH_REDIS_REST_URL``/``_TOKEN`` instead.

Only loopback addresses are accepted: this is a development server (no TLS, a printed
key), not a way to expose the API.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import secrets
import sys
from typing import Any

from continuum.app import Api, ApiSettings, AsgiApp
from continuum.errors import CacheError

#: Timings for the embedded emulator, which answers from this process (seconds): one
#: attempt, a connect, and a call or request (unless CONTINUUM_TIMEOUT says otherwise).
IN_PROCESS_ATTEMPT, IN_PROCESS_CONNECT, IN_PROCESS_BUDGET = 10.0, 5.0, 30.0

__all__ = ["DevServer", "configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0 = any)")
    parser.add_argument(
        "--api-key",
        help="the API key to accept (default: CONTINUUM_API_KEYS, else a fresh random key)",
    )
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument(
        "--redis-url", help="run the embedded emulator over this Redis instead of fakeredis"
    )
    backend.add_argument(
        "--use-env",
        action="store_true",
        help="use the Upstash database from UPSTASH_REDIS_REST_URL/_TOKEN, no emulator",
    )


class DevServer:
    """The API (``AsgiApp``) on uvicorn, in a background thread; ``start()`` serves."""

    def __init__(
        self, api: Api, host: str = "127.0.0.1", port: int = 0, *, idle_timeout: float = 30.0
    ) -> None:
        host = _loopback(host)
        from continuum.emulator.serving import UvicornThread

        self.api = api
        self._host = host
        # An idle keep-alive connection is closed after ``idle_timeout`` seconds, and so is
        # one whose body stops arriving (uvicorn itself would wait for it for ever).
        self.server = UvicornThread(
            _BodyDeadline(AsgiApp(api), idle_timeout),
            host,
            port,
            timeout_keep_alive=max(1, int(idle_timeout)),
            name="dev",
        )

    @property
    def url(self) -> str:
        return f"http://{_url_host(self._host)}:{self.server.port}"

    def start(self) -> DevServer:
        self.server.start()
        return self

    def serve_forever(self) -> None:
        self.start()
        while self.server.is_alive():
            self.server.join(0.5)

    def stop(self) -> None:
        self.server.stop()


class _BodyTimeout(Exception):
    pass


class _BodyDeadline:
    """ASGI middleware: a request body that stops arriving for ``seconds`` gets a JSON 408
    and the connection is closed."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def timed_receive() -> Any:
            try:
                return await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                raise _BodyTimeout from None

        async def watched_send(message: Any) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, watched_send)
        except _BodyTimeout:
            if started:
                raise
            body = json.dumps({"error": "request_timeout", "message": "the body never arrived"})
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 408, "headers": headers})
            await send({"type": "http.response.body", "body": body.encode()})


def run(args: argparse.Namespace) -> int:
    try:
        _loopback(args.host)
    except ValueError as exc:
        print(f"continuum dev: {exc}", file=sys.stderr)
        return 2
    try:
        settings = ApiSettings.from_env()
    except CacheError as exc:
        print(f"continuum dev: {exc}", file=sys.stderr)
        return 2
    key = args.api_key or (settings.api_keys[0] if settings.api_keys else None)
    key = key or f"dev-{secrets.token_urlsafe(18)}"
    if key not in settings.api_keys:
        settings = settings.replace(api_keys=(*settings.api_keys, key))
    from continuum.cache import AsyncUpstashCache, UpstashCache

    emulator = None
    sdk_env = ""
    if args.use_env:
        try:
            cache = UpstashCache(mode="rest")
            async_cache = AsyncUpstashCache(mode="rest")
        except CacheError as exc:
            print(f"continuum dev --use-env: {exc}", file=sys.stderr)
            return 2
        backend_text = "the Upstash database from UPSTASH_REDIS_REST_URL"
    else:
        from continuum.emulator import EmulatorServer

        try:
            emulator = EmulatorServer(args.redis_url or "fakeredis", token=secrets.token_hex(16))
            emulator.start()
        except (ValueError, OSError, CacheError) as exc:
            print(
                f"continuum dev: cannot start the emulator over {args.redis_url}: {exc}",
                file=sys.stderr,
            )
            return 2
        # The emulator runs in this process: a slow answer means load, not an outage. The
        # production timings (an outage costs a request about a second) would let a burst
        # of clients open the circuit and keep their writes in per-request memory.
        timings: dict[str, Any] = {
            "timeout": IN_PROCESS_ATTEMPT,
            "connect_timeout": IN_PROCESS_CONNECT,
            "budget": IN_PROCESS_BUDGET,
        }
        cache = UpstashCache(rest_url=emulator.url, rest_token=emulator.token, **timings)
        # uvicorn serves the API's async path; the sync client is for the checks here.
        async_cache = AsyncUpstashCache(rest_url=emulator.url, rest_token=emulator.token, **timings)
        if "CONTINUUM_TIMEOUT" not in os.environ:
            settings = settings.replace(timeout=IN_PROCESS_BUDGET)
        if args.redis_url and not cache.ping():
            # Serving anyway would answer every request from the fallback, which looks
            # like a working API with a cache that forgets everything.
            print(
                f"continuum dev: no Redis answers at {args.redis_url} (is it running?)",
                file=sys.stderr,
            )
            emulator.stop()
            return 1
        backend_text = f"the embedded emulator at {emulator.url} ({emulator.backend.describe()})"
        sdk_env = f"UPSTASH_REDIS_REST_URL={emulator.url} UPSTASH_REDIS_REST_TOKEN={emulator.token}"
    try:
        api = Api(settings, cache=cache, async_cache=async_cache)
        server = DevServer(api, args.host, args.port)
    except OSError as exc:
        where = f"{_url_host(_loopback(args.host))}:{args.port}"
        print(f"continuum dev: cannot listen on {where}: {exc}", file=sys.stderr)
        if emulator is not None:
            emulator.stop()
        return 1
    print(_banner(server.url, key, backend_text, sdk_env), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if emulator is not None:
            emulator.stop()
    return 0


def _banner(url: str, key: str, backend: str, sdk_env: str = "") -> str:
    """What a newcomer needs: where, with which key, which layers, and what to paste."""
    from continuum.app import LAYERS

    auth = f'-H "Authorization: Bearer {key}"'
    emulator = (
        ["", "your own code (any Upstash client) can use the same emulator:", f"  export {sdk_env}"]
        if sdk_env
        else []
    )
    return "\n".join(
        [
            f"continuum dev: the reference API on {url}",
            f"  backend: {backend}",
            f"  API key: {key}   (development only; set CONTINUUM_API_KEYS to choose it)",
            f"  layers:  {', '.join(LAYERS)}   (/v1/cache/<layer>/<key>)",
            *emulator,
            "",
            "try:",
            f"  curl {url}/health",
            f'  curl -X PUT {auth} -d \'{{"value": {{"hello": "world"}}, "ttl": 60}}\' '
            f"{url}/v1/cache/query/greeting",
            f"  curl {auth} {url}/v1/cache/query/greeting",
            f'  curl -X POST {auth} -d \'{{"prefix": "greet"}}\' {url}/v1/cache/query/invalidate',
            f"  curl -X POST {auth} {url}/v1/ratelimit/user-42",
            f"  curl {auth} {url}/v1/stats",
            "",
            "Each request logs one JSON line here. Ctrl-C stops.",
        ]
    )


def _port(text: str) -> int:
    """``--port``: a TCP port, refused by argparse with a usage line rather than a traceback."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0 picks a free one)")
    return int(text)


def _loopback(host: str) -> str:
    """The address to bind for ``--host``: ``localhost`` or a loopback IP literal, an IPv6
    one with or without its URL brackets (``[::1]``, ``::1``); anything else is refused."""
    if host == "localhost":
        return host
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        address = None
    if address is None or not address.is_loopback or (literal != host and address.version != 6):
        raise ValueError(f"{host!r} is not a loopback address: the dev server is for this machine")
    return str(address)


def _url_host(host: str) -> str:
    """``host`` as a URL's authority spells it: an IPv6 literal in brackets, once."""
    return f"[{host}]" if ":" in host else host
