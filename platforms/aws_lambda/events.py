"""Lambda's HTTP events, read into the core's ``Request`` and answered in their own shape.

Four sources invoke the function with an HTTP request, in three shapes (AWS documents
each: "Working with AWS Lambda proxy integrations", "HTTP API payload format", "Lambda
function URLs", "Using Lambda functions as targets of an Application Load Balancer"):

- ``rest``: API Gateway REST APIs, and HTTP APIs on payload format 1.0 (``"version":
  "1.0"``). ``httpMethod``, ``path``, the query decoded in
  ``multiValueQueryStringParameters``, ``multiValueHeaders``. A REST API hands the path
  over percent-encoded as sent; an HTTP API decodes it, in 1.0's ``path`` as in 2.0's
  ``rawPath``. Answered with ``statusCode``, ``headers``, ``body``, ``isBase64Encoded``.
- ``http``: payload format 2.0, sent by HTTP APIs and Function URLs.
  ``requestContext.http.method`` and ``.path`` (already decoded by both sources; the
  HTTP API decodes ``rawPath`` too, Function URLs do not, so ``path`` is the one field
  that means the same everywhere), ``rawQueryString`` as sent, ``headers`` with repeated
  ones joined by commas, ``cookies`` apart (Function URLs also keep the ``cookie``
  header). Answered the same way, with ``Set-Cookie`` moved to ``cookies``.
- ``alb``: Application Load Balancer targets. ``httpMethod``, ``path`` as sent, the
  query *not* decoded (the balancer passes it on as the client wrote it), ``headers``, or
  ``multiValueHeaders`` when the target group enables them, in which case the answer
  must use ``multiValueHeaders`` too. Answers carry ``statusDescription`` ("200 OK"), as
  AWS's examples do.

An HTTP API stage other than ``$default`` leads the path of both of its formats
(``/live/health``); no route names it, so it is taken off. Fields that hold nothing an
HTTP request could carry (a lone surrogate, a method that is no short word, a flag that
is no boolean) make the event unreadable, with the field named, rather than a traceback
later.

Why not Mangum, the maintained adapter for this (the project uses maintained parts
where it can, and says why where it does not): Mangum turns these events into ASGI and
runs the app on an asyncio event loop, so it imports asyncio (about 25 ms of a 115 ms
cold start on this machine) and typing_extensions, and starts a loop per invocation. The
reference API answers synchronously on Lambda (one request per container at a time), so
none of that serves a request. Reading the three shapes above takes this module, and
with it the handler's first answer comes in level with the bare ``upstash-redis`` SDK's,
which Mangum kept about 14 ms behind (``bench/bench_coldstart.py``). Mangum also decoded
payload 2.0's already-decoded path a second time, which the handler had to undo. The
tests feed every shape as AWS sends it (``tests/platforms/aws_lambda/events/captured``
keeps events as captured from live endpoints), including what Mangum handled (multi-value
headers and queries, cookies, base64 bodies both ways, ALB's multi-value mode) and what
it did not (an event broken in one field gets a 400 that names the field).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode

from continuum.app.http import ApiError, Request, Response
from continuum.errors import ConfigurationError

__all__ = [
    "EventError",
    "Refusal",
    "Shape",
    "answer",
    "base_path_from_env",
    "oversize",
    "read",
    "shape_of",
]

# Content types answered as text; anything else (or text that is not UTF-8) is base64.
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "yaml", "x-www-form-urlencoded")
# Longest method read: every method a gateway passes on is a short word of letters, and
# the method is echoed in a 405 and logged.
_MAX_METHOD = 32
# serverless-offline (the local stand-in serverless.yml runs) fills the identity of the
# API with placeholders; unlike AWS it hands over requestContext.http.path still encoded.
_OFFLINE_API_ID = "offlineContext_apiId"


class EventError(Exception):
    """The event is not an HTTP request in any shape this module reads.

    ``shape`` is the event's shape when it has one but is broken in a field: the refusal
    is answered in it (an ALB in multi-value mode drops a ``headers`` answer's headers).
    """

    shape: Shape | None = None


class Shape:
    """Which of the three shapes an event came in, and so how to answer it."""

    __slots__ = ("kind", "multi_value")

    def __init__(self, kind: str, multi_value: bool = False) -> None:
        self.kind = kind  # "rest", "http" or "alb"
        self.multi_value = multi_value  # ALB with multi-value headers enabled

    def __repr__(self) -> str:
        return f"Shape({self.kind!r}, multi_value={self.multi_value})"


class Refusal(Exception):
    """A readable event whose request the API refuses before routing (a bad path or
    query, a body marked base64 that is not), with what was read of it: its shape, to
    answer in, and its method, for the log line."""

    def __init__(self, error: ApiError, method: str, shape: Shape) -> None:
        super().__init__(error.message)
        self.error = error
        self.request = Request(method, "/")
        self.shape = shape


def shape_of(event: object) -> Shape:
    """The event's shape; :class:`EventError` when it has none of them."""
    if not isinstance(event, dict):
        raise EventError(f"the event is a JSON {_json_type(event)}, not an object")
    context = event.get("requestContext")
    if not isinstance(context, dict):
        raise EventError("the event has no requestContext object")
    if "elb" in context:
        # The mode is that of the field holding the headers: a typed logger or proxy may
        # write the unused one as null.
        return Shape("alb", multi_value=event.get("multiValueHeaders") is not None)
    if event.get("version") == "2.0":
        if not isinstance(context.get("http"), dict):
            raise EventError("a payload 2.0 event without requestContext.http")
        return Shape("http")
    if "httpMethod" in event:
        return Shape("rest")
    raise EventError("the event names no HTTP method")


def read(
    event: object, *, remaining: float | None = None, base_path: str = ""
) -> tuple[Request, Shape]:
    """The request ``event`` carries, and its shape.

    ``base_path`` (see :func:`base_path_from_env`) is taken off the front of the path
    when it leads it. Raises :class:`EventError` for an event that is no HTTP request, and
    :class:`Refusal` for a request the API refuses before routing. Lambda bounds the
    event itself (6 MB); the caller compares the body with the API's own maximum.
    """
    shape = shape_of(event)
    assert isinstance(event, dict)  # shape_of checked it
    try:
        return _request(event, shape, remaining, base_path), shape
    except EventError as error:
        error.shape = shape
        raise


def _request(
    event: Mapping[str, Any], shape: Shape, remaining: float | None, base_path: str
) -> Request:
    if shape.kind == "http":
        method, path, raw_path, query, headers = _payload_2(event)
    else:
        method, path, raw_path, query, headers = _payload_1(event, shape)
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        path = path[len(base_path) :] or "/"
    try:
        return Request.build(
            method,
            path,
            query_string=query,
            headers=headers,
            body=_body(event),
            remaining=remaining,
            raw_path=raw_path,
        )
    except ApiError as error:
        raise Refusal(error, method, shape) from None


def base_path_from_env(env: Mapping[str, str]) -> str:
    """``CONTINUUM_BASE_PATH``: the base path of a custom domain's mapping (``/cache``).

    REST APIs and HTTP APIs on payload 1.0 keep the mapping's base path in the path they
    hand over when the API is called through a custom domain (2.0's paths do not), and an
    ALB rule may forward a path prefix; no route of the function names either. Only
    unreserved URL characters are allowed, so that it reads the same encoded or not.
    """
    raw = env.get("CONTINUUM_BASE_PATH", "").strip().rstrip("/")
    if not raw:
        return ""
    base = raw if raw.startswith("/") else "/" + raw
    # (compiled here, once per container: a module-level pattern costs every cold start)
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", base):
        raise ConfigurationError(
            "CONTINUUM_BASE_PATH must be a path of letters, digits and -._~ segments "
            "(like /cache or /api/v2)"
        )
    return base


_Parts = tuple[str, str, bool, str, list[tuple[str, str]]]


def _payload_2(event: Mapping[str, Any]) -> _Parts:
    """Method, path (and whether it is still encoded), query and headers of a 2.0 event."""
    context = event["requestContext"]
    http = context["http"]
    method = _method(http, "method")
    if context.get("apiId") == _OFFLINE_API_ID:
        path, raw_path = _text(event, "rawPath"), True
    else:
        path, raw_path = _text(http, "path"), False
    query = _text(event, "rawQueryString", "")
    headers = _pairs(event.get("headers"), "headers")
    cookies = event.get("cookies")
    if cookies:
        if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
            raise EventError("cookies is not a list of strings")
        # ``cookies`` is the request's Cookie header taken apart; Function URLs send the
        # header as well, which must not make every cookie arrive twice.
        headers = [pair for pair in headers if pair[0].lower() != "cookie"]
        headers.append(("cookie", _utf8("; ".join(cookies), "cookies")))
    return method, _unstaged(path, context), raw_path, query, headers


def _payload_1(event: Mapping[str, Any], shape: Shape) -> _Parts:
    """The same of a REST, HTTP API 1.0 or ALB event."""
    method = _method(event, "httpMethod")
    path = _text(event, "path", "/") or "/"
    raw_path = True  # REST APIs and ALB pass the path on as the client wrote it
    if shape.kind == "rest" and event.get("version") == "1.0":
        raw_path = False  # an HTTP API decodes it, in payload 1.0 as in 2.0
        path = _unstaged(path, event["requestContext"])
    headers = _pairs(event.get("headers"), "headers")
    if event.get("multiValueHeaders") is not None:
        # All values of a repeated header are in multiValueHeaders (``headers`` keeps the
        # last); a header only in ``headers`` (hand-built events) still counts.
        multi = _pairs(event["multiValueHeaders"], "multiValueHeaders", multi=True)
        named = {name.lower() for name, _ in multi}
        headers = multi + [pair for pair in headers if pair[0].lower() not in named]
    return method, path, raw_path, _query(event, encoded=shape.kind == "alb"), headers


def _unstaged(path: str, context: Mapping[str, Any]) -> str:
    """``path`` without the HTTP API stage leading it (``$default`` never does)."""
    stage = context.get("stage")
    if not isinstance(stage, str) or stage in ("", "$default"):
        return path
    prefix = "/" + stage
    if path == prefix:
        return "/"
    return path[len(prefix) :] if path.startswith(prefix + "/") else path


def answer(response: Response, shape: Shape) -> dict[str, Any]:
    """``response`` in the shape its event's source expects back."""
    body, encoded = _encode_body(response)
    out: dict[str, Any] = {"statusCode": response.status}
    if shape.kind == "alb":
        out["statusDescription"] = _status_line(response.status)
    headers = dict(response.headers)
    if shape.kind == "http" and "set-cookie" in headers:
        out["cookies"] = [headers.pop("set-cookie")]
    if shape.multi_value:
        out["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    else:
        out["headers"] = headers
    out["body"] = body
    out["isBase64Encoded"] = encoded
    return out


def oversize(out: Mapping[str, Any], shape: Shape) -> str | None:
    """Why the answer ``out`` is more than its source takes back, or ``None``.

    Lambda returns at most 6 MB (6291456 bytes) of response JSON from a synchronous
    invocation, and an ALB takes at most 1 MB of it; past that the caller gets a bare 502
    and the function's log nothing. The size is that of the JSON the runtime sends, in
    which a JSON body is escaped once more; it is measured only for bodies that could
    come near the limit (a character takes at most six bytes there, as ``\\uXXXX``).
    """
    limit, source = (1_048_576, "an ALB") if shape.kind == "alb" else (6_291_456, "Lambda")
    if len(out["body"]) < (limit - 65_536) // 6:
        return None
    size = len(json.dumps(out))
    if size <= limit:
        return None
    return (
        f"the answer does not fit in the {limit} bytes of JSON {source} accepts from a "
        f"function (its body alone is {len(out['body'])} characters)"
    )


def _status_line(status: int) -> str:
    """ALB's ``statusDescription``: the code and its reason phrase, one space apart.

    ``http`` is imported here, on the first ALB answer: building ``HTTPStatus`` costs
    about 0.6 ms, which no other source's cold start needs to pay."""
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _encode_body(response: Response) -> tuple[str, bool]:
    if not response.body:
        return "", False
    content_type = response.headers.get("content-type", "")
    if any(kind in content_type for kind in _TEXT_TYPES):
        try:
            return response.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(response.body).decode("ascii"), True


def _body(event: Mapping[str, Any]) -> bytes:
    """The body's bytes; ``ApiError`` (raised later, as a refusal) for bad base64."""
    body = event.get("body")
    encoded = event.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        raise EventError("isBase64Encoded is not a boolean")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise EventError("body is not a string")
    if not encoded:
        return _utf8(body, "body").encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("bad_request", "the body is marked base64 but is not") from None


def _query(event: Mapping[str, Any], *, encoded: bool) -> str:
    """The query string of a REST or ALB event (their ``multiValue`` form when present).

    API Gateway decodes the parameters, so they are encoded again; ALB hands them over
    as the client sent them (already encoded), so they are only joined.
    """
    params = event.get("multiValueQueryStringParameters")
    multi = bool(params)
    if not params:
        params = event.get("queryStringParameters")
    if not params:
        return ""
    if not isinstance(params, dict):
        raise EventError("the query parameters are not an object")
    pairs = _flattened(params, "a query parameter", multi)
    if encoded:
        return "&".join(f"{name}={value}" if value else name for name, value in pairs)
    return urlencode(pairs, quote_via=quote_plus)


def _pairs(headers: object, field: str, *, multi: bool = False) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if not isinstance(headers, dict):
        raise EventError(f"{field} is not an object")
    return _flattened(headers, field, multi, what=f"a value in {field}")


def _flattened(
    fields: Mapping[Any, Any], field: str, multi: bool, what: str | None = None
) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of a headers or query object, one per value of a
    ``multiValue`` list; ``EventError`` naming ``what`` (or ``field``) for a value that is
    no text."""
    pairs: list[tuple[str, str]] = []
    for name, values in fields.items():
        for value in values if multi and isinstance(values, list) else [values]:
            if not isinstance(name, str) or not isinstance(value, str):
                raise EventError(f"{what or field} is not a string")
            pairs.append((_utf8(name, field), _utf8(value, field)))
    return pairs


def _method(mapping: Mapping[str, Any], name: str) -> str:
    method = _text(mapping, name)
    if not (method.isascii() and method.isalpha() and len(method) <= _MAX_METHOD):
        raise EventError(f"{name} is not an HTTP method")
    return method


def _text(mapping: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = mapping.get(name, default)
    if not isinstance(value, str):
        raise EventError(f"{name} is missing or not a string")
    return _utf8(value, name)


def _utf8(text: str, field: str) -> str:
    """``text``, unless it holds a lone surrogate: JSON can write one (``"\\ud800"``),
    no HTTP request can carry one, and encoding it later would raise mid-request."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise EventError(f"{field} is not valid Unicode text") from None
    return text


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else type(value).__name__
