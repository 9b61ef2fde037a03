"""Reading an Upstash REST request: target, token, body and JSON commands.

Everything here turns untrusted HTTP input into argument lists, or raises ``BadRequest``
with the ``{"error": ...}`` text Upstash would answer: a malformed body never reaches the
backend and never becomes a traceback. The path form is split on the *raw* target before
percent-decoding, so an encoded ``/`` stays inside its segment and every byte value
survives.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from continuum.emulator.backend import Command

# A refused body up to this size is read and dropped, so the client sees the answer rather
# than a reset; past it (or a Content-Length nobody would send) the answer goes out at once
# and the server closes the connection.
_DRAIN_LIMIT = 64 * 1024 * 1024


class BadRequest(Exception):
    """A request Upstash answers with ``{"error": message}`` and an HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def split_target(environ: dict[str, Any]) -> tuple[list[bytes], list[bytes], bytes | None]:
    """Path segments (percent-decoded bytes) and query pairs flattened, ``_token`` removed."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        target = raw.encode("latin-1")
        if target.startswith((b"http://", b"https://")):
            target = b"/" + target.split(b"/", 3)[-1]
        path, _, query_string = target.partition(b"?")
        parts = path.split(b"/")[1:]
        segments = [unquote_to_bytes(part) for part in parts]
    else:
        path_info = environ.get("PATH_INFO", "").encode("latin-1")
        segments = path_info.split(b"/")[1:]
        query_string = environ.get("QUERY_STRING", "").encode("latin-1")
    if segments and segments[-1] == b"":
        segments.pop()
    # A URL pasted with a trailing slash makes clients ask for "//pipeline": a command name
    # is never empty, so leading empty segments are dropped (inner ones are empty values).
    while segments and segments[0] == b"":
        segments.pop(0)
    query: list[bytes] = []
    token: bytes | None = None
    if query_string:
        for pair in query_string.split(b"&"):
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


def presented_token(environ: dict[str, Any], query_token: bytes | None) -> bytes | None:
    header: str = environ.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip().encode("latin-1")
        return None
    return query_token


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.strip():
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            raise BadRequest("ERR invalid Content-Length header")
        if length > limit:
            if length <= _DRAIN_LIMIT:
                _discard(stream, length)
            raise BadRequest(too_large(limit, length), 413)
        return _read(stream, length) if length > 0 else b""
    if not environ.get("wsgi.input_terminated"):
        return b""
    body = _read(stream, limit + 1)
    if len(body) > limit:
        raise BadRequest(too_large(limit, len(body) + _discard(stream, None)), 413)
    return body


def _read(stream: Any, size: int) -> bytes:
    try:
        return bytes(stream.read(size))
    except OSError:  # a broken chunked encoding, or the client hung up mid-body
        raise BadRequest("ERR malformed request body: broken chunking or cut short") from None


def too_large(limit: int, actual: int) -> str:
    """Upstash's text for a request body, or one command's reply, over the request limit."""
    return (
        f"ERR max request size exceeded. Limit: {limit} bytes, Actual: {actual} bytes. "
        "See https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded "
        "for details"
    )


def _discard(stream: Any, length: int | None) -> int:
    """Read and drop a refused body, so the client sees the answer rather than a reset."""
    total = 0
    budget = _DRAIN_LIMIT if length is None else min(length, _DRAIN_LIMIT)
    while total < budget:
        try:
            chunk = stream.read(min(1 << 20, budget - total))
        except OSError:
            break
        if not chunk:
            break
        total += len(chunk)
    return total


def drain(environ: dict[str, Any]) -> None:
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    if length_text.strip().isdigit():
        _discard(stream, int(length_text))
    elif environ.get("wsgi.input_terminated"):
        _discard(stream, None)


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
