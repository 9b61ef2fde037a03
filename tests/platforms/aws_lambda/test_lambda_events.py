"""Lambda's event shapes, read and answered by ``events.py`` as each source sends them.

The handler tests run the whole behaviour list through one typical event per source;
these pin what differs between the shapes: API Gateway's ``multiValue`` fields (the
only ones present when a REST API sends ``headers: null``), ALB's still-encoded query
and its multi-value mode (whose answer must use ``multiValueHeaders``), payload 2.0's
``cookies``, base64 both ways, and events that are broken in one field. Requests go
through ``Container.invoke`` to the emulator; the answer encoder is also fed bodies the
API does not produce today (binary, a cookie), since users put the same reader in front
of their own code.
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from typing import Any

import pytest
from lambda_events import ALB_MULTI_VALUE_FIELDS, FakeContext, make_event

from continuum.app import Request, Response
from continuum.config import LocalModeWarning
from continuum.platforms.aws_lambda.events import Shape, answer, read, shape_of

with warnings.catch_warnings():
    # The import builds this process's own container, whose environment names no Upstash.
    warnings.simplefilter("ignore", LocalModeWarning)
    from continuum.platforms.aws_lambda.handler import Container

KEY = "events-test-key-5a1c9e"
AUTH = {"authorization": f"Bearer {KEY}"}
PREFIX = (
    "this function answers HTTP events (API Gateway REST or HTTP API, a Function URL, "
    "an ALB); it cannot read this one: "
)


@pytest.fixture
def container(emulator: Any) -> Container:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    return Container({**env, **emulator.env, "CONTINUUM_API_KEYS": KEY, "CONTINUUM_MAX_BODY": "64"})


def _error(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def test_a_rest_event_with_only_multi_value_fields_is_read(
    container: Container, emulator: Any
) -> None:
    """API Gateway REST may send ``headers``/``queryStringParameters`` as null and put
    everything in their ``multiValue`` twins: the key and the TTL must still count."""
    event = make_event("apigw_rest_v1", "PUT", "/v1/cache/query/mv", {}, b'{"value":"v"}')
    event["headers"] = None
    event["queryStringParameters"] = None
    event["multiValueHeaders"] = {"Authorization": [AUTH["authorization"]]}
    event["multiValueQueryStringParameters"] = {"ttl": ["45"]}
    response = container.invoke(event, FakeContext())
    assert _error(response) == (
        200,
        {"layer": "query", "key": "mv", "stored": True, "degraded": False},
    ), response
    assert emulator.redis.ttl("query:mv") == 45


def test_alb_query_parameters_arrive_encoded_and_are_decoded_once(
    container: Container, emulator: Any
) -> None:
    """ALB does not decode the query: ``ttl=3%30`` is ``ttl=30``, and nothing is decoded
    twice (``%2520`` in a key's path stays ``%20``)."""
    event = make_event("alb", "PUT", "/v1/cache/query/a%2520b?ttl=3%30", AUTH, b'{"value":1}')
    assert event["queryStringParameters"] == {"ttl": "3%30"}
    response = container.invoke(event, FakeContext())
    assert _error(response) == (
        200,
        {"layer": "query", "key": "a%20b", "stored": True, "degraded": False},
    ), response
    assert emulator.redis.ttl("query:a%20b") == 30


def test_alb_multi_value_mode_is_answered_with_multi_value_headers(
    container: Container,
) -> None:
    """With multi-value headers enabled on the target group, ALB reads only
    ``multiValueHeaders`` from the answer: a ``headers`` field would be a 502."""
    event = make_event("alb", "GET", "/v1/cache/query/none", {}, None)
    event["multiValueHeaders"] = {k: [v] for k, v in event.pop("headers").items()}
    event["multiValueHeaders"]["authorization"] = [AUTH["authorization"]]
    event["multiValueQueryStringParameters"] = event.pop("queryStringParameters")
    response = container.invoke(event, FakeContext())
    assert set(response) == ALB_MULTI_VALUE_FIELDS
    assert response["multiValueHeaders"]["content-type"] == ["application/json"]
    assert response["multiValueHeaders"]["x-cache-backend"] == ["upstash"]
    assert _error(response) == (
        404,
        {"error": {"code": "not_found", "message": "no value for key 'none' in layer 'query'"}},
    )


def test_payload_2_cookies_become_one_cookie_header() -> None:
    event = make_event("apigw_http_v2", "GET", "/health", {}, None)
    event["cookies"] = ["a=1", "b=two"]
    request, shape = read(event)
    assert shape.kind == "http"
    assert request.headers["cookie"] == "a=1; b=two"


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", '{"v":"ü"}'.encode(), ('{"v":"ü"}', False)),
        ("text/plain; charset=utf-8", b"plain", ("plain", False)),
        ("application/octet-stream", b"\xff\x00", ("/wA=", True)),
        ("application/json", b"\xff", ("/w==", True)),  # text that is not UTF-8
        ("", b"x", ("eA==", True)),
    ],
)
def test_an_answer_body_is_text_only_when_it_is_utf8_text(
    content_type: str, body: bytes, expected: tuple[str, bool]
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    out = answer(Response(200, headers, body), Shape("rest"))
    assert (out["body"], out["isBase64Encoded"]) == expected
    assert base64.b64decode(out["body"]) == body if expected[1] else out["body"].encode() == body


def test_set_cookie_goes_to_cookies_in_payload_2_answers_only() -> None:
    response = Response(200, {"set-cookie": "s=1; HttpOnly", "content-type": "text/plain"}, b"")
    assert answer(response, Shape("http")) == {
        "statusCode": 200,
        "cookies": ["s=1; HttpOnly"],
        "headers": {"content-type": "text/plain"},
        "body": "",
        "isBase64Encoded": False,
    }
    assert answer(response, Shape("rest"))["headers"]["set-cookie"] == "s=1; HttpOnly"


@pytest.mark.parametrize("source", ["apigw_rest_v1", "function_url", "alb"])
def test_a_body_over_the_maximum_is_413_in_the_events_own_shape(
    container: Container, source: str
) -> None:
    event = make_event(
        source, "PUT", "/v1/cache/query/big", AUTH, b'{"value":"' + b"x" * 80 + b'"}'
    )
    response = container.invoke(event, FakeContext())
    assert _error(response) == (
        413,
        {"error": {"code": "payload_too_large", "message": "the body is larger than 64 bytes"}},
    )


def test_a_body_marked_base64_that_is_not_is_a_400(container: Container) -> None:
    event = make_event("function_url", "PUT", "/v1/cache/query/b", AUTH, b'{"value":1}')
    event["body"] = "not base64!"
    assert _error(container.invoke(event, FakeContext())) == (
        400,
        {"error": {"code": "bad_request", "message": "the body is marked base64 but is not"}},
    )


def _broken(source: str, change: dict[str, Any], context: dict[str, Any] | None = None) -> Any:
    event = make_event(source, "GET", "/health", {}, None)
    event.update(change)
    if context is not None:
        event["requestContext"]["http"].update(context)
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_broken("apigw_rest_v1", {"headers": ["a"], "multiValueHeaders": None}),
         "headers is not an object"),
        (_broken("apigw_rest_v1", {"multiValueHeaders": {"a": [1]}}),
         "a value in multiValueHeaders is not a string"),
        (_broken("apigw_rest_v1", {"httpMethod": 7}), "httpMethod is missing or not a string"),
        (_broken("apigw_rest_v1", {"body": {"json": True}}), "body is not a string"),
        (_broken("apigw_rest_v1", {"multiValueQueryStringParameters": ["x"]}),
         "the query parameters are not an object"),
        (_broken("apigw_http_v2", {"cookies": "a=1"}), "cookies is not a list of strings"),
        (_broken("apigw_http_v2", {}, {"method": None}), "method is missing or not a string"),
        (_broken("alb", {"queryStringParameters": {"a": None}}),
         "a query parameter is not a string"),
        # JSON can spell a lone surrogate ("\\ud800"); no HTTP request can carry one
        (_broken("apigw_rest_v1", {"path": "/v1/cache/query/\ud800"}),
         "path is not valid Unicode text"),
        (_broken("apigw_http_v2", {}, {"path": "/v1/cache/query/\udfff"}),
         "path is not valid Unicode text"),
        (_broken("apigw_rest_v1", {"multiValueQueryStringParameters": {"ttl": ["\ud800"]}}),
         "a query parameter is not valid Unicode text"),
        (_broken("apigw_rest_v1", {"multiValueHeaders": {"x-request-id": ["\ud800"]}}),
         "multiValueHeaders is not valid Unicode text"),
        (_broken("apigw_http_v2", {"cookies": ["a=\ud800"]}), "cookies is not valid Unicode text"),
        (_broken("apigw_rest_v1", {"body": "{\"value\":\"\ud800\"}"}),
         "body is not valid Unicode text"),
        (_broken("apigw_rest_v1", {"httpMethod": "G\u0000T"}), "httpMethod is not an HTTP method"),
        (_broken("apigw_rest_v1", {"httpMethod": ""}), "httpMethod is not an HTTP method"),
        (_broken("alb", {"httpMethod": "X" * 1_000_000}), "httpMethod is not an HTTP method"),
        (_broken("apigw_http_v2", {}, {"method": "GET /x"}), "method is not an HTTP method"),
        (_broken("apigw_rest_v1", {"isBase64Encoded": "false", "body": "{}"}),
         "isBase64Encoded is not a boolean"),
        ([], "the event is a JSON array, not an object"),
        ([{"httpMethod": "GET"}] * 100_000, "the event is a JSON array, not an object"),
        ({"requestContext": {}}, "the event names no HTTP method"),
    ],
)  # fmt: skip
def test_an_event_broken_in_one_field_says_which(
    container: Container, event: Any, reason: str
) -> None:
    assert _error(container.invoke(event, FakeContext())) == (
        400,
        {"error": {"code": "bad_request", "message": PREFIX + reason}},
    )


def test_the_shape_follows_the_fields_each_source_sends() -> None:
    shapes = {
        source: repr(shape_of(make_event(source, "GET", "/health", {}, None)))
        for source in ("apigw_rest_v1", "apigw_http_v2", "function_url", "alb")
    }
    assert shapes == {
        "apigw_rest_v1": "Shape('rest', multi_value=False)",
        "apigw_http_v2": "Shape('http', multi_value=False)",
        "function_url": "Shape('http', multi_value=False)",
        "alb": "Shape('alb', multi_value=False)",
    }
    # An HTTP API on payload format 1.0 sends the REST shape with version "1.0".
    legacy = make_event("apigw_rest_v1", "GET", "/health", {}, None)
    legacy["version"] = "1.0"
    request, shape = read(legacy)
    assert (shape.kind, request.method, request.path) == ("rest", "GET", "/health")
    assert isinstance(request, Request)


@pytest.mark.parametrize(
    ("source", "path", "message"),
    [
        ("apigw_rest_v1", "/v1/cache/query/a%", "the path has a malformed percent-escape"),
        ("alb", "/v1/cache/query/a%FFb", "the path is not valid UTF-8 once decoded"),
        ("function_url", "/v1/cache/query/a\x00b", "the path contains control characters"),
    ],
)
def test_a_path_refused_before_routing_is_logged_with_its_method(
    container: Container,
    capsys: pytest.CaptureFixture[str],
    source: str,
    path: str,
    message: str,
) -> None:
    """The one log line of a refused request names what could be read of it."""
    event = make_event(source, "DELETE", "/health", AUTH, None)
    if source == "function_url":
        event["requestContext"]["http"]["path"] = path  # decoded by the Function URL
    else:
        event["path"] = path
    capsys.readouterr()
    assert _error(container.invoke(event, FakeContext())) == (
        400,
        {"error": {"code": "bad_request", "message": message}},
    )
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
    assert (line["method"], line["route"], line["status"]) == ("DELETE", "unmatched", 400)


def test_an_event_of_a_known_shape_broken_in_a_field_is_answered_in_that_shape(
    container: Container,
) -> None:
    """An ALB in multi-value mode reads only ``multiValueHeaders`` from the answer: the
    400 for a field it could not read must still arrive with its headers."""
    event = make_event("alb", "GET", "/health", {}, None)
    event["multiValueHeaders"] = {"accept": ["*/*"], "x-bad": [7]}
    response = container.invoke(event, FakeContext())
    assert set(response) == ALB_MULTI_VALUE_FIELDS
    assert response["statusDescription"] == "400 Bad Request"
    assert response["multiValueHeaders"]["content-type"] == ["application/json"]
    assert _error(response) == (
        400,
        {
            "error": {
                "code": "bad_request",
                "message": PREFIX + "a value in multiValueHeaders is not a string",
            }
        },
    )


def test_a_rest_header_missing_from_its_multi_value_twin_still_counts(
    container: Container,
) -> None:
    """Hand-written and tool-built REST events (a console test event, a ``multiValueHeaders:
    {}`` left empty) may put a header in ``headers`` only: it is read all the same,
    as Mangum merged both fields; where both name it, ``multiValueHeaders`` holds all of
    its values."""
    event = make_event("apigw_rest_v1", "GET", "/v1/cache/query/none", {}, None)
    event["headers"] = {"Authorization": AUTH["authorization"], "X-Probe": "second"}
    event["multiValueHeaders"] = {"x-probe": ["first", "second"]}
    request, _ = read(event)
    assert request.headers == {"authorization": AUTH["authorization"], "x-probe": "first,second"}
    event["multiValueHeaders"] = {}
    assert _error(container.invoke(event, FakeContext())) == (
        404,
        {"error": {"code": "not_found", "message": "no value for key 'none' in layer 'query'"}},
    )


@pytest.mark.parametrize("source", ["apigw_rest_v1", "apigw_http_v2", "alb"])
def test_a_query_of_100k_parameters_is_read_whole(
    container: Container, emulator: Any, source: str
) -> None:
    """No gateway lets a URL that long through, but a direct invoke can: it is read in
    one pass (about 0.2 s here), and the one parameter the route uses still counts."""
    many = "&".join(f"p{i}=v" for i in range(100_000))
    event = make_event(source, "PUT", f"/v1/cache/query/many?{many}&ttl=40", AUTH, b'{"value":1}')
    assert _error(container.invoke(event, FakeContext())) == (
        200,
        {"layer": "query", "key": "many", "stored": True, "degraded": False},
    )
    assert emulator.redis.ttl("query:many") == 40


def test_an_answer_larger_than_its_source_accepts_is_a_json_error(
    emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """ALB takes at most 1 MB of response JSON from a function, Lambda 6 MB from any:
    past that the caller gets the balancer's or gateway's bare 502 and the function's log
    nothing. A value near the API's 1 MB body limit, JSON-escaped once more by the
    runtime, is past ALB's: it is refused as a 500 that says why, in the event's shape."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    container = Container({**env, **emulator.env, "CONTINUUM_API_KEYS": KEY})
    body = json.dumps({"value": '"quoted"' * 100_000}).encode()  # 1 MB, within the limit
    put = make_event("apigw_rest_v1", "PUT", "/v1/cache/query/large", AUTH, body)
    assert container.invoke(put, FakeContext())["statusCode"] == 200
    through_rest = container.invoke(
        make_event("apigw_rest_v1", "GET", "/v1/cache/query/large", AUTH, None), FakeContext()
    )
    assert json.loads(through_rest["body"])["value"] == '"quoted"' * 100_000
    event = make_event("alb", "GET", "/v1/cache/query/large", {}, None)
    event["multiValueHeaders"] = {k: [v] for k, v in event.pop("headers").items()}
    event["multiValueHeaders"]["authorization"] = [AUTH["authorization"]]
    capsys.readouterr()
    response = container.invoke(event, FakeContext())
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
    assert [(x["level"], x["msg"]) for x in lines] == [
        ("info", "request"),
        ("error", "response too large"),
    ]
    assert (response["statusDescription"], _error(response)) == (
        "500 Internal Server Error",
        (
            500,
            {
                "error": {
                    "code": "internal",
                    # under 1 MB as the API's JSON, 1.4 MB once the runtime escapes it again
                    "message": "the answer does not fit in the 1048576 bytes of JSON an ALB "
                    "accepts from a function (its body alone is 1000042 characters)",
                }
            },
        ),
    )
    assert response["multiValueHeaders"]["content-type"] == ["application/json"]


@pytest.mark.parametrize(
    ("source", "params"),
    [
        # ALB passes keys and values on as the client wrote them ...
        ("alb", {"a%20b": "c%2Bd", "e+f": "g+h", "x%3Dy": "1%262", "flag": ""}),
        # ... API Gateway decoded (``+`` already a space), to be encoded again
        ("apigw_rest_v1", {"a b": "c+d", "e f": "g h", "x=y": "1&2", "flag": ""}),
    ],
)
def test_query_keys_and_values_are_decoded_exactly_once(
    source: str, params: dict[str, str]
) -> None:
    event = make_event(source, "GET", "/health", {}, None)
    event["queryStringParameters"] = params
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in params.items()}
    request, _ = read(event)
    assert request.query == {"a b": ["c+d"], "e f": ["g h"], "x=y": ["1&2"], "flag": [""]}
