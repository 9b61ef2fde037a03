"""The Upstash REST protocol, independent of the HTTP server that carries it.

``EmulatorApp.handle`` turns one ``HttpRequest`` into an ``HttpResponse`` the way Upstash
does (see ``docs/EMULATOR.md``): ``POST /`` with a JSON command, the path form
``/set/k/v`` with an optional raw body and query pairs, ``/pipeline``, ``/multi-exec``,
``/subscribe`` and ``/psubscribe`` as server-sent events, base64 encoding on request, a
fresh ``upstash-sync-token`` on every response, Bearer or ``?_token=`` auth with a
read-only token, Upstash's limits and error texts. ``continuum.emulator.asgi`` serves it
on uvicorn; ``EmulatorApp`` itself is also a WSGI callable, for the pytest plugin's
werkzeug server.
"""

from __future__ import annotations

import contextvars
import hmac
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from continuum.emulator import commands, events, replies, request
from continuum.emulator.backend import (
    TOO_DEEP,
    Backend,
    Command,
    ErrorReply,
    NeedsWorker,
    ReplyBudget,
    TransactionDiscarded,
)
from continuum.emulator.request import BadRequest, HttpRequest

log = logging.getLogger("emulator")

MAX_REQUEST_BYTES = 10 * 1024 * 1024
_ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT"})
_ALLOW_HEADER = "GET, HEAD, POST, PUT"
_HANG_UP = frozenset({413, 414, 431})
# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

StartResponse = Callable[..., Any]
_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("inline", default=False)


@dataclass
class HttpResponse:
    """Status, headers and either a body or a stream of chunks (server-sent events)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    stream: Iterator[bytes] | None = None


#: The REST endpoints the request counter tells apart: one command (``POST /`` or the path
#: form), ``/pipeline``, ``/multi-exec``, and the subscriptions.
ENDPOINTS = ("command", "pipeline", "multi-exec", "subscribe")


class Billing:
    """Counts what Upstash would bill (one per command, pipeline and transaction items
    too) and the requests that carried them, in total and per endpoint (round trips)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.commands = 0
        self.requests = 0
        self.endpoints = dict.fromkeys(ENDPOINTS, 0)

    def add(self, commands: int = 0, requests: int = 0, endpoint: str | None = None) -> None:
        with self._lock:
            self.commands += commands
            self.requests += requests
            if endpoint is not None:
                self.endpoints[endpoint] += requests

    def charge(self, count: int, limit: int | None) -> int | None:
        """Bill ``count`` commands unless that passes ``limit``; then the usage it would be."""
        with self._lock:
            usage = self.commands + count
            if limit is not None and usage > limit:
                return usage
            self.commands = usage
            return None

    def reset(self) -> None:
        with self._lock:
            self.commands = 0
            self.requests = 0
            self.endpoints = dict.fromkeys(ENDPOINTS, 0)

    def per_endpoint(self) -> dict[str, int]:
        with self._lock:
            return dict(self.endpoints)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "billed_commands": self.commands,
                "requests": self.requests,
                "requests_by_endpoint": dict(self.endpoints),
            }


class EmulatorApp:
    """The protocol over ``backend``. ``token`` is required; ``readonly_token`` optional."""

    def __init__(
        self,
        backend: Backend,
        *,
        token: str,
        readonly_token: str | None = None,
        daily_limit: int | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_key_bytes: int = commands.MAX_KEY_BYTES,
    ) -> None:
        if not token:
            raise ValueError("the emulator needs a non-empty token")
        self.backend = backend
        self._token = token.encode()
        self._readonly_token = readonly_token.encode() if readonly_token else None
        self.daily_limit = daily_limit
        self.max_request_bytes = max_request_bytes
        self.max_key_bytes = max_key_bytes
        self.billing = Billing()
        self.stopping = threading.Event()
        self._sync_prefix = os.urandom(4).hex()
        self._sync_counter = itertools.count(1)

    def __repr__(self) -> str:
        return f"<EmulatorApp backend={self.backend.describe()!r}>"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """WSGI, for the pytest plugin's werkzeug server."""
        from continuum.emulator.wsgi import serve

        return serve(self, environ, start_response)

    def handle(self, req: HttpRequest, *, inline: bool = False) -> HttpResponse:
        """The response to one request; never raises, except ``NeedsWorker`` when
        ``inline`` (on the server's event loop) and the request may block: it is then
        handed back before anything ran or was billed, to be handled on a worker thread."""
        token = _INLINE.set(inline)
        try:
            return self._serve(req)
        except NeedsWorker:  # uncounted by _serve: counted when the worker serves it
            raise
        except BadRequest as error:
            # Past an HTTP-level limit the rest of the request may still be on the wire.
            close = [("Connection", "close")] if error.status in _HANG_UP else None
            return self._reply(error.status, {"error": error.message}, close)
        except RecursionError:  # a reply nested thousands deep (a script can build one)
            return self._reply(400, {"error": TOO_DEEP})
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("backend unavailable: %s", type(error).__name__)
            message = f"ERR emulator backend unavailable ({type(error).__name__})"
            return self._reply(503, {"error": message})
        except Exception:
            log.exception("emulator failed on a request")
            return self._reply(500, {"error": "ERR internal emulator error"})
        finally:
            _INLINE.reset(token)

    def _serve(self, req: HttpRequest) -> HttpResponse:
        request.check_limits(req)
        method = req.method.upper()
        if method not in _ALLOWED_METHODS:
            return self._reply(405, {"error": "Method Not Allowed"}, [("Allow", _ALLOW_HEADER)])
        segments, query, query_token = request.split_target(req)
        read_only = self._authenticate(req, query_token)
        if read_only is None:
            return self._reply(401, {"error": "Unauthorized"})

        head = segments[0].lower() if segments else b""
        if head == b"__emulator":
            return self._side_endpoint(segments, method, read_only)
        endpoint = _endpoint(head, len(segments), method)
        self.billing.add(requests=1, endpoint=endpoint)
        try:
            return self._command_endpoint(req, method, segments, query, head, read_only)
        except NeedsWorker:
            self.billing.add(requests=-1, endpoint=endpoint)
            raise

    def _command_endpoint(
        self,
        req: HttpRequest,
        method: str,
        segments: list[bytes],
        query: list[bytes],
        head: bytes,
        read_only: bool,
    ) -> HttpResponse:
        if head in (b"subscribe", b"psubscribe") and len(segments) > 1:
            # Subscribing only reads: the read-only token may do it.
            return self._subscribe(head == b"psubscribe", segments[1:])

        encode = req.headers.get("upstash-encoding", "").strip().lower() == "base64"
        resp2 = request.wants_resp2(req, encode)
        if resp2 and not (head == b"multi-exec" and len(segments) == 1):
            try:
                return self._run_request(req, method, segments, query, head, read_only, resp2)
            except BadRequest as error:
                if error.status != 400:
                    raise
                return self._raw_reply(400, replies.resp2_error(error.message))
        return self._run_request(req, method, segments, query, head, read_only, False)

    def _run_request(
        self,
        req: HttpRequest,
        method: str,
        segments: list[bytes],
        query: list[bytes],
        head: bytes,
        read_only: bool,
        resp2: bool,
    ) -> HttpResponse:
        """``resp2``: answer as ``Upstash-Response-Format: resp2`` asks (``encode`` is then
        off: the two cannot be combined)."""
        body = request.body_of(req, self.max_request_bytes) if method in ("POST", "PUT") else b""
        encode = not resp2 and req.headers.get("upstash-encoding", "").strip().lower() == "base64"
        if not segments:
            if not body:
                raise BadRequest("ERR empty command")
            args = request.parse_command(request.load_json(body))
            return self._single(args, read_only, encode, resp2)
        batch_endpoint = head in (b"pipeline", b"multi-exec") and len(segments) == 1
        if batch_endpoint and method in ("POST", "PUT"):
            batch = request.parse_batch(request.load_json(body))
            if head == b"pipeline":
                return self._pipeline(batch, read_only, encode, resp2)
            return self._transaction(batch, read_only, encode)
        args = list(segments)
        if body:
            args.append(body)
        args.extend(query)
        return self._single(args, read_only, encode, resp2)

    # -- auth ----------------------------------------------------------------------------

    def _authenticate(self, req: HttpRequest, query_token: bytes | None) -> bool | None:
        """None when refused; otherwise whether the token is the read-only one."""
        presented = request.presented_token(req, query_token)
        if presented is None:
            return None
        full = hmac.compare_digest(presented, self._token)
        readonly = self._readonly_token is not None and hmac.compare_digest(
            presented, self._readonly_token
        )
        if full:
            return False
        if readonly:
            return True
        return None

    # -- commands ------------------------------------------------------------------------

    def _check(self, args: Command, read_only: bool) -> str | None:
        """Why Upstash (or this backend) would refuse this command before running it."""
        refusal = commands.refusal(args) or self.backend.lacks(args)
        if refusal is not None:
            return refusal
        if read_only:
            denied = commands.denied_to_read_only(args)
            if denied is not None:
                return denied
        return commands.oversized_key(args, self.max_key_bytes) or commands.out_of_range(args)

    def _charge(self, count: int) -> None:
        refused_usage = self.billing.charge(count, self.daily_limit)
        if refused_usage is not None:
            raise BadRequest(
                f"ERR max daily request limit exceeded. Limit: {self.daily_limit}, "
                f"Usage: {refused_usage}. See https://upstash.com/docs/redis/troubleshooting/"
                "max_daily_request_limit for details"
            )

    def _budget(self) -> ReplyBudget:
        return ReplyBudget(self.max_request_bytes)

    def _single(
        self, args: Command, read_only: bool, encode: bool, resp2: bool = False
    ) -> HttpResponse:
        refusal = self._check(args, read_only)
        if refusal is not None:
            raise BadRequest(refusal)
        with self.backend.hold([args], inline=_INLINE.get()):
            self._charge(1)
            outcome = self.backend.run([args], self._budget())
        self.billing.add(commands=outcome.script_calls)
        reply = outcome.replies[0]
        if isinstance(reply, ErrorReply):
            raise BadRequest(replies.upstash_error(args, reply))
        if resp2:
            return self._raw_reply(200, replies.resp2(args, reply))
        return self._reply(200, {"result": replies.result(args, reply, encode)})

    def _pipeline(
        self, batch: list[Command], read_only: bool, encode: bool, resp2: bool = False
    ) -> HttpResponse:
        checks = [self._check(args, read_only) for args in batch]
        runnable = [args for args, refusal in zip(batch, checks, strict=True) if refusal is None]
        self._charge(len(runnable))
        outcome = self.backend.run(runnable, self._budget()) if runnable else None
        if outcome is not None:
            self.billing.add(commands=outcome.script_calls)
        answers = iter(outcome.replies if outcome is not None else [])
        if resp2:
            wire = [
                replies.resp2_error(refusal)
                if refusal is not None
                else _resp2_slot(args, next(answers))
                for args, refusal in zip(batch, checks, strict=True)
            ]
            return self._raw_reply(200, b"".join(wire))
        out: list[dict[str, Any]] = []
        for args, refusal in zip(batch, checks, strict=True):
            if refusal is not None:
                out.append({"error": refusal})
            else:
                out.append(replies.slot(args, next(answers), encode))
        return self._reply(200, out)

    def _transaction(self, batch: list[Command], read_only: bool, encode: bool) -> HttpResponse:
        for args in batch:
            refusal = self._check(args, read_only)
            if refusal is not None:
                raise BadRequest(refusal)
        try:
            with self.backend.hold(batch, inline=_INLINE.get()):
                self._charge(len(batch))
                outcome = self.backend.transaction(batch, self._budget())
        except TransactionDiscarded as discarded:
            raise BadRequest(replies.upstash_error(None, ErrorReply(discarded.message))) from None
        self.billing.add(commands=outcome.script_calls)
        out = [
            replies.slot(args, reply, encode)
            for args, reply in zip(batch, outcome.replies, strict=True)
        ]
        return self._reply(200, out)

    # -- pub/sub -------------------------------------------------------------------------

    def _subscribe(self, patterns: bool, names: Sequence[bytes]) -> HttpResponse:
        for name in names:
            error = commands.oversized_key([b"GET", name], self.max_key_bytes)
            if error is not None:
                raise BadRequest(error)
        self._charge(1)
        pubsub = self.backend.pubsub()
        if patterns:
            pubsub.psubscribe(*names)
        else:
            pubsub.subscribe(*names)
        headers = [
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
            ("upstash-sync-token", self._sync_token()),
        ]
        return HttpResponse(200, headers, stream=events.stream(pubsub, self.stopping))

    # -- side endpoints ------------------------------------------------------------------

    def _side_endpoint(
        self, segments: Sequence[bytes], method: str, read_only: bool
    ) -> HttpResponse:
        action = segments[1].lower() if len(segments) > 1 else b""
        if action == b"stats" and method in ("GET", "HEAD", "POST"):
            return self._reply(200, self.billing.snapshot())
        if action == b"reset" and method in ("POST", "PUT"):
            if read_only:  # a harmless token must not be able to hide what was billed
                raise BadRequest("NOPERM the read-only token may not reset the counters", 403)
            self.billing.reset()
            return self._reply(200, {"result": "OK"})
        raise BadRequest(
            "ERR unknown emulator endpoint: use GET /__emulator/stats or POST /__emulator/reset",
            404,
        )

    # -- responses -----------------------------------------------------------------------

    def _sync_token(self) -> str:
        return f"{self._sync_prefix}-{next(self._sync_counter)}"

    def _raw_reply(self, status: int, body: bytes) -> HttpResponse:
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(body))),
            ("upstash-sync-token", self._sync_token()),
        ]
        return HttpResponse(status, headers, body)

    def _reply(
        self, status: int, payload: object, extra: list[tuple[str, str]] | None = None
    ) -> HttpResponse:
        body = _ENCODER.encode(payload).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("upstash-sync-token", self._sync_token()),
        ]
        if extra:
            headers.extend(extra)
        return HttpResponse(status, headers, body)


def _resp2_slot(args: Command, reply: object) -> bytes:
    if isinstance(reply, ErrorReply):
        return replies.resp2_error(replies.upstash_error(args, reply))
    return replies.resp2(args, reply)  # type: ignore[arg-type]


def _endpoint(head: bytes, segments: int, method: str) -> str:
    """Which endpoint the request counter files a request under (see ``ENDPOINTS``)."""
    if head in (b"subscribe", b"psubscribe") and segments > 1:
        return "subscribe"
    if head in (b"pipeline", b"multi-exec") and segments == 1 and method in ("POST", "PUT"):
        return head.decode()
    return "command"


STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    414: "414 URI Too Long",
    431: "431 Request Header Fields Too Large",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
