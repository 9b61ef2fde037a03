"""Secrets from SSM Parameter Store and Secrets Manager, against moto.

moto stands in for AWS (which this machine cannot reach): ``mock_aws`` for the
in-process cases, and ``moto_server`` on loopback for the end-to-end one, where boto3
really sends HTTP (``AWS_ENDPOINT_URL``), as it would in a function.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuum.errors import ConfigurationError
from continuum.platforms.aws_lambda import secrets as lambda_secrets
from continuum.platforms.aws_lambda.secrets import SecretSource, SecretValue, source_for

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

TOKEN = "AXXXsecret-token-value-0123456789"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    lambda_secrets._clients.clear()
    yield
    lambda_secrets._clients.clear()


def test_the_environment_wins_and_names_pick_the_store() -> None:
    assert source_for("UPSTASH_REDIS_REST_TOKEN", {"UPSTASH_REDIS_REST_TOKEN": "t"}) is None
    ssm = source_for("UPSTASH_REDIS_REST_TOKEN", {"UPSTASH_REDIS_REST_TOKEN_PARAM": "/p"})
    assert ssm == SecretSource("UPSTASH_REDIS_REST_TOKEN", "ssm", "/p")
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"
    sm = source_for("CONTINUUM_API_KEYS", {"CONTINUUM_API_KEYS_SECRET_ARN": arn})
    assert sm == SecretSource("CONTINUUM_API_KEYS", "secretsmanager", arn)
    assert source_for("UPSTASH_REDIS_REST_TOKEN", {}) is None


def test_ssm_securestring_is_decrypted() -> None:
    with moto.mock_aws():
        boto3.client("ssm").put_parameter(
            Name="/continuum/dev/token", Value=TOKEN, Type="SecureString"
        )
        source = SecretSource("UPSTASH_REDIS_REST_TOKEN", "ssm", "/continuum/dev/token")
        assert source.fetch() == TOKEN


def test_secrets_manager_plain_and_json_secrets() -> None:
    with moto.mock_aws():
        client = boto3.client("secretsmanager")
        client.create_secret(Name="plain", SecretString=TOKEN)
        client.create_secret(
            Name="bundle",
            SecretString=json.dumps({"UPSTASH_REDIS_REST_TOKEN": TOKEN, "other": "x"}),
        )
        assert SecretSource("UPSTASH_REDIS_REST_TOKEN", "secretsmanager", "plain").fetch() == TOKEN
        assert SecretSource("UPSTASH_REDIS_REST_TOKEN", "secretsmanager", "bundle").fetch() == TOKEN
        with pytest.raises(ConfigurationError, match="without the field 'CONTINUUM_API_KEYS'"):
            SecretSource("CONTINUUM_API_KEYS", "secretsmanager", "bundle").fetch()


def test_a_missing_parameter_is_a_clear_error_without_values() -> None:
    with moto.mock_aws():
        source = SecretSource("UPSTASH_REDIS_REST_TOKEN", "ssm", "/continuum/dev/absent")
        with pytest.raises(ConfigurationError) as caught:
            source.fetch()
    message = str(caught.value)
    assert "/continuum/dev/absent" in message and "ParameterNotFound" in message
    assert TOKEN not in message


def test_cached_per_container_until_max_age_then_refetched() -> None:
    now = [1000.0]
    with moto.mock_aws():
        ssm = boto3.client("ssm")
        ssm.put_parameter(Name="/t", Value="first", Type="SecureString")
        calls: list[str] = []

        def factory(service: str) -> object:
            calls.append(service)
            return ssm

        value = SecretValue(
            SecretSource("UPSTASH_REDIS_REST_TOKEN", "ssm", "/t"),
            max_age=300,
            clock=lambda: now[0],
            client_factory=factory,
        )
        assert value.get() == "first"
        ssm.put_parameter(Name="/t", Value="rotated", Type="SecureString", Overwrite=True)
        now[0] += 299
        assert value.get() == "first" and len(calls) == 1, "fetched again before max age"
        now[0] += 2
        assert value.get() == "rotated" and len(calls) == 2
        ssm.delete_parameter(Name="/t")
        now[0] += 301
        assert value.get() == "rotated", "a failed refresh must keep the last good value"
    assert "rotated" not in repr(value)


def test_boto3_is_not_imported_unless_a_secret_is_fetched() -> None:
    code = (
        "import sys, os\n"
        "os.environ.pop('UPSTASH_REDIS_REST_TOKEN_PARAM', None)\n"
        "import continuum.platforms.aws_lambda.handler\n"
        "print('boto3' in sys.modules, 'msgpack' in sys.modules, 'emulator' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PARAM", "_SECRET_ARN"))}
    env["CONTINUUM_CACHE_MODE"] = "local"
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"], out.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def moto_server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, "moto_server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)  # poll the port until the bounded deadline
        else:
            pytest.fail("moto_server did not listen within 30 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_handler_reads_token_and_keys_from_ssm_over_http(
    moto_server: str, monkeypatch: pytest.MonkeyPatch, emulator: object
) -> None:
    """The whole path a deployed function takes: names in env, values over the AWS API."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    ssm = boto3.client("ssm", endpoint_url=moto_server)
    token = emulator.token  # type: ignore[attr-defined]
    ssm.put_parameter(Name="/continuum/test/token", Value=token, Type="SecureString")
    ssm.put_parameter(Name="/continuum/test/keys", Value="ssm-key-1,ssm-key-2", Type="SecureString")
    from lambda_events import FakeContext, make_event, read_response

    from continuum.platforms.aws_lambda.handler import Container

    container = Container(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))},
            "UPSTASH_REDIS_REST_URL": emulator.url,  # type: ignore[attr-defined]
            "UPSTASH_REDIS_REST_TOKEN_PARAM": "/continuum/test/token",
            "CONTINUUM_API_KEYS_PARAM": "/continuum/test/keys",
        }
    )
    event = make_event(
        "apigw_http_v2", "GET", "/v1/stats", {"authorization": "Bearer ssm-key-2"}, None
    )
    status, headers, body = read_response("apigw_http_v2", container.invoke(event, FakeContext()))
    assert status == 200, body
    assert headers["x-cache-backend"] == "upstash"
    assert token.encode() not in body
