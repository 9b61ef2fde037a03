"""Cloudflare: the Worker runs under real Pyodide with the real ``workers`` SDK.

The entry point, its fetch transport and the core run inside Pyodide 0.28.3 (Python
3.13) in Node, installed from local wheels, and reach the emulator over loopback through
the runtime's ``fetch``. What is not Cloudflare's here: Node's fetch stands in for
workerd's, and two workerd-internal JS modules the SDK imports are stubs
(``worker_host.mjs`` says which and why); there are no CPU or subrequest limits.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import socket
import struct
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import behaviour
import httpx
import pytest
from pyodide_worker import ROOT, PyodideWorker, pyodide_python, worker_wheels, wrangler_cli

from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.platforms.cloudflare.bundle import stage
from tests.tooling import copy_repository

pytestmark = [pytest.mark.slow, pytest.mark.node]

TOKEN = "cf-test-token-9d81c7aa"


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return worker_wheels(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory, wheels: list[Path]) -> Iterator[PyodideWorker]:
    workdir = tmp_path_factory.mktemp("cloudflare")
    with open(workdir / "host.log", "wb") as log:
        host = PyodideWorker(workdir, wheels, log)
        yield host
        host.close()


@pytest.fixture
def send(emulator: EmulatorHandle, worker: PyodideWorker) -> behaviour.Send:
    return functools.partial(worker.send, env={**behaviour.ENV, **emulator.env})


@pytest.fixture
def send_to_dead_upstash(dead_upstash_url: str, worker: PyodideWorker) -> behaviour.Send:
    env = {
        **behaviour.ENV,
        "UPSTASH_REDIS_REST_URL": dead_upstash_url,
        "UPSTASH_REDIS_REST_TOKEN": TOKEN,
    }
    return functools.partial(worker.send, env=env)


_ENDLESS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)
_FAULTS = {
    # what the fake Upstash does once it has read a request
    "silent": None,  # holds the connection open and never answers
    "reset": b"",  # closes at once with a TCP reset
    "truncated": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b'Content-Length: 1000\r\n\r\n{"result":',  # the body breaks off
    "error500": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n"
    b"Connection: close\r\n\r\noops",
    # an answer announced far over max_response_size is refused unread
    "huge": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100000000000\r\n\r\n{"result":"',
    # a body that never ends, without a length: cut off at max_response_size
    "endless": _ENDLESS,
    # a redirect must not be followed: it would hand the token to another URL
    "redirect": b"HTTP/1.1 303 See Other\r\nLocation: /followed\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n",
}


@pytest.fixture
def faulty_upstash(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback 'Upstash' failing as the indirect parameter says: (URL, requests read)."""
    answer = _FAULTS[request.param]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    received: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        try:
            received.append(conn.recv(65536))
            if answer is None:
                return  # keep it open: the client must give up by itself
            if answer == _ENDLESS:
                conn.sendall(answer)
                chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
                while True:  # until the client hangs up (the send then fails)
                    conn.sendall(chunk)
            if answer == b"":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.sendall(answer)
            conn.close()
        except OSError:
            conn.close()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    listener.close()
    for conn in held:
        conn.close()


# -- the deploy manifest ----------------------------------------------------------------


def test_compatibility_date_runs_the_python_the_tests_run() -> None:
    config = tomllib.loads((ROOT / "wrangler.toml").read_text())
    assert "python_workers" in config["compatibility_flags"]
    date = datetime.date.fromisoformat(config["compatibility_date"])
    assert date >= datetime.date(2025, 9, 29), "Python 3.13 or newer is required"
    # Cloudflare's runtime: 3.13 from 2025-09-29, 3.14 from 2026-09-08.
    runtime = "3.14" if date >= datetime.date(2026, 9, 8) else "3.13"
    assert runtime == pyodide_python(), "the tests must run the Python the Worker deploys on"


def test_wrangler_uploads_the_entry_core_and_nothing_else(tmp_path: Path) -> None:
    """The pinned wrangler's own dry run: build step, module collection, upload list.

    Every uploaded file is the entry or a module of the package ``continuum`` that runs in
    a Worker; dependencies are pywrangler's to vendor, so nothing else may appear."""
    project = copy_repository(tmp_path / "repo")
    junk = project / ".venv" / "lib" / "site.py"  # a developer's virtualenv must stay out
    junk.parent.mkdir(parents=True)
    junk.write_text("x = 1\n")
    out = tmp_path / "upload"
    done = subprocess.run(
        [str(wrangler_cli()), "deploy", "--dry-run", "--outdir", str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "true"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    uploaded = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    note = (out / "README.md").read_text()  # wrangler's note on the folder, not uploaded
    assert note.startswith("This folder contains the built output assets"), note
    uploaded.remove("README.md")
    assert "entry.py" in uploaded, "the main module is uploaded under its file name"
    assert "class Default(WorkerEntrypoint)" in (out / "entry.py").read_text()
    for needed in (
        "continuum/platforms/cloudflare/transport.py",
        "continuum/app/api.py",
        "continuum/cache/client.py",
        "continuum/ratelimit/scripts/sliding_window.lua",
    ):
        assert needed in uploaded, f"{needed} is not uploaded"
    worker = project / "build" / "worker"
    staged = {str(p.relative_to(worker)) for p in worker.rglob("*") if p.is_file()}
    main = "continuum/platforms/cloudflare/entry.py"
    extra = uploaded - ({"entry.py"} | staged - {main})
    assert extra == set(), f"uploaded but not staged: {sorted(extra)}"
    never = ("continuum/emulator/", "continuum/cli/", "continuum/templates/")
    leaked = [n for n in uploaded if n.startswith(never) or n.endswith("/bundle.py")]
    assert leaked == [], leaked


def test_no_secret_is_written_in_the_manifest() -> None:
    text = (ROOT / "wrangler.toml").read_text()
    for name in ("UPSTASH_REDIS_REST_TOKEN", "CONTINUUM_API_KEYS"):
        assert f"{name} =" not in text and f"{name}=" not in text


# -- the Worker serving requests --------------------------------------------------------


@pytest.mark.parametrize("scenario", behaviour.UP, ids=behaviour.ids(behaviour.UP))
def test_behaviour(scenario: behaviour.Scenario, send: behaviour.Send) -> None:
    scenario.run(behaviour.Client(send))


@pytest.mark.parametrize("scenario", behaviour.DOWN, ids=behaviour.ids(behaviour.DOWN))
def test_behaviour_when_upstash_is_down(
    scenario: behaviour.Scenario, send_to_dead_upstash: behaviour.Send
) -> None:
    scenario.run(behaviour.Client(send_to_dead_upstash))


@pytest.mark.parametrize("faulty_upstash", [f for f in _FAULTS if f != "endless"], indirect=True)
def test_a_failing_upstash_is_abandoned_for_the_fallback(
    faulty_upstash: tuple[str, list[bytes]], worker: PyodideWorker
) -> None:
    """The fetch transport's timeout and error mapping work inside Pyodide."""
    url, received = faulty_upstash
    env = {
        **behaviour.ENV,
        "UPSTASH_REDIS_REST_URL": url,
        "UPSTASH_REDIS_REST_TOKEN": TOKEN,
        "CONTINUUM_TIMEOUT": "2",
    }
    client = behaviour.Client(functools.partial(worker.send, env=env))
    health = client.call("GET", "/health")
    assert health.status == 200, health.describe()
    assert health.headers["x-cache-backend"] == "local", health.describe()
    assert health.json()["status"] == "degraded", health.describe()
    put = client.call("PUT", "/v1/cache/query/k", key="down", json_body={"value": 1})
    assert put.status == 200 and put.json()["degraded"] is True, put.describe()
    assert received, "the Worker never tried Upstash"
    assert not any(b" /followed " in head for head in received), "a redirect was followed"


@pytest.mark.parametrize("faulty_upstash", ["endless"], indirect=True)
def test_an_answer_that_never_ends_is_cut_off_at_the_size_limit(
    faulty_upstash: tuple[str, list[bytes]], worker: PyodideWorker
) -> None:
    """A Worker has 128 MB: an endless body is read only up to max_response_size (set by
    CONTINUUM_MAX_RESPONSE_SIZE), well before the timeouts (raised to 30 s here, so the
    size limit is what stops the read), and the request falls back."""
    url, received = faulty_upstash
    env = {
        **behaviour.ENV,
        "UPSTASH_REDIS_REST_URL": url,
        "UPSTASH_REDIS_REST_TOKEN": TOKEN,
        "CONTINUUM_TIMEOUT": "30",
        "CONTINUUM_ATTEMPT_TIMEOUT": "30",
        "CONTINUUM_MAX_RESPONSE_SIZE": str(2 * 1024 * 1024),
    }
    client = behaviour.Client(functools.partial(worker.send, env=env))
    put = client.call("PUT", "/v1/cache/query/k", key="down", json_body={"value": 1})
    assert put.status == 200 and put.json()["degraded"] is True, put.describe()
    stats = client.call("GET", "/v1/stats", key="down")
    assert stats.status == 200, stats.describe()
    assert stats.json()["circuits"]["primary"]["last_error"] == "ResponseTooLarge", stats.describe()
    assert received, "the Worker never tried Upstash"


def test_configuration_comes_from_the_worker_env(
    emulator: EmulatorHandle, worker: PyodideWorker
) -> None:
    without_keys = {**emulator.env}
    client = behaviour.Client(functools.partial(worker.send, env=without_keys))
    refused = client.call("GET", "/v1/stats", key="auth")
    assert refused.status == 401 and "CONTINUUM_API_KEYS" in refused.json()["error"]["message"]


def test_a_bad_setting_is_a_clean_error_that_hides_the_token(worker: PyodideWorker) -> None:
    env = {
        **behaviour.ENV,
        "UPSTASH_REDIS_REST_URL": "http://upstash.example.com",
        "UPSTASH_REDIS_REST_TOKEN": TOKEN,
    }
    status, headers, body = worker.send("GET", "/health", {}, None, env=env)
    assert status == 503, body
    payload = json.loads(body)
    assert payload["error"]["code"] == "unavailable"
    assert "https" in payload["error"]["message"], "the message should say what to fix"
    bad_limit = {
        **env,
        "UPSTASH_REDIS_REST_URL": "https://upstash.example.com",
        "CONTINUUM_RATE_LIMIT": "lots",
    }
    status, _, body = worker.send("GET", "/health", {}, None, env=bad_limit)
    assert status == 500 and "CONTINUUM_RATE_LIMIT" in json.loads(body)["error"]["message"]
    assert TOKEN.encode() not in body
    assert headers["content-type"].startswith("application/json")


def test_binary_safe_unicode_keys_and_values_survive_the_worker(send: behaviour.Send) -> None:
    client = behaviour.Client(send)
    value = {"emoji": "😀", "nul": "a\u0000b", "big": "x" * 20_000}
    path = "/v1/cache/memory/%F0%9F%98%80%20key"
    put = client.call("PUT", path, key="cache", json_body={"value": value})
    assert put.status == 200, put.describe()
    got = client.call("GET", path, key="cache")
    assert got.status == 200 and got.json()["value"] == value, got.describe()


def test_a_javascript_request_handed_over_unconverted_is_served(
    emulator: EmulatorHandle, worker: PyodideWorker
) -> None:
    send = functools.partial(worker.send, env={**behaviour.ENV, **emulator.env}, raw=True)
    client = behaviour.Client(send)
    put = client.call("PUT", "/v1/cache/query/raw", key="cache", json_body={"value": [1, "ü"]})
    assert put.status == 200, put.describe()
    got = client.call("GET", "/v1/cache/query/raw", key="cache")
    assert got.status == 200 and got.json()["value"] == [1, "ü"], got.describe()


def test_overlapping_requests_in_one_isolate_keep_their_own_scope(
    emulator: EmulatorHandle, worker: PyodideWorker
) -> None:
    """Concurrent requests share the isolate's client, never each other's values or meters."""
    env = {**behaviour.ENV, **emulator.env, "CONTINUUM_RATE_LIMIT": "1000"}
    auth = {
        "authorization": f"Bearer {behaviour.KEYS['cache']}",
        "content-type": "application/json",
    }
    count = 8
    puts = [
        ("PUT", f"/v1/cache/query/overlap-{i}", auth, json.dumps({"value": {"n": i}}).encode())
        for i in range(count)
    ]
    assert [status for status, _, _ in worker.send_many(puts, env=env)] == [200] * count
    gets = [("GET", f"/v1/cache/query/overlap-{i}", auth, None) for i in range(count)]
    answers = worker.send_many(gets, env=env)
    for i, (status, headers, body) in enumerate(answers):
        assert status == 200, body
        assert json.loads(body)["value"] == {"n": i}, "a request got another request's value"
        assert headers["x-cache-backend"] == "upstash"
        commands = int(headers["server-timing"].split('cache-cmd;desc="')[1].split('"')[0])
        assert 1 <= commands <= 3, f"request {i} was billed others' commands: {headers}"


@pytest.mark.parametrize("emulator", ["fakeredis"], indirect=True)  # one isolate boot is enough
def test_a_hostile_value_stored_by_another_client_cannot_kill_the_isolate(
    emulator: EmulatorHandle, wheels: list[Path], tmp_path: Path
) -> None:
    """Runs in its own isolate: the shared one must survive whatever this test finds."""
    deep = "[" * 20_000 + "]" * 20_000
    stored = httpx.post(
        emulator.url,
        json=["SET", "query:deep", deep],
        headers={"Authorization": f"Bearer {emulator.token}"},
    )
    assert stored.status_code == 200, stored.text
    with open(tmp_path / "host.log", "wb") as log:
        isolate = PyodideWorker(tmp_path, wheels, log)
        try:
            client = behaviour.Client(
                functools.partial(isolate.send, env={**behaviour.ENV, **emulator.env})
            )
            got = client.call("GET", "/v1/cache/query/deep", key="cache")
            assert got.status == 500 and got.error_code() == "internal", got.describe()
            assert client.call("GET", "/health").status == 200
        finally:
            isolate.close()


def test_staging_refuses_to_delete_the_repository_or_its_sources(tmp_path: Path) -> None:
    for dangerous in (ROOT, ROOT / "core", ROOT / "platforms", ROOT.parent):
        with pytest.raises(ValueError, match="refusing to stage"):
            stage(dangerous)
    assert (ROOT / "core" / "app" / "api.py").exists()
    staged = stage(tmp_path / "worker")
    assert tmp_path / "worker" / "continuum" / "platforms" / "cloudflare" / "entry.py" in staged


def test_an_upload_without_a_length_is_refused_without_reading_it_all(
    emulator: EmulatorHandle, worker: PyodideWorker
) -> None:
    """A chunked upload declares no length; buffering it whole could exhaust the isolate."""
    env = {**behaviour.ENV, **emulator.env}
    auth = {"authorization": f"Bearer {behaviour.KEYS['cache']}"}
    status, body, pulled = worker.send_upload(
        "/v1/cache/query/streamed", auth, 64 * 1024 * 1024, env=env
    )
    assert status == 413 and b"payload_too_large" in body, body
    assert pulled <= behaviour.MAX_BODY + 4 * 65536, f"the Worker pulled {pulled} bytes"
    # Under the limit the whole stream is read and parsed (the host streams b"x" bytes,
    # so the API then refuses it as JSON, not as too large).
    status, body, pulled = worker.send_upload(
        "/v1/cache/query/streamed", auth, 200_000 // 4, env=env
    )
    assert pulled == 200_000 // 4 and status == 400 and b"not valid JSON" in body, body
