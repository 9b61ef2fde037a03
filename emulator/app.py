"""The Upstash REST protocol as a WSGI application.

One object, ``EmulatorApp``, turns HTTP requests into Redis commands the way Upstash
does (see ``docs/EMULATOR.md`` and the protocol notes it links): ``POST /`` with a JSON
command, the path form ``/set/k/v`` with an optional raw body and query pairs,
``/pipeline``, ``/multi-exec``, ``/subscribe`` and ``/psubscribe`` as server-sent events,
base64 encoding on request, a fresh ``upstash-sync-token`` on every response, Bearer or
``?_token=`` auth with a read-only token, Upstash's limits and error texts. It is plain
WSGI on purpose: the CLI's threaded server and the pytest-httpserver plugin serve the
same object.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from continuum.emulator import commands, request
from continuum.emulator.backend import (
    TOO_DEEP,
    Backend,
    Command,
    ErrorReply,
    Reply,
    TransactionDiscarded,
)
from continuum.emulator.request import BadRequest

log = logging.getLogger("emulator")

MAX_REQUEST_BYTES = 10 * 1024 * 1024
_ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT"})
_ALLOW_HEADER = "GET, HEAD, POST, PUT"
_KEEPALIVE_SECONDS = 15.0
_SCRIPT_COMMANDS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"})
# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

StartResponse = Callable[..., Any]


class Billing:
    """Counts what Upstash would bill: one per command, pipeline and transaction items too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.commands = 0
        self.requests = 0

    def add(self, commands: int = 0, requests: int = 0) -> None:
        with self._lock:
            self.commands += commands
            self.requests += requests

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

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"billed_commands": self.commands, "requests": self.requests}


class EmulatorApp:
    """The WSGI callable. ``token`` is required; ``readonly_token`` is optional."""

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

    # -- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._serve(environ, start_response)
        except BadRequest as error:
            return self._reply(start_response, error.status, {"error": error.message})
        except RecursionError:  # a reply nested thousands deep (a script can build one)
            return self._reply(start_response, 400, {"error": TOO_DEEP})
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("backend unavailable: %s", type(error).__name__)
            message = f"ERR emulator backend unavailable ({type(error).__name__})"
            return self._reply(start_response, 503, {"error": message})
        except Exception:
            log.exception("emulator failed on a request")
            return self._reply(start_response, 500, {"error": "ERR internal emulator error"})

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in _ALLOWED_METHODS:
            request.drain(environ)
            return self._reply(
                start_response, 405, {"error": "Method Not Allowed"}, [("Allow", _ALLOW_HEADER)]
            )
        segments, query, query_token = request.split_target(environ)
        read_only = self._authenticate(environ, query_token)
        if read_only is None:
            request.drain(environ)
            return self._reply(start_response, 401, {"error": "Unauthorized"})

        head = segments[0].lower() if segments else b""
        if head == b"__emulator":
            request.drain(environ)
            return self._side_endpoint(segments, method, read_only, start_response)
        self.billing.add(requests=1)
        if head in (b"subscribe", b"psubscribe") and len(segments) > 1:
            request.drain(environ)
            # Subscribing only reads: the read-only token may do it.
            return self._subscribe(head == b"psubscribe", segments[1:], start_response)

        body = b""
        if method in ("POST", "PUT"):
            body = request.read_body(environ, self.max_request_bytes)
        encode = environ.get("HTTP_UPSTASH_ENCODING", "").strip().lower() == "base64"
        if not segments:
            if not body:
                raise BadRequest("ERR empty command")
            args = request.parse_command(request.load_json(body))
            return self._single(args, read_only, encode, start_response)
        batch_endpoint = head in (b"pipeline", b"multi-exec") and len(segments) == 1
        if batch_endpoint and method in ("POST", "PUT"):
            batch = request.parse_batch(request.load_json(body))
            if head == b"pipeline":
                return self._pipeline(batch, read_only, encode, start_response)
            return self._transaction(batch, read_only, encode, start_response)
        args = list(segments)
        if body:
            args.append(body)
        args.extend(query)
        return self._single(args, read_only, encode, start_response)

    # -- auth ----------------------------------------------------------------------------

    def _authenticate(self, environ: dict[str, Any], query_token: bytes | None) -> bool | None:
        """None when refused; otherwise whether the token is the read-only one."""
        presented = request.presented_token(environ, query_token)
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
        """Why Upstash would refuse this command before running it, or None."""
        refusal = commands.refusal(args)
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

    def _bounded(self, reply: Reply) -> Reply:
        """The reply, or Upstash's error when it alone is over the request size limit (a
        pipeline's total is not limited, only each command's reply)."""
        size = _reply_bytes(reply)
        if size > self.max_request_bytes:
            return ErrorReply(request.too_large(self.max_request_bytes, size))
        return reply

    def _single(
        self, args: Command, read_only: bool, encode: bool, start_response: StartResponse
    ) -> Iterable[bytes]:
        refusal = self._check(args, read_only)
        if refusal is not None:
            raise BadRequest(refusal)
        self._charge(1)
        outcome = self.backend.run([args])
        self.billing.add(commands=outcome.script_calls)
        reply = self._bounded(outcome.replies[0])
        if isinstance(reply, ErrorReply):
            raise BadRequest(_upstash_error(args, reply))
        return self._reply(start_response, 200, {"result": _result(args, reply, encode)})

    def _pipeline(
        self, batch: list[Command], read_only: bool, encode: bool, start_response: StartResponse
    ) -> Iterable[bytes]:
        checks = [self._check(args, read_only) for args in batch]
        runnable = [args for args, refusal in zip(batch, checks, strict=True) if refusal is None]
        self._charge(len(runnable))
        outcome = self.backend.run(runnable) if runnable else None
        if outcome is not None:
            self.billing.add(commands=outcome.script_calls)
        replies = iter(outcome.replies if outcome is not None else [])
        out: list[dict[str, Any]] = []
        for args, refusal in zip(batch, checks, strict=True):
            if refusal is not None:
                out.append({"error": refusal})
            else:
                out.append(_slot(args, self._bounded(next(replies)), encode))
        return self._reply(start_response, 200, out)

    def _transaction(
        self, batch: list[Command], read_only: bool, encode: bool, start_response: StartResponse
    ) -> Iterable[bytes]:
        for args in batch:
            refusal = self._check(args, read_only)
            if refusal is not None:
                raise BadRequest(refusal)
        self._charge(len(batch))
        try:
            outcome = self.backend.transaction(batch)
        except TransactionDiscarded as discarded:
            raise BadRequest(_upstash_error(None, ErrorReply(discarded.message))) from None
        self.billing.add(commands=outcome.script_calls)
        replies = outcome.replies
        out = [
            _slot(args, self._bounded(reply), encode)
            for args, reply in zip(batch, replies, strict=True)
        ]
        return self._reply(start_response, 200, out)

    # -- pub/sub -------------------------------------------------------------------------

    def _subscribe(
        self, patterns: bool, names: Sequence[bytes], start_response: StartResponse
    ) -> Iterable[bytes]:
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
        start_response("200 OK", headers)
        return self._events(pubsub)

    def _events(self, pubsub: Any) -> Iterator[bytes]:
        idle = 0.0
        poll = 0.25
        try:
            while not self.stopping.is_set():
                try:
                    message = pubsub.get_message(timeout=poll)
                except (RedisConnectionError, RedisTimeoutError, OSError, ValueError):
                    return  # the backend went away (or is shutting down): end the stream
                if message is None:
                    idle += poll
                    if idle >= _KEEPALIVE_SECONDS:
                        idle = 0.0
                        yield b": keepalive\n\n"
                    else:
                        yield b""  # lets the server check the client is still there
                    continue
                idle = 0.0
                yield _event_line(message)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()

    # -- side endpoints ------------------------------------------------------------------

    def _side_endpoint(
        self,
        segments: Sequence[bytes],
        method: str,
        read_only: bool,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        action = segments[1].lower() if len(segments) > 1 else b""
        if action == b"stats" and method in ("GET", "HEAD", "POST"):
            return self._reply(start_response, 200, self.billing.snapshot())
        if action == b"reset" and method in ("POST", "PUT"):
            if read_only:  # a harmless token must not be able to hide what was billed
                raise BadRequest("NOPERM the read-only token may not reset the counters", 403)
            self.billing.reset()
            return self._reply(start_response, 200, {"result": "OK"})
        raise BadRequest(
            "ERR unknown emulator endpoint: use GET /__emulator/stats or POST /__emulator/reset",
            404,
        )

    # -- responses -----------------------------------------------------------------------

    def _sync_token(self) -> str:
        return f"{self._sync_prefix}-{next(self._sync_counter)}"

    def _reply(
        self,
        start_response: StartResponse,
        status: int,
        payload: object,
        extra: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        body = _ENCODER.encode(payload).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("upstash-sync-token", self._sync_token()),
        ]
        if extra:
            headers.extend(extra)
        start_response(_STATUS_LINES.get(status, f"{status} Error"), headers)
        return [body]


_STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    413: "413 Payload Too Large",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


# -- replies ---------------------------------------------------------------------------


def _upstash_error(args: Command | None, reply: ErrorReply) -> str:
    """Redis's error text, with Upstash's own words where they differ: Redis's "unknown
    command" for the command itself (not one a script called) is Upstash's refusal."""
    if (
        args is not None
        and reply.message.startswith("ERR unknown command")
        and commands.name_of(args) not in _SCRIPT_COMMANDS
    ):
        return commands.unknown_command(args)
    return reply.message


def _reply_bytes(reply: Reply) -> int:
    """About what a reply weighs on the wire: its strings' bytes, its numbers' digits."""
    if isinstance(reply, bytes):
        return len(reply)
    if isinstance(reply, list):
        return sum(_reply_bytes(item) for item in reply)
    if isinstance(reply, int):
        return len(str(reply))
    return 0


def _encode(reply: Reply, encode: bool) -> Any:
    if reply.__class__ is bytes:
        assert isinstance(reply, bytes)
        if encode:
            return base64.b64encode(reply).decode("ascii")
        return reply.decode("utf-8", "replace")
    if isinstance(reply, list):
        return [_encode(item, encode) for item in reply]
    if isinstance(reply, ErrorReply):
        return reply.message
    return reply


def _result(args: Command, reply: Reply, encode: bool) -> Any:
    if encode and reply == b"OK" and commands.replies_status_ok(args):
        return "OK"
    return _encode(reply, encode)


def _slot(args: Command, reply: Reply, encode: bool) -> dict[str, Any]:
    if isinstance(reply, ErrorReply):
        return {"error": _upstash_error(args, reply)}
    return {"result": _result(args, reply, encode)}


def _event_line(message: dict[str, Any]) -> bytes:
    kind = message["type"]
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    fields = [kind]
    if kind == "pmessage":
        fields.append(_text(message.get("pattern")))
    fields.append(_text(message.get("channel")))
    fields.append(_text(message.get("data")))
    return ("data: " + ",".join(fields) + "\n\n").encode()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
