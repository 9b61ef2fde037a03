"""The Lambda handler, fed recorded-shape events of each source, against the emulator.

Every event goes through the real path: ``events.read`` into the core's request, the
API with its sync client over HTTP to the emulator, and ``events.answer`` back into the
source's response shape.
The ``LambdaContext`` is a stand-in (``FakeContext``): the real one exists only inside
the Lambda runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import behaviour
import pytest
from lambda_events import SOURCES, FakeContext, make_event, read_response

from continuum.config import LocalModeWarning

with warnings.catch_warnings():
    # Importing the handler builds the container of this test process, whose environment
    # names no Upstash: it warns that it runs locally. The tests build their own.
    warnings.simplefilter("ignore", LocalModeWarning)
    from continuum.platforms.aws_lambda.handler import Container

ROOT = Path(__file__).resolve().parents[3]
Send = Callable[[str, str, Mapping[str, str], "bytes | None"], tuple[int, dict[str, str], bytes]]


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}


def sender(container: Container, source: str, context: FakeContext | None = None) -> Send:
    def send(
        method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        event = make_event(source, method, path, headers, body)
        return read_response(source, container.invoke(event, context or FakeContext()))

    return send


@pytest.fixture(params=SOURCES)
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def container(emulator: Any) -> Container:
    return Container({**_base_env(), **behaviour.ENV, **emulator.env})


@pytest.mark.parametrize("scenario", behaviour.UP, ids=behaviour.ids(behaviour.UP))
def test_behaviour(scenario: behaviour.Scenario, container: Container, source: str) -> None:
    scenario.run(behaviour.Client(sender(container, source)))


@pytest.mark.parametrize("scenario", behaviour.DOWN, ids=behaviour.ids(behaviour.DOWN))
def test_behaviour_when_upstash_is_down(
    scenario: behaviour.Scenario, dead_upstash_url: str, source: str
) -> None:
    env = {
        **_base_env(),
        **behaviour.ENV,
        "UPSTASH_REDIS_REST_URL": dead_upstash_url,
        "UPSTASH_REDIS_REST_TOKEN": "token-of-a-dead-upstash",
    }
    scenario.run(behaviour.Client(sender(Container(env), source)))


def test_one_json_log_line_per_request_without_secrets(
    container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    send = sender(container, "apigw_http_v2")
    capsys.readouterr()
    key = behaviour.KEYS["cache"]
    status, _, _ = send(
        "PUT", "/v1/cache/query/logged", {"authorization": f"Bearer {key}"}, b'{"value": 1}'
    )
    assert status == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["route"] == "/v1/cache/{layer}/{key}" and line["status"] == 200
    assert line["backend"] == "upstash" and line["method"] == "PUT"
    # the key's limit and the write travel in one script: one round trip, one command,
    # billed as the check's five plus the SET it ran
    assert (line["round_trips"], line["commands"], line["billed_commands"]) == (1, 1, 6)
    assert line["cache_ms"] > 0 and line["duration_ms"] >= line["cache_ms"]
    assert "_aws" not in line, "EMF only when CONTINUUM_EMF=true"
    text = json.dumps(line)
    assert key not in text and container.env["UPSTASH_REDIS_REST_TOKEN"] not in text


def test_embedded_metric_format_when_enabled(
    emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container({**_base_env(), **behaviour.ENV, **emulator.env, "CONTINUUM_EMF": "true"})
    capsys.readouterr()
    status, _, _ = sender(container, "function_url")("GET", "/health", {}, None)
    assert status == 200
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert isinstance(line["_aws"]["Timestamp"], int)
    assert directive["Namespace"] == "Continuum"
    for dimension_set in directive["Dimensions"]:
        assert all(isinstance(line[d], str) for d in dimension_set)
    for metric in directive["Metrics"]:
        assert isinstance(line[metric["Name"]], int | float), metric


def test_deadline_is_remaining_time_minus_margin(emulator: Any) -> None:
    env = {**_base_env(), **emulator.env, "CONTINUUM_DEADLINE_MARGIN_MS": "250"}
    container = Container(env)
    assert container.remaining(FakeContext(remaining_ms=3000)) == 2.75
    assert container.remaining(FakeContext(remaining_ms=100)) == 0.0
    assert container.remaining(None) is None


def test_base64_bodies_and_query_ttl_survive_each_source(container: Container, source: str) -> None:
    send = sender(container, source)
    auth = {"authorization": f"Bearer {behaviour.KEYS['cache']}"}
    body = json.dumps({"value": "ünïcødé ✓ " + "x" * 2000}).encode()
    status, _, raw = send("PUT", "/v1/cache/memory/b64?ttl=30", auth, body)
    assert status == 200, raw
    status, _, raw = send("GET", "/v1/cache/memory/b64", auth, None)
    assert status == 200 and json.loads(raw)["value"] == json.loads(body)["value"]


def test_the_module_level_handler_serves_a_cold_start(emulator: Any) -> None:
    """``handler`` as Lambda imports it: a fresh interpreter, config from the environment."""
    event = make_event("apigw_rest_v1", "GET", "/health", {}, None)
    code = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from lambda_events import FakeContext\n"
        "from continuum.platforms.aws_lambda.handler import handler\n"
        "print(json.dumps(handler(json.loads(sys.argv[2]), FakeContext())))\n"
    )
    env = {**_base_env(), **emulator.env, "CONTINUUM_API_KEYS": "cold-start-key"}
    run = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), json.dumps(event)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    response = json.loads(run.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["backend"] == "upstash"
    assert response["headers"]["x-cache-backend"] == "upstash"


def _truncated_http_api_event() -> dict[str, Any]:
    event = make_event("apigw_http_v2", "GET", "/health", {}, None)
    del event["requestContext"]["http"]
    return event


@pytest.mark.parametrize(
    "event",
    [{}, {"foo": 1}, None, [], {"requestContext": {}}, "GET /health", _truncated_http_api_event()],
    ids=["empty", "unrelated", "null", "list", "bare-context", "string", "truncated-v2"],
)
def test_an_event_that_is_no_http_request_gets_a_json_400(
    container: Container, event: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A console test event or ``aws lambda invoke --payload '{}'`` must not get a traceback."""
    capsys.readouterr()
    response = container.invoke(event, FakeContext())
    status, headers, body = read_response("apigw_rest_v1", response)
    assert status == 400, response
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and "HTTP events" in error["message"], error
    assert "server-timing" in headers and headers["x-cache-backend"] == "upstash", headers
    logged = capsys.readouterr()
    assert "Traceback" not in logged.out + logged.err
    assert '"error_code":"bad_request"' in logged.out, "the refusal is logged like any request"


def test_the_handler_still_serves_http_events_through_invoke(container: Container) -> None:
    event = make_event("function_url", "GET", "/health", {}, None)
    status, _, body = read_response("function_url", container.invoke(event, FakeContext()))
    assert status == 200 and json.loads(body)["status"] == "ok", body


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CONTINUUM_RATE_LIMIT", "lots"),
        ("CONTINUUM_DEADLINE_MARGIN_MS", "half a second"),
        ("CONTINUUM_SECRET_MAX_AGE", "nan"),
        ("UPSTASH_REDIS_REST_URL", "http://db.example.com"),
        ("CONTINUUM_BASE_PATH", "/cache api?x=1"),
    ],
)
def test_a_bad_setting_is_answered_not_an_import_traceback(
    emulator: Any, setting: str, value: str
) -> None:
    """A failed import would give every caller a bare 502 and only the logs the reason."""
    event = make_event("apigw_http_v2", "GET", "/health", {}, None)
    code = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from lambda_events import FakeContext\n"
        "from continuum.platforms.aws_lambda.handler import handler\n"
        "print(json.dumps(handler(json.loads(sys.argv[2]), FakeContext())))\n"
    )
    env = {**_base_env(), **emulator.env, "CONTINUUM_API_KEYS": "cold-start-key", setting: value}
    run = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), json.dumps(event)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    response = json.loads(run.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 500, response
    error = json.loads(response["body"])["error"]
    assert error["code"] == "internal" and "misconfigured" in error["message"], error
    assert setting in error["message"] or "TLS" in error["message"] or "https" in error["message"]
    assert emulator.env["UPSTASH_REDIS_REST_TOKEN"] not in run.stdout + run.stderr
    assert "server-timing" in response["headers"], response
    assert '"msg": "configuration"' in run.stdout, "the log says why, not only the caller"
