"""The neutral request and response every platform adapter translates to and from.

Lambda events, Flask requests, Workers ``Request`` objects and the dev server all become
one ``Request``; the API answers one ``Response``. Keeping this shape tiny (bytes in,
bytes out, lower-cased headers) is what lets each adapter stay a few lines of translation
and lets the same behavioural tests run on every platform.

Hostile input is refused here, before any route runs: bad percent-encoding, control
characters in the path, and invalid JSON become an ``ApiError`` with a stable code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, unquote_to_bytes

from continuum.codec import json_too_deep

__all__ = ["MAX_BODY_DEPTH", "ApiError", "Request", "Response", "decode_path", "json_response"]

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REQUEST_ID = 128
#: How deep a request body may nest, on every platform: the Worker's Pyodide stack is much
#: smaller than CPython's (a few thousand levels crash the whole isolate before Python's
#: recursion guard can raise), and one request must get one answer wherever it runs.
MAX_BODY_DEPTH = 256

# code -> HTTP status; the codes are part of the public API: clients branch on them.
ERROR_STATUS: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}


class ApiError(Exception):
    """An error answered as ``{"error": {"code": ..., "message": ...}}``.

    ``code`` is one of ``ERROR_STATUS``; ``headers`` are added to the response (for
    example ``Allow`` on 405 or ``Retry-After`` on 429).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown API error code {code!r}")
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail  # for the log line only, never sent

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]

    def to_response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message}}
        response = json_response(self.status, body, headers=self.headers)
        response.detail = self.detail
        return response


def decode_path(raw: str) -> str:
    """Percent-decode a raw request path strictly (UTF-8, well-formed escapes only)."""
    if _BAD_ESCAPE.search(raw):
        raise ApiError("bad_request", "the path has a malformed percent-escape")
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("bad_request", "the path is not valid UTF-8 once decoded") from None
    return check_path(path)


def check_path(path: str) -> str:
    """Refuse decoded paths no route could mean: control characters or a lost decoding."""
    if _CONTROL.search(path):
        raise ApiError("bad_request", "the path contains control characters")
    if "\ufffd" in path:
        raise ApiError("bad_request", "the path is not valid UTF-8 once decoded")
    if not path.startswith("/"):
        path = "/" + path
    return path


class Request:
    """One HTTP request, already decoded.

    ``path`` is percent-decoded (adapters whose platform hands over a decoded path pass
    it as is; those with a raw path use ``Request.build(..., raw_path=True)``).
    ``headers`` keys are lower case. ``remaining`` is the platform's time budget in
    seconds (Lambda's remaining time minus a margin), or ``None``; the request's cache
    deadline is the API's ``timeout`` setting, or this when it is less.

    A plain slotted class, not a dataclass: this module is on every platform's cold-start
    path (each dataclass costs about a millisecond to build at import), and the ``repr``
    must not show the headers, which carry the API key.
    """

    __slots__ = ("body", "headers", "method", "path", "query", "remaining", "request_id")

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        remaining: float | None = None,
        request_id: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.query: dict[str, list[str]] = {} if query is None else query
        self.headers: dict[str, str] = {} if headers is None else headers
        self.body = body
        self.remaining = remaining
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.path[:200]!r}, body={len(self.body)} bytes)"

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        *,
        query_string: str | bytes = "",
        headers: Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str] = (),
        body: bytes | bytearray | memoryview | None = b"",
        remaining: float | None = None,
        request_id: str = "",
        raw_path: bool = False,
    ) -> Request:
        """Make a request from what any platform has; ``raw_path`` says ``path`` is undecoded.

        ``body`` may be any bytes-like object, or None for none."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        merged: dict[str, str] = {}
        for name, value in pairs:
            key = _text(name).lower()
            text = _text(value)
            merged[key] = f"{merged[key]},{text}" if key in merged else text
        qs = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        try:
            query = parse_qs(qs, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise ApiError("bad_request", "the query string is not valid UTF-8") from None
        return cls(
            method=method.upper(),
            path=decode_path(path) if raw_path else check_path(path),
            query=query,
            headers=merged,
            body=b"" if body is None else bytes(body),
            remaining=remaining,
            # Client-chosen, so bounded: it lands in every log line for this request.
            request_id=(request_id or merged.get("x-request-id", ""))[:MAX_REQUEST_ID],
        )

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> object:
        """The body parsed as JSON; an empty body is ``None``; anything else invalid is 400."""
        if not self.body.strip():
            return None
        if json_too_deep(self.body, MAX_BODY_DEPTH):
            raise ApiError(
                "bad_request", f"the JSON body nests deeper than {MAX_BODY_DEPTH} levels"
            )
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise ApiError("bad_request", "the body is not valid JSON") from None


class Response:
    """One HTTP response: status, lower-cased headers, body bytes (a slotted class, as
    ``Request``)."""

    __slots__ = ("body", "detail", "headers", "status")

    def __init__(
        self, status: int, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        self.status = status
        self.headers: dict[str, str] = {} if headers is None else headers
        self.body = body
        self.detail = ""  # what went wrong, for the log line: never part of the answer

    def __repr__(self) -> str:
        return f"Response({self.status}, body={len(self.body)} bytes)"

    def json(self) -> object:
        return json.loads(self.body) if self.body else None


def json_response(
    status: int, payload: object, *, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    merged = {"content-type": "application/json"}
    merged.update({k.lower(): v for k, v in (headers or {}).items()})
    return Response(status=status, headers=merged, body=body)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
