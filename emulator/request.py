"""Reading an Upstash REST request: target, token, limits and JSON commands.

A request reaches the app as an ``HttpRequest`` built by the server adapter (``asgi``
for uvicorn, ``wsgi`` for the pytest plugin's werkzeug server). Everything here turns
that untrusted input into argument lists, or raises ``BadRequest`` with the
``{"error": ...}`` text Upstash would answer: a malformed body never reaches the
backend and never becomes a traceback. The path form is split on the *raw* target
before percent-decoding, so an encoded ``/`` stays inside its segment and every byte
value survives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from continuum.emulator.resp import Command, too_large

MAX_TARGET_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100


class BadRequest(Exception):
    """A request Upstash answers with ``{"error": message}`` and an HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class HttpRequest:
    """One HTTP request as the emulator needs it. ``body_refused`` is set (to the size
    seen) when the body was over the size limit and was not kept."""

    method: str
    path: bytes  # raw, still percent-encoded
    query: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    body_refused: int | None = None
    header_count: int = 0
    longest_header: int = 0


def check_limits(req: HttpRequest) -> None:
    """The HTTP-level limits, as JSON errors (414, 431) rather than a server's HTML page."""
    if len(req.path) + len(req.query) > MAX_TARGET_BYTES:
        raise BadRequest("ERR request target too long", 414)
    if req.header_count > MAX_HEADERS:
        raise BadRequest("ERR too many headers", 431)
    if req.longest_header > MAX_HEADER_BYTES:
        raise BadRequest("ERR header line too long", 431)


def split_target(req: HttpRequest) -> tuple[list[bytes], list[bytes], bytes | None]:
    """Path segments (percent-decoded bytes) and query pairs flattened, ``_token`` removed."""
    path = req.path
    if path.startswith((b"http://", b"https://")):
        path = b"/" + path.split(b"/", 3)[-1]
    segments = [unquote_to_bytes(part) for part in path.split(b"/")[1:]]
    if segments and segments[-1] == b"":
        segments.pop()
    # A URL pasted with a trailing slash makes clients ask for "//pipeline": a command name
    # is never empty, so leading empty segments are dropped (inner ones are empty values).
    while segments and segments[0] == b"":
        segments.pop(0)
    query: list[bytes] = []
    token: bytes | None = None
    for pair in req.query.split(b"&") if req.query else ():
        if not pair:
            continue
        key, eq, value = pair.partition(b"=")
        if key == b"_token":
            token = unquote_to_bytes(value)
            continue
        query.append(unquote_to_bytes(key))
        if eq:
            query.append(unquote_to_bytes(value))
    return segments, query, token


def wants_resp2(req: HttpRequest, encode: bool) -> bool:
    """Whether ``Upstash-Response-Format`` asks for RESP2 (``json``, the default, or
    ``resp2``; anything else, and RESP2 with base64, is Upstash's 400)."""
    value = req.headers.get("upstash-response-format", "json").strip()
    if value.lower() == "json":
        return False
    if value.lower() != "resp2":
        raise BadRequest(f"ERR unsupported Upstash-Response-Format '{value}': use json or resp2")
    if encode:
        raise BadRequest(
            "ERR Upstash-Encoding: base64 cannot be combined with Upstash-Response-Format: resp2"
        )
    return True


def presented_token(req: HttpRequest, query_token: bytes | None) -> bytes | None:
    header = req.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip().encode("latin-1")
        return None
    return query_token


def body_of(req: HttpRequest, limit: int) -> bytes:
    """The body, or Upstash's 413 when it was over ``limit``."""
    if req.body_refused is not None:
        raise BadRequest(too_large(limit, req.body_refused), 413)
    return req.body


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads with options builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def load_json(body: bytes) -> object:
    try:
        return _DECODER.decode(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise BadRequest("ERR failed to parse command: the body is not valid JSON") from None


def parse_command(value: object) -> list[bytes]:
    if not isinstance(value, list):
        raise BadRequest(
            'ERR failed to parse command: the body must be a JSON array like ["SET","k","v"]'
        )
    if not value:
        raise BadRequest("ERR empty command")
    return [_argument(item) for item in value]


def parse_batch(value: object) -> list[Command]:
    if not isinstance(value, list):
        raise BadRequest(
            "ERR failed to parse commands: the body must be a JSON array of command arrays"
        )
    if not value:
        raise BadRequest("ERR empty pipeline: send at least one command")
    return [parse_command(item) for item in value]


def _argument(item: object) -> bytes:
    if isinstance(item, str):
        try:
            return item.encode()
        except UnicodeEncodeError:
            raise BadRequest("ERR invalid argument: lone surrogate in a JSON string") from None
    if isinstance(item, bool):
        return b"true" if item else b"false"
    if isinstance(item, int):
        return str(item).encode()
    if isinstance(item, float):
        if item.is_integer() and abs(item) < 1e16:
            return str(int(item)).encode()
        return repr(item).encode()
    kind = (
        "null"
        if item is None
        else type(item).__name__.replace("dict", "object").replace("list", "array")
    )
    raise BadRequest(
        f"ERR invalid argument: {kind} is not allowed; arguments are strings, numbers or booleans"
    )
