"""``continuum emulator`` as a user runs it: a subprocess that prints its env lines and serves."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CONTINUUM_EMULATOR_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "continuum.cli.main", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _env_lines(process: subprocess.Popen[str], deadline: float = 30.0) -> dict[str, str]:
    assert process.stdout is not None
    found: dict[str, str] = {}
    end = time.monotonic() + deadline
    while len(found) < 2 and time.monotonic() < end:
        line = process.stdout.readline()
        if not line:
            break
        name, eq, value = line.strip().partition("=")
        if eq and name.startswith("UPSTASH_REDIS_REST_"):
            found[name] = value
    return found


def test_prints_the_env_lines_and_serves() -> None:
    process = _start("--port", "0", "--token", "cli-test-token")
    try:
        env = _env_lines(process)
        assert env["UPSTASH_REDIS_REST_TOKEN"] == "cli-test-token"
        url = env["UPSTASH_REDIS_REST_URL"]
        assert url.startswith("http://127.0.0.1:")
        headers = {"Authorization": "Bearer cli-test-token"}
        assert httpx.post(url, json=["SET", "k", "v"], headers=headers).json() == {"result": "OK"}
        assert httpx.get(f"{url}/get/k", headers=headers).json() == {"result": "v"}
        assert httpx.get(f"{url}/get/k").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "cli-test-token" not in stderr


def test_serves_a_real_redis(redis_url: str) -> None:
    process = _start("--port", "0", "--redis-url", redis_url)
    try:
        url = _env_lines(process)["UPSTASH_REDIS_REST_URL"]
        headers = {"Authorization": "Bearer continuum-dev-token"}
        assert httpx.post(url, json=["PING"], headers=headers).json() == {"result": "PONG"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--host", "0.0.0.0"], "--allow-remote"),
        (["--host", "0.0.0.0", "--allow-remote"], "default token"),
        (["--host", "192.0.2.10", "--token", "s3cret"], "--allow-remote"),
    ],
)
def test_refuses_a_reachable_bind_without_consent(args: list[str], reason: str) -> None:
    process = _start(*args, "--port", "0")
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert reason in stderr
    assert "UPSTASH_REDIS_REST_URL" not in stdout


def test_unreachable_redis_is_a_clear_error() -> None:
    process = _start("--port", "0", "--redis-url", "redis://127.0.0.1:1/0")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "cannot use the backend" in stderr
    assert "Traceback" not in stderr


def test_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _start("--port", str(port))
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    process = _start("--port", port)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "is not a port: use 0-65535" in stderr
    assert "Traceback" not in stderr and "backend" not in stderr


def test_serves_https_with_a_certificate(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    process = _start(
        "--port", "0", "--token", "tls-token", "--tls-cert", str(cert), "--tls-key", str(key)
    )
    try:
        url = _env_lines(process)["UPSTASH_REDIS_REST_URL"]
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
            answer = client.post(url, json=["PING"], headers={"Authorization": "Bearer tls-token"})
        assert answer.json() == {"result": "PONG"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_missing_certificate_is_a_clear_error(tmp_path: Path) -> None:
    process = _start("--port", "0", "--tls-cert", str(tmp_path / "nope.pem"))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "cannot use the TLS certificate" in stderr
    assert "Traceback" not in stderr


def test_help_and_the_plugin_leave_the_server_unloaded() -> None:
    """`continuum emulator --help` and pytest's loading of the plugin must not pay for
    redis-py and the server (cold start; the plugin loads in every user's test run)."""
    probe = (
        "import contextlib, io, sys\n"
        "import continuum.emulator.pytest_plugin\n"
        "from continuum.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        main(['emulator', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert '--redis-url' in out.getvalue(), out.getvalue()\n"
        "heavy = ('redis', 'fakeredis', 'continuum.emulator.server')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
