"""Lambda events of each source, built from recorded-shape fixtures in ``events/``.

The fixtures have the fields AWS sends (API Gateway REST v1 with ``multiValue*``,
HTTP API and Function URL payload 2.0 with ``rawPath``/``rawQueryString``, ALB with
``elb``); ``make_event`` fills in one request the way each source presents it, as
captured from live AWS endpoints: API Gateway REST (``path``), Function URLs
(``rawPath``) and ALB (``path``) hand over the path still percent-encoded, the HTTP
API decodes it in ``rawPath`` too, and payload 2.0's ``requestContext.http.path`` is
decoded for both of its sources; ALB passes query parameters on still encoded, API
Gateway decodes them. Function URLs and ALB base64-encode a body they do not take for
text; here they encode every body, so the base64 path is exercised on each request
(``events/captured`` has their text bodies as sent: plain).

``FakeContext`` stands in for the ``LambdaContext`` object (a mock, because the real
one exists only inside the Lambda runtime): the handler reads only
``get_remaining_time_in_millis()`` from it.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

EVENTS = Path(__file__).resolve().parent / "events"
SOURCES = ("apigw_rest_v1", "apigw_http_v2", "function_url", "alb")
# The fields of an answer to an ALB with multi-value headers on (a ``headers`` field
# there would be ignored, and its headers lost).
ALB_MULTI_VALUE_FIELDS = {
    "statusCode",
    "statusDescription",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
}


@dataclass
class FakeContext:
    remaining_ms: int = 30_000
    function_name: str = "continuum-api"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:continuum-api"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def template(source: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{source}.json").read_text())
    return loaded


def make_event(
    source: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> dict[str, Any]:
    """An event of ``source`` for ``method target`` (``target`` is a raw path + query)."""
    event = copy.deepcopy(template(source))
    parts = urlsplit(target)
    raw_path, raw_query = parts.path, parts.query
    decoded = unquote(raw_path)
    query = parse_qs(raw_query, keep_blank_values=True)
    payload = body or b""
    if source == "apigw_rest_v1":
        event["httpMethod"] = method
        event["path"] = raw_path
        event["pathParameters"] = {"proxy": raw_path.lstrip("/")}
        event["requestContext"]["httpMethod"] = method
        event["requestContext"]["path"] = "/prod" + raw_path
        for name, value in headers.items():
            event["headers"][name] = value
            event["multiValueHeaders"][name] = [value]
        event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} or None
        event["multiValueQueryStringParameters"] = query or None
        event["body"] = payload.decode() if payload else None
        event["isBase64Encoded"] = False
    elif source in ("apigw_http_v2", "function_url"):
        event["rawPath"] = decoded if source == "apigw_http_v2" else raw_path
        event["rawQueryString"] = raw_query
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["http"]["path"] = decoded
        event["headers"].update({k.lower(): v for k, v in headers.items()})
        if query:
            event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
        if source == "function_url" and payload:
            event["body"] = base64.b64encode(payload).decode()
            event["isBase64Encoded"] = True
        elif payload:
            event["body"] = payload.decode()
    else:
        event["httpMethod"] = method
        event["path"] = raw_path
        event["headers"].update({k.lower(): v for k, v in headers.items()})
        # ALB passes the query on as the client wrote it, still percent-encoded.
        pairs = [part.partition("=") for part in raw_query.split("&") if part]
        event["queryStringParameters"] = {name: value for name, _, value in pairs}
        event["body"] = base64.b64encode(payload).decode()
        event["isBase64Encoded"] = True
    return event


def read_response(source: str, response: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body bytes from what the handler returned for ``source``."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), ",".join(values))
    raw = response.get("body") or ""
    body = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    return int(response["statusCode"]), headers, body
