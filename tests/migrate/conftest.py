"""Real servers for the migration tests: redis-server processes of their own, and emulators.

- ``redis_server_factory``: starts ``redis-server`` processes on free loopback ports
  (``--save ''``, nothing on disk) and stops them at the end of the session. A server
  counts as started when it logs that it is ready to accept connections.
- ``source``: a flushed redis-server to copy from (a redis-py client on it).
- ``target``: the emulator, parametrised over fakeredis and over a *second* redis-server,
  empty and with its billing counter at zero.
- ``dead_port``: a loopback port where nothing listens.

Missing ``redis-server`` fails under ``CI=true`` and skips elsewhere, like ``redis_url``.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from continuum.emulator.pytest_plugin import EmulatorHandle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisProcess:
    """One redis-server child process on loopback."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._await_ready()

    def _await_ready(self, timeout: float = 20.0) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        log = b""
        while b"Ready to accept connections" not in log:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{log.decode(errors='replace')}")
            log += chunk
        # Keep draining its log, so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(fd,), daemon=True).start()

    @staticmethod
    def _drain(fd: int) -> None:
        while os.read(fd, 65536):
            pass

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class RedisServers:
    def __init__(self) -> None:
        self.started: list[RedisProcess] = []

    def start(self, *extra: str) -> RedisProcess:
        server = RedisProcess(*extra)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture(scope="session")
def redis_server_factory() -> Iterator[RedisServers]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed (scripts/test installs it)")
        pytest.skip("no redis-server: run ./scripts/test, which installs it")
    servers = RedisServers()
    yield servers
    servers.stop_all()


@pytest.fixture(scope="session")
def _source_server(redis_server_factory: RedisServers) -> RedisProcess:
    return redis_server_factory.start()


@pytest.fixture
def source(_source_server: RedisProcess) -> Iterator[RedisProcess]:
    """The redis-server to copy from, empty."""
    _source_server.client().flushall()
    yield _source_server


@pytest.fixture(scope="session")
def _targets(redis_server_factory: RedisServers) -> Iterator[dict[str, Any]]:
    running: dict[str, Any] = {}
    yield running
    for server in running.values():
        server.stop()


@pytest.fixture(params=["fakeredis", "redis"])
def target(
    request: pytest.FixtureRequest,
    _targets: dict[str, Any],
    redis_server_factory: RedisServers,
) -> EmulatorHandle:
    """The emulator, over fakeredis and over a second redis-server: empty, billing zeroed."""
    from continuum.emulator import EmulatorServer

    server = _targets.get(request.param)
    if server is None:
        backend = "fakeredis"
        if request.param == "redis":
            backend = redis_server_factory.start().url
        server = EmulatorServer(backend, token="migrate-token-0123456789")
        server.start()
        _targets[request.param] = server
    return EmulatorHandle(server.url, server.token, server.readonly_token, server.app).fresh()


@pytest.fixture
def dead_port() -> int:
    return free_port()
