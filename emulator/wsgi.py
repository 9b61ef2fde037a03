"""The emulator as a WSGI application, for the pytest plugin's werkzeug server.

The body is read up to the request limit; a larger one is read and dropped (up to a
bound) so that the client sees the 413 rather than a reset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from continuum.emulator.request import HttpRequest

if TYPE_CHECKING:
    from continuum.emulator.app import EmulatorApp, StartResponse

# A refused body up to this size is read and dropped, so the client sees the answer rather
# than a reset; past it the answer goes out at once and the server closes the connection.
_DRAIN_LIMIT = 64 * 1024 * 1024
_NO_BODY_METHODS = frozenset({"GET", "HEAD"})


def serve(
    app: EmulatorApp, environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    from continuum.emulator.app import STATUS_LINES

    response = app.handle(_request(environ, app.max_request_bytes))
    status = STATUS_LINES.get(response.status, f"{response.status} Error")
    start_response(status, response.headers)
    if response.stream is not None:
        return response.stream
    return [response.body]


def _request(environ: dict[str, Any], limit: int) -> HttpRequest:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if raw:
        target = raw.encode("latin-1")
        path, _, query = target.partition(b"?")
    else:
        path = environ.get("PATH_INFO", "").encode("latin-1")
        query = environ.get("QUERY_STRING", "").encode("latin-1")
    headers: dict[str, str] = {}
    longest = 0
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.removeprefix("HTTP_").replace("_", "-").lower()
            headers[name] = str(value)
            longest = max(longest, len(name) + len(str(value)) + 2)
    method = environ.get("REQUEST_METHOD", "GET").upper()
    req = HttpRequest(
        method, path, query, headers, header_count=len(headers), longest_header=longest
    )
    if method not in _NO_BODY_METHODS:
        req.body, req.body_refused = _read_body(environ, limit)
    return req


def _read_body(environ: dict[str, Any], limit: int) -> tuple[bytes, int | None]:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b"", None
    length_text = (environ.get("CONTENT_LENGTH") or "").strip()
    if length_text:
        length = int(length_text) if length_text.isdigit() else 0
        if length > limit:
            _discard(stream, length)
            return b"", length
        return (_read(stream, length) if length > 0 else b""), None
    if not environ.get("wsgi.input_terminated"):
        return b"", None
    body = _read(stream, limit + 1)
    if len(body) > limit:
        return b"", len(body) + _discard(stream, None)
    return body, None


def _read(stream: Any, size: int) -> bytes:
    try:
        return bytes(stream.read(size))
    except OSError:  # a broken chunked encoding, or the client hung up mid-body
        return b""


def _discard(stream: Any, length: int | None) -> int:
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
