"""``continuum dev`` as a user runs it: a real process, a real socket, the shared behaviour.

The server is started with ``python -m continuum.cli.main dev --port 0``; its banner gives the
URL and key. Requests go over HTTP with httpx, exactly as a user's curl would.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import behaviour
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Dev:
    def __init__(self, proc: subprocess.Popen[str], url: str, key: str, banner: str) -> None:
        self.proc, self.url, self.key, self.banner = proc, url, key, banner

    def send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        with httpx.Client(timeout=30) as client:
            request = client.build_request(
                method, self.url + path, headers=dict(headers), content=body
            )
            reply = client.send(request)
            return reply.status_code, dict(reply.headers), reply.content


def banner_of(proc: subprocess.Popen[str]) -> str:
    """What ``continuum dev`` printed up to its last banner line (bounded wait)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Each request logs"):
            break
    return "".join(lines)


def start_dev(args: list[str], env: Mapping[str, str]) -> Dev:
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum.cli.main", "dev", "--port", "0", *args],
        cwd=ROOT,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = banner_of(proc)
    url = re.search(r"on (http://127\.0\.0\.1:\d+)", banner)
    key = re.search(r"API key: (\S+)", banner)
    if not (url and key):
        proc.kill()
        pytest.fail(f"continuum dev printed no URL/key: {banner!r} {proc.stderr.read()!r}")
    return Dev(proc, url.group(1), key.group(1), banner)


def stop(dev: Dev) -> None:
    dev.proc.terminate()
    try:
        dev.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        dev.proc.kill()


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    server = start_dev([], behaviour.ENV)
    yield server
    stop(server)


@pytest.fixture(scope="module")
def dev_down() -> Iterator[Dev]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    server = start_dev(
        ["--use-env"],
        {
            **behaviour.ENV,
            "UPSTASH_REDIS_REST_URL": dead,
            "UPSTASH_REDIS_REST_TOKEN": "dead-upstash-token",
        },
    )
    yield server
    stop(server)


@pytest.mark.parametrize("scenario", behaviour.UP, ids=behaviour.ids(behaviour.UP))
def test_behaviour(scenario: behaviour.Scenario, dev: Dev) -> None:
    scenario.run(behaviour.Client(dev.send))


@pytest.mark.parametrize("scenario", behaviour.DOWN, ids=behaviour.ids(behaviour.DOWN))
def test_behaviour_when_upstash_is_down(scenario: behaviour.Scenario, dev_down: Dev) -> None:
    scenario.run(behaviour.Client(dev_down.send))


def test_banner_gives_a_working_key_and_curl_examples() -> None:
    server = start_dev([], {})
    try:
        assert server.key.startswith("dev-") and len(server.key) > 20, "a fresh random key"
        assert f"curl {server.url}/health" in server.banner
        assert "embedded emulator" in server.banner
        headers = {"authorization": f"Bearer {server.key}"}
        status, _, _ = server.send(
            "PUT", "/v1/cache/query/greeting", headers, b'{"value": {"hello": "world"}, "ttl": 60}'
        )
        assert status == 200
        status, got, body = server.send("GET", "/v1/cache/query/greeting", headers, None)
        assert status == 200 and b'"hello":"world"' in body
        assert got["x-cache-backend"] == "upstash"
        assert "layers:  sessions, query," in server.banner, "the layers a newcomer can use"
        printed = re.search(
            r"export UPSTASH_REDIS_REST_URL=(\S+) UPSTASH_REDIS_REST_TOKEN=(\S+)", server.banner
        )
        assert printed, f"no emulator settings for the user's own code: {server.banner}"
        from upstash_redis import Redis  # the official SDK, pointed where the banner says

        sdk = Redis(url=printed.group(1), token=printed.group(2))
        assert any("greeting" in k for k in sdk.keys("*")), "the SDK sees the API's data"
    finally:
        stop(server)
    log = server.proc.stdout.read() if server.proc.stdout else ""
    assert '"route":"/v1/cache/{layer}/{key}"' in log, "one JSON line per request"
    request_lines = log.split("Each request logs")[-1]
    assert server.key not in request_lines, "the key leaked into logs"
    assert printed.group(2) not in request_lines, "the emulator token leaked into logs"


def test_bad_percent_encoding_gets_clean_errors_and_chunked_bodies_work(dev: Dev) -> None:
    auth = {"authorization": f"Bearer {behaviour.KEYS['hostile']}"}
    for path in ("/v1/cache/query/%zz", "/v1/cache/query/%ff%fe", "/v1/cache/query/a%00b"):
        status, _, body = dev.send("GET", path, auth, None)
        assert status == 400 and b'"bad_request"' in body, (path, body)
    with httpx.Client(timeout=10) as client:
        reply = client.put(
            dev.url + "/v1/cache/query/k", headers=auth, content=iter([b'{"value":', b"1}"])
        )
        assert reply.status_code == 200, reply.text  # uvicorn decodes chunked bodies
        assert client.get(dev.url + "/v1/cache/query/k", headers=auth).json()["value"] == 1


def test_only_loopback_binds() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "continuum.cli.main", "dev", "--host", "0.0.0.0"],
        cwd=ROOT,
        env=_env({}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "loopback" in run.stderr


def test_a_client_that_stops_sending_is_dropped_not_waited_for(emulator: Any) -> None:
    """A body promised by Content-Length that never comes must not hold the connection
    for ever: after the idle timeout it gets a JSON 408 and the server hangs up."""
    import socket

    from continuum.app import Api, ApiSettings
    from continuum.cache import AsyncUpstashCache
    from continuum.cli.dev import DevServer

    cache = AsyncUpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    api = Api(ApiSettings(api_keys=("k",)), async_cache=cache)
    server = DevServer(api, idle_timeout=0.5).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as stalled:
            stalled.sendall(
                b"PUT /v1/cache/query/k HTTP/1.1\r\nHost: x\r\n"
                b'Authorization: Bearer k\r\nContent-Length: 100\r\n\r\n{"va'
            )
            # the 10 s socket timeout bounds the wait; b"" once the server has closed
            answer = b""
            while chunk := stalled.recv(4096):
                answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), answer
            assert json.loads(body) == {
                "error": "request_timeout",
                "message": "the body never arrived",
            }
        with httpx.Client(timeout=10) as client:
            assert client.get(server.url + "/health").status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (["--port", "99999"], {}, 2, "is not a port"),
        (["--port", "0", "--redis-url", "not-a-url"], {}, 2, "cannot start the emulator"),
        (["--port", "0"], {"CONTINUUM_RATE_LIMIT": "lots"}, 2, "CONTINUUM_RATE_LIMIT"),
        (["--port", "0", "--redis-url", "DEAD"], {}, 1, "no Redis answers"),
    ],
    ids=["port", "redis-url", "setting", "dead-redis"],
)
def test_a_bad_start_is_one_line_not_a_traceback(
    args: list[str], env: dict[str, str], code: int, says: str, dead_upstash_url: str
) -> None:
    """A newcomer's typo gets the reason and an exit code, never a traceback or a server
    that silently answers everything from the fallback."""
    dead_redis = dead_upstash_url.replace("http://", "redis://") + "/0"
    argv = [dead_redis if a == "DEAD" else a for a in args]
    run = subprocess.run(
        [sys.executable, "-m", "continuum.cli.main", "dev", *argv],
        cwd=ROOT,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == code, (run.returncode, run.stdout[-500:], run.stderr[-1500:])
    assert says in run.stderr and "Traceback" not in run.stderr, run.stderr[-1500:]
    assert "Each request logs" not in run.stdout, "a server was started anyway"


# -- --host with an IPv6 loopback literal, with or without brackets ----------------------


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to serve on"
)


@needs_ipv6
@pytest.mark.parametrize("host", ["[::1]", "::1", "0:0:0:0:0:0:0:1"])
def test_an_ipv6_loopback_is_served_and_shown_in_brackets(host: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum.cli.main", "dev", "--host", host, "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = banner_of(proc)
        first = banner.splitlines()[0] if banner else ""
        found = re.fullmatch(r"continuum dev: the reference API on (http://\[::1\]:(\d+))", first)
        assert found, (banner, proc.stderr.read() if proc.poll() is not None else "")
        url = found.group(1)
        assert f"  curl {url}/health\n" in banner
        with httpx.Client(timeout=10) as client:
            reply = client.get(url + "/health")
        assert reply.status_code == 200
        # the port really listens on ::1 (not only a name that resolves to it)
        with socket.socket(socket.AF_INET6) as direct:
            direct.settimeout(10)
            direct.connect(("::1", int(found.group(2))))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_a_bracketed_address_that_is_not_loopback_is_refused() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "continuum.cli.main", "dev", "--host", "[2001:db8::1]"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr == (
        "continuum dev: '[2001:db8::1]' is not a loopback address: the dev server is for "
        "this machine\n"
    )


def test_a_burst_of_clients_loses_no_write() -> None:
    """200 clients at once, each on its own connection: a PUT, then a GET of what it put.

    The embedded emulator runs inside the dev server's process, so a burst only queues
    requests; it must not pass for an outage (the production timings would open the
    circuit and keep the writes in per-request memory, and the GETs would miss).
    """
    import asyncio
    import threading

    server = start_dev([], {"CONTINUUM_RATE_LIMIT": "1000000"})
    assert server.proc.stdout is not None  # one log line per request: keep the pipe drained
    threading.Thread(target=server.proc.stdout.read, daemon=True).start()
    headers = {"Authorization": f"Bearer {server.key}"}

    async def client(i: int) -> tuple[int, str, int, object]:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
            put = await http.put(f"/v1/cache/query/burst{i}", json={"value": i, "ttl": 60})
            got = await http.get(f"/v1/cache/query/burst{i}")
            value = got.json().get("value") if got.status_code == 200 else got.text
            return put.status_code, put.headers.get("x-cache-backend", ""), got.status_code, value

    async def everyone() -> list[tuple[int, str, int, object]]:
        return await asyncio.gather(*(client(i) for i in range(200)))

    try:
        answers = asyncio.run(everyone())
    finally:
        stop(server)
    assert answers == [(200, "upstash", 200, i) for i in range(200)]
