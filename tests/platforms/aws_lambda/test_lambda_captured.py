"""Events as AWS captured them, answered end to end through ``Container.invoke``.

The fixtures in ``events/captured/`` keep the fields and encodings of events logged from
live endpoints in us-west-2 (published with hotsock/voker, ``vokerhttp/testdata``: the
same request, with a percent-encoded path, a repeated header, two cookies and the query
``repeat=one&repeat=two&redirect=https%3A%2F%2Fexample.com%2Fa%2Fb&literalPlus=a+b&encodedPlus=a%2Bb&empty=``,
sent to each source); only the path, the method and the body were changed to name a
route of this API. What each source does to that request, as captured:

- REST API: ``path`` still encoded; ``multiValueQueryStringParameters`` decoded (``+``
  already a space); ``headers`` keeps only the last of a repeated header, and
  ``multiValueHeaders`` all of them.
- HTTP API (payload 2.0): ``rawPath`` and ``requestContext.http.path`` decoded; repeated
  headers joined with commas; the cookies apart in ``cookies``.
- Function URL: ``rawPath`` encoded, ``requestContext.http.path`` decoded; the cookies in
  ``cookies`` *and* in a ``cookie`` header.
- ALB with multi-value headers: ``headers`` and ``queryStringParameters`` null, the query
  in ``multiValueQueryStringParameters`` still encoded as the client sent it.

``http_api_v1.json`` is an HTTP API on payload format 1.0 (the REST shape with
``"version": "1.0"``, laid out as in the API Gateway guide's "payload format" example);
HTTP APIs decode the path in it as in ``rawPath`` (middleapi/standard-server#93 reports
this for both formats).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from lambda_events import ALB_MULTI_VALUE_FIELDS, FakeContext, read_response

from continuum.config import LocalModeWarning
from continuum.platforms.aws_lambda.events import read

with warnings.catch_warnings():
    warnings.simplefilter("ignore", LocalModeWarning)
    from continuum.platforms.aws_lambda.handler import Container

CAPTURED = Path(__file__).resolve().parent / "events" / "captured"
SOURCES = ("rest", "http_api", "function_url", "alb_multi_value", "http_api_v1")
KEY = "captured-events-key-3b8e1f"
VALUE = {"message": "hello from the public internet", "unicode": "lambda-λ"}
QUERY = {
    "repeat": ["one", "two"],
    "redirect": ["https://example.com/a/b"],
    "literalPlus": ["a b"],
    "encodedPlus": ["a+b"],
    "empty": [""],
}


def captured(source: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CAPTURED / f"{source}.json").read_text())
    return loaded


def authorized(event: dict[str, Any]) -> dict[str, Any]:
    """The captured event with this API's key in each header field it has."""
    event = copy.deepcopy(event)
    if isinstance(event.get("headers"), dict):
        event["headers"]["authorization"] = f"Bearer {KEY}"
    if isinstance(event.get("multiValueHeaders"), dict):
        event["multiValueHeaders"]["authorization"] = [f"Bearer {KEY}"]
    return event


def as_get(event: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    if "http" in event["requestContext"]:
        event["requestContext"]["http"]["method"] = "GET"
    else:
        event["httpMethod"] = "GET"
    event["body"] = None
    return event


@pytest.fixture
def container(emulator: Any) -> Container:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    return Container({**env, **emulator.env, "CONTINUUM_API_KEYS": KEY})


@pytest.mark.parametrize("source", SOURCES)
def test_a_captured_event_is_read_as_its_client_sent_it(source: str) -> None:
    request, _ = read(captured(source))
    assert (request.method, request.path) == ("PUT", "/v1/cache/query/space value")
    assert request.query == QUERY
    assert request.headers["x-probe"] == "first,second"
    assert request.headers["cookie"] == "session=abc123; theme=dark"
    assert json.loads(request.body) == {"value": VALUE}


@pytest.mark.parametrize("source", SOURCES)
def test_a_captured_event_stores_and_reads_back_its_key(
    container: Container, emulator: Any, source: str
) -> None:
    event = authorized(captured(source))
    status, headers, body = read_response(source, container.invoke(event, FakeContext()))
    assert (status, json.loads(body)) == (
        200,
        {"layer": "query", "key": "space value", "stored": True, "degraded": False},
    ), body
    assert headers["content-type"] == "application/json"
    assert emulator.redis.exists("query:space value") == 1
    status, _, body = read_response(source, container.invoke(as_get(event), FakeContext()))
    assert (status, json.loads(body)) == (
        200,
        {"layer": "query", "key": "space value", "value": VALUE},
    ), body


@pytest.mark.parametrize("key", ["100%41", "50%", "rate%FF"])
def test_an_http_api_on_payload_1_0_names_the_key_decoded_once(
    container: Container, key: str
) -> None:
    """The HTTP API decodes the path of a 1.0 event as of a 2.0 one: decoding it again
    turned ``100%41`` into ``100A`` and refused ``50%`` as a malformed escape."""
    event = authorized(captured("http_api_v1"))
    event["path"] = event["requestContext"]["path"] = f"/v1/cache/query/{key}"
    status, _, body = read_response("rest", container.invoke(event, FakeContext()))
    assert (status, json.loads(body)) == (
        200,
        {"layer": "query", "key": key, "stored": True, "degraded": False},
    ), body


@pytest.mark.parametrize("source", ["http_api", "http_api_v1"])
def test_a_named_http_api_stage_is_not_part_of_the_route(container: Container, source: str) -> None:
    """An HTTP API stage other than ``$default`` leads the path it hands over (AWS puts
    ``/live`` in ``rawPath``, ``requestContext.http.path`` and 1.0's ``path``; see
    aws-powertools/powertools-lambda-python#621, logandk/serverless-wsgi#191), though
    no route of the function names it."""
    event = authorized(captured(source))
    event["requestContext"]["stage"] = "live"
    if source == "http_api":
        event["rawPath"] = event["requestContext"]["http"]["path"] = (
            "/live/v1/cache/query/space value"
        )
    else:
        event["path"] = event["requestContext"]["path"] = "/live/v1/cache/query/space value"
    status, _, body = read_response("rest", container.invoke(event, FakeContext()))
    assert (status, json.loads(body)) == (
        200,
        {"layer": "query", "key": "space value", "stored": True, "degraded": False},
    ), body
    event["requestContext"]["stage"] = "other"
    status, _, body = read_response("rest", container.invoke(event, FakeContext()))
    assert (status, json.loads(body)) == (
        404,
        {
            "error": {
                "code": "not_found",
                "message": "no route for '/live/v1/cache/query/space value'",
            }
        },
    ), "only the event's own stage is taken off"


def test_alb_answers_in_the_mode_its_event_came_in(container: Container) -> None:
    """ALB reads ``multiValueHeaders`` from the answer only when the target group sends
    them, and then ignores ``headers`` (and the other way round). An event whose unused
    field is present but null (``"multiValueHeaders": null``, as typed event loggers
    write it) is in the mode of the field that holds the headers."""
    multi = authorized(captured("alb_multi_value"))
    answer = container.invoke(multi, FakeContext())
    assert set(answer) == ALB_MULTI_VALUE_FIELDS
    assert answer["multiValueHeaders"]["content-type"] == ["application/json"]
    single = copy.deepcopy(multi)
    single["headers"] = {k: v[-1] for k, v in single["multiValueHeaders"].items()}
    single["multiValueHeaders"] = None
    single["queryStringParameters"] = {"empty": ""}
    single["multiValueQueryStringParameters"] = None
    answer = container.invoke(single, FakeContext())
    assert set(answer) == {"statusCode", "statusDescription", "headers", "body", "isBase64Encoded"}
    assert answer["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "status", "description"),
    [("PUT", 200, "200 OK"), ("PATCH", 405, "405 Method Not Allowed")],
)
def test_alb_answers_carry_the_status_description_of_awss_examples(
    container: Container, method: str, status: int, description: str
) -> None:
    """AWS's ALB guide answers ``"statusDescription": "200 OK"``: the code and reason
    phrase with one space, which the balancer puts on the status line (a null there was a
    502 for aws/aws-lambda-dotnet#507)."""
    event = authorized(captured("alb_multi_value"))
    event["httpMethod"] = method
    answer = container.invoke(event, FakeContext())
    assert (answer["statusCode"], answer["statusDescription"]) == (status, description)


@pytest.mark.parametrize("source", ["rest", "http_api_v1", "alb_multi_value"])
def test_a_custom_domains_base_path_is_taken_off_when_configured(
    emulator: Any, source: str
) -> None:
    """A REST API (and an HTTP API on payload 1.0) called through a custom domain whose
    mapping has a base path keeps it in ``path`` (CodeGenieApp/serverless-express#216,
    aws/serverless-java-container#34; Mangum's ``api_gateway_base_path``); so may an ALB
    rule forwarding a prefix. ``CONTINUUM_BASE_PATH`` names it; the API's own URL, which
    has no prefix, keeps working."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    env = {**env, **emulator.env, "CONTINUUM_API_KEYS": KEY}
    event = authorized(captured(source))
    encoded = "/v1/cache/query/space%20value" if source != "http_api_v1" else None
    mapped = "/cache-api" + (encoded or event["path"])
    direct = copy.deepcopy(event)
    event["path"] = mapped
    stored = {"layer": "query", "key": "space value", "stored": True, "degraded": False}
    plain = Container(env)
    status, _, body = read_response(source, plain.invoke(event, FakeContext()))
    assert (status, json.loads(body)["error"]["code"]) == (404, "not_found"), body
    mapped_container = Container({**env, "CONTINUUM_BASE_PATH": "cache-api/"})
    for sent in (event, direct):
        status, _, body = read_response(source, mapped_container.invoke(sent, FakeContext()))
        assert (status, json.loads(body)) == (200, stored), body
