"""Faults around the emulator: its Redis going away and coming back; third-party clients.

The outage test owns its redis-server (started here on a free port, stopped mid-test),
so it never disturbs the suite's shared one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow, TokenBucket
from upstash_redis import Redis

from continuum.emulator import EmulatorServer
from continuum.emulator.pytest_plugin import EmulatorHandle


class RedisProcess:
    """A redis-server on a fixed free port that can be stopped and started again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed: run ./scripts/test")
        self.binary = binary
        self.workdir = workdir
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # polling for readiness with a deadline

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


def test_backend_outage_is_a_503_and_recovery_is_automatic(own_redis: RedisProcess) -> None:
    with (
        EmulatorServer(own_redis.url) as emu,
        httpx.Client(
            base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=30
        ) as http,
    ):
        assert http.post("/", json=["SET", "k", "v"]).json() == {"result": "OK"}
        own_redis.stop()
        for response in (
            http.post("/", json=["GET", "k"]),
            http.post("/pipeline", json=[["GET", "k"]]),
            http.post("/multi-exec", json=[["GET", "k"]]),
        ):
            assert response.status_code == 503
            assert response.json()["error"].startswith("ERR emulator backend unavailable")
        own_redis.start()  # a fresh, empty server on the same port
        assert http.post("/", json=["GET", "k"]).json() == {"result": None}
        assert http.post("/", json=["SET", "k", "again"]).json() == {"result": "OK"}


@pytest.mark.parametrize(
    "limiter",
    [
        FixedWindow(max_requests=3, window=60),
        SlidingWindow(max_requests=3, window=60),
        TokenBucket(max_tokens=3, refill_rate=1, interval=60),
    ],
    ids=["fixed", "sliding", "token-bucket"],
)
def test_upstash_ratelimit_sdk_runs_its_scripts(emulator: EmulatorHandle, limiter: object) -> None:
    client = Redis(emulator.url, emulator.token, rest_retries=0, allow_telemetry=False)
    ratelimit = Ratelimit(redis=client, limiter=limiter, prefix="rl")  # type: ignore[arg-type]
    assert [ratelimit.limit("user-1").allowed for _ in range(5)] == [True] * 3 + [False] * 2
    assert ratelimit.limit("user-2").allowed is True


@pytest.mark.parametrize("backend", ["fakeredis", "redis"])
def test_a_script_that_never_ends_is_stopped(backend: str, request: pytest.FixtureRequest) -> None:
    target = request.getfixturevalue("redis_url") if backend == "redis" else "fakeredis"
    # redis-server only honours SCRIPT KILL once a script has run for lua-time-limit (5 s).
    with (
        EmulatorServer(target, script_timeout=1.0) as emu,
        httpx.Client(
            base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=60
        ) as http,
    ):
        endless = http.post("/", json=["EVAL", "#!lua\nwhile true do end", 0])
        assert endless.status_code == 400
        assert "killed" in endless.json()["error"] or "stopped" in endless.json()["error"]
        # The backend is usable again, scripts included.
        assert http.post("/", json=["EVAL", "return redis.call('PING')", 0]).json() == {
            "result": "PONG"
        }
        assert http.post("/", json=["SET", "k", "v"]).json() == {"result": "OK"}


@pytest.mark.parametrize("command", ["SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER"])
def test_huge_negative_random_counts_are_out_of_range(
    emulator: EmulatorHandle, command: str
) -> None:
    # redis-server 7.0 crashes on these and fakeredis never answers: refuse them up front.
    emulator.redis.sadd("s", "a")
    emulator.redis.hset("h", "f", "v")
    emulator.redis.zadd("z", {"m": 1})
    key = {"SRANDMEMBER": "s", "HRANDFIELD": "h", "ZRANDMEMBER": "z"}[command]
    headers = {"Authorization": f"Bearer {emulator.token}"}
    huge = httpx.post(emulator.url, json=[command, key, -3598621115998293380], headers=headers)
    assert huge.status_code == 400
    assert huge.json() == {"error": "ERR value is out of range"}
    small = httpx.post(emulator.url, json=[command, key, -3], headers=headers)
    assert len(small.json()["result"]) == 3


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (["SETRANGE", "k", 200 * 1024 * 1024, "x"], "ERR string exceeds maximum allowed size"),
        (["SETBIT", "k", 2**32 - 1, 1], "ERR bit offset is not an integer or out of range"),
    ],
)
def test_writes_far_past_the_end_are_refused(
    emulator: EmulatorHandle, command: list[object], error: str
) -> None:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    response = httpx.post(emulator.url, json=command, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert emulator.redis.exists("k") == 0
    within = httpx.post(emulator.url, json=["SETRANGE", "k", 1000, "x"], headers=headers)
    assert within.json() == {"result": 1001}


DEEP_SCRIPT = (
    "local t = {} local cur = t "
    "for i = 1, tonumber(ARGV[1]) do local n = {} cur[1] = n cur = n end return t"
)


def test_a_reply_nested_thousands_deep_is_an_error_not_a_500(emulator: EmulatorHandle) -> None:
    """A script can return a table nested deeper than Python parses recursively."""
    auth = {"Authorization": f"Bearer {emulator.token}"}
    with httpx.Client(base_url=emulator.url, headers=auth, timeout=30) as http:
        assert http.post("/", json=["EVAL", DEEP_SCRIPT, 0, 50]).status_code == 200
        deep = http.post("/", json=["EVAL", DEEP_SCRIPT, 0, 20_000])
        assert deep.status_code == 400
        assert deep.json()["error"].startswith("ERR ")
        slots = http.post(
            "/pipeline", json=[["EVAL", DEEP_SCRIPT, 0, 20_000], ["SET", "after", "1"]]
        )
        assert slots.status_code == 200
        assert "error" in slots.json()[0]
        assert emulator.redis.get("after") == b"1"  # it ran, whatever its slot says
        assert http.post("/", json=["PING"]).json() == {"result": "PONG"}


def test_many_subscribers_leave_room_for_commands(emulator: EmulatorHandle) -> None:
    """Each subscriber holds a Redis connection while it listens; seventy of them must not
    take the connections commands need (the command pool holds 64)."""
    auth = {"Authorization": f"Bearer {emulator.token}"}
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(
            httpx.Client(
                timeout=10,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )
        )
        held = []
        for _ in range(70):
            stream = stack.enter_context(
                listener.stream("POST", f"{emulator.url}/subscribe/crowd", headers=auth)
            )
            lines = (line for line in stream.iter_lines() if line)
            assert next(lines) == "data: subscribe,crowd,1"
            held.append(lines)
        with httpx.Client(base_url=emulator.url, headers=auth, timeout=10) as http:
            assert http.post("/", json=["SET", "busy", "yes"]).json() == {"result": "OK"}
            assert http.post("/publish/crowd/hello").json() == {"result": 70}
        assert all(next(lines) == "data: message,crowd,hello" for lines in held)
