"""``serverless package`` and ``serverless offline``: the real Serverless Framework v3.

Both run in a temporary copy of the files the function needs (so the repo stays
clean), with the pinned npm tools from ``node_modules`` and a Python 3.12 for the
arm64 wheels and the offline runtime. No AWS account is touched: the config holds no
``${ssm:}``/``${aws:}`` variables, and ``serverless offline`` runs the handler locally.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bundles import unexpected
from tests.tooling import copy_repository, missing, python312

ROOT = Path(__file__).resolve().parents[3]
SLS = ROOT / "node_modules" / ".bin" / "serverless"
QUIET = {
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "SLS_INTERACTIVE_SETUP_DISABLE": "1",
    "SLS_DEPRECATION_DISABLE": "*",
}

pytestmark = [pytest.mark.slow, pytest.mark.node]


def service_copy(tmp: Path) -> Path:
    """The files git sees, copied so ``.serverless/`` and the build land outside the repo."""
    if not SLS.exists():
        missing("node_modules/.bin/serverless", "run npm ci (./scripts/test does)")
    work = copy_repository(tmp / "service")
    (work / "node_modules").symlink_to(ROOT / "node_modules")
    return work


def sls_env(py312: str) -> dict[str, str]:
    env = {**os.environ, **QUIET, "CONTINUUM_PY312": py312}
    env.pop("UPSTASH_REDIS_REST_URL", None)
    return env


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = service_copy(tmp_path_factory.mktemp("sls-package"))
    run = subprocess.run(
        [str(SLS), "package"],
        cwd=work,
        env=sls_env(python312()),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return work / ".serverless"


def test_package_names_handler_runtime_and_architecture(packaged: Path) -> None:
    template = json.loads((packaged / "cloudformation-template-update-stack.json").read_text())
    resources = template["Resources"]
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 1
    props = functions[0]["Properties"]
    assert props["Handler"] == "continuum/platforms/aws_lambda/handler.handler"
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    types = {r["Type"] for r in resources.values()}
    assert "AWS::Lambda::Url" in types, "the Function URL is missing"
    routes = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert [r["Properties"]["RouteKey"] for r in routes] == ["$default"]
    variables = props["Environment"]["Variables"]
    assert "UPSTASH_REDIS_REST_TOKEN" not in variables, "a secret value in the environment"
    assert variables["UPSTASH_REDIS_REST_TOKEN_PARAM"].startswith("/continuum/")


def test_package_holds_the_runtime_and_nothing_else(packaged: Path) -> None:
    """The handler's package, its dependencies and the licence: nothing else."""
    with zipfile.ZipFile(packaged / "continuum-api.zip") as archive:
        names = archive.namelist()
        wrong = unexpected(
            names,
            archive.read,
            requirements=["continuum-cache"],
            own=lambda name: name == "LICENSE",
            python="3.12",
            never=("continuum/platforms/vercel/", "continuum/platforms/cloudflare/"),
        )
    assert wrong == [], wrong
    assert "continuum/platforms/aws_lambda/handler.py" in names
    assert "continuum/app/api.py" in names and "continuum/errors.py" in names
    assert not any(n.startswith(("boto3/", "msgpack/", "core/", "platforms/")) for n in names)
    native = [n for n in names if n.endswith(".so")]
    assert all("aarch64" in n or "arm64" in n for n in native), native


def test_package_ships_bytecode_the_runtime_uses(packaged: Path) -> None:
    """Every module has Python 3.12 bytecode that matches its source, and a cold import of
    the handler from the zip's files (read-only, with the zip's dates) compiles nothing."""
    probe = subprocess.run(
        [
            python312(),
            "-I",
            "-S",
            str(Path(__file__).with_name("bytecode_probe.py")),
            str(packaged / "continuum-api.zip"),
            "continuum.platforms.aws_lambda.handler",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    report = json.loads(probe.stdout)
    assert report == {"missing": [], "foreign": [], "timestamp": [], "stale": [], "compiled": []}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def offline_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A service copy, and a Python 3.12 venv with its function's requirements installed
    as serverless-python-requirements installs them (pip in the service folder, so ``.``
    is this project): serverless-offline runs the handler from that venv. The venv is
    kept across runs; the project is reinstalled every time."""
    work = service_copy(tmp_path)
    venv = ROOT / ".cache" / "lambda-py312"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([python312(), "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    for args in (
        ["-r", "platforms/aws_lambda/requirements.txt"],
        ["--force-reinstall", "--no-deps", "."],
    ):
        subprocess.run([*pip, *args], cwd=work, check=True, timeout=300)
    return work, venv


@pytest.fixture
def offline_server(
    tmp_path: Path, offline_venv: tuple[Path, Path], emulator: object
) -> Iterator[str]:
    work, venv = offline_venv
    # serverless-offline 13.10.1 (pinned) runs the manifest's python3.12 as written.
    http_port, lambda_port = _free_port(), _free_port()
    env = sls_env(python312())
    env.update(
        {
            "VIRTUAL_ENV": str(venv),
            "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
            "UPSTASH_REDIS_REST_URL": emulator.url,  # type: ignore[attr-defined]
            "UPSTASH_REDIS_REST_TOKEN": emulator.token,  # type: ignore[attr-defined]
            "CONTINUUM_API_KEYS": "offline-test-key-0123456789",
        }
    )
    log = (tmp_path / "offline.log").open("w")
    proc = subprocess.Popen(
        [
            str(SLS),
            "offline",
            "start",
            "--host",
            "127.0.0.1",
            "--httpPort",
            str(http_port),
            "--lambdaPort",
            str(lambda_port),
            "--noPrependStageInUrl",
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "offline.log").read_text()[-3000:]
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)  # poll the port until the bounded deadline
        else:
            log_text = (tmp_path / "offline.log").read_text()[-3000:]
            pytest.fail(f"serverless offline did not listen within 90 s: {log_text}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.parametrize("emulator", ["fakeredis"], indirect=True)
def test_serverless_offline_answers_end_to_end(offline_server: str) -> None:
    key = {"authorization": "Bearer offline-test-key-0123456789"}
    with httpx.Client(base_url=offline_server, timeout=60) as client:
        health = client.get("/health")
        assert health.status_code == 200, health.text
        assert health.json().get("backend") == "upstash", health.text
        put = client.put(
            "/v1/cache/query/offline", json={"value": {"via": "sls offline"}}, headers=key
        )
        assert put.status_code == 200, put.text
        got = client.get("/v1/cache/query/offline", headers=key)
        assert got.status_code == 200 and got.json()["value"] == {"via": "sls offline"}
        assert got.headers["x-cache-backend"] == "upstash"
        assert "server-timing" in got.headers
        assert client.get("/v1/stats").status_code == 401
        # serverless-offline hands the handler requestContext.http.path still encoded,
        # where AWS decodes it: each key must still be the one the client named.
        for raw, name in (
            ("space%20value", "space value"),
            ("uni%C3%BC", "uni\u00fc"),
            ("100%2541", "100%41"),
            ("50%25", "50%"),
        ):
            put = client.put(f"/v1/cache/query/{raw}?ttl=30", json={"value": name}, headers=key)
            assert (put.status_code, put.json()) == (
                200,
                {"layer": "query", "key": name, "stored": True, "degraded": False},
            ), put.text
            got = client.get(f"/v1/cache/query/{raw}", headers=key)
            assert got.json() == {"layer": "query", "key": name, "value": name}, got.text
