"""Fixtures shared by the whole suite: the real Redis and the emulator over both backends.

- ``redis_url``: the redis-server that ``scripts/test`` starts (``CONTINUUM_TEST_REDIS_URL``).
  Missing, it fails under ``CI=true`` and skips elsewhere with a hint.
- ``emulator``: a running Upstash emulator, parametrised ``fakeredis`` and ``redis`` (in
  front of that redis-server), so every test that uses it runs against both. Servers
  live for the session; each test starts with an empty database and zero billing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

pytest_plugins = ("pytester",)

_HINT = "no redis-server: run ./scripts/test, which starts redis-server"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the throwaway redis-server for this test run."""
    url = os.environ.get("CONTINUUM_TEST_REDIS_URL", "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CONTINUUM_TEST_REDIS_URL is not set under CI ({_HINT})")
        pytest.skip(_HINT)
    return url


class _Servers:
    """Session emulators, started the first time a test asks for one."""

    def __init__(self) -> None:
        self.running: dict[str, object] = {}

    def get(self, backend: str) -> EmulatorHandle:
        from continuum.emulator import EmulatorServer

        server = self.running.get(backend)
        if server is None:
            server = EmulatorServer(backend, token="suite-token", readonly_token="suite-ro-token")
            server.start()
            self.running[backend] = server
        assert isinstance(server, EmulatorServer)
        return EmulatorHandle(server.url, server.token, server.readonly_token, server.app)

    def stop(self) -> None:
        from continuum.emulator import EmulatorServer

        for server in self.running.values():
            assert isinstance(server, EmulatorServer)
            server.stop()


@pytest.fixture(scope="session")
def _emulator_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.stop()


@pytest.fixture(params=["fakeredis", "redis"])
def emulator(request: pytest.FixtureRequest, _emulator_servers: _Servers) -> EmulatorHandle:
    """A running emulator (fakeredis, then real redis-server), empty and with zero billing."""
    target = request.getfixturevalue("redis_url") if request.param == "redis" else "fakeredis"
    return _emulator_servers.get(target).fresh()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's Upstash settings, nor another test's breaker."""
    for name in (
        "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "UPSTASH_REDIS_URL",
        "CONTINUUM_CACHE_MODE", "CONTINUUM_CACHE_FALLBACK", "CONTINUUM_CONFIG",
        "UPSTASH_SESSIONS_REST_URL", "UPSTASH_SESSIONS_REST_TOKEN",
        "UPSTASH_FEDERATION_REST_URL", "UPSTASH_FEDERATION_REST_TOKEN",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    # Circuit breakers are process-wide by design (one per database URL), so a test that
    # opened one would otherwise send the next test using the same emulator to its fallback.
    from continuum.rest.breaker import reset_breakers

    reset_breakers()
    yield
    reset_breakers()
