"""The contract fixture: every cache test runs on three backends.

- ``emulator-fakeredis``: the REST client against the emulator over fakeredis;
- ``emulator-redis``: the REST client against the emulator over a real redis-server;
- ``local``: local mode (no Upstash configured), the instance's own ``LocalCache``.

``Backend.billed()`` counts the commands Upstash would bill (None in local mode), which
lets a test prove that something was refused *before* anything was sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from continuum import AsyncUpstashCache, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from tests.resilience.fault_proxy import FaultProxy

BACKENDS = ["emulator-fakeredis", "emulator-redis", "local"]


@dataclass
class Backend:
    name: str
    emulator: EmulatorHandle | None

    @property
    def is_local(self) -> bool:
        return self.emulator is None

    def options(self) -> dict[str, Any]:
        if self.emulator is None:
            return {"mode": "local"}
        return {"rest_url": self.emulator.url, "rest_token": self.emulator.token}

    def billed(self) -> int | None:
        return None if self.emulator is None else self.emulator.billed()

    def sync(self, **extra: Any) -> UpstashCache:
        return UpstashCache(**self.options(), **extra)

    def aio(self, **extra: Any) -> AsyncUpstashCache:
        return AsyncUpstashCache(**self.options(), **extra)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, _emulator_servers: Any) -> Backend:
    if request.param == "local":
        return Backend("local", None)
    if request.param == "emulator-redis":
        target = request.getfixturevalue("redis_url")
    else:
        target = "fakeredis"
    return Backend(request.param, _emulator_servers.get(target).fresh())


@pytest.fixture
def cache(backend: Backend) -> Iterator[UpstashCache]:
    client = backend.sync()
    yield client
    client.close()


@pytest.fixture
async def acache(backend: Backend) -> Any:
    client = backend.aio()
    yield client
    await client.aclose()


@pytest.fixture
def upstream(_emulator_servers: Any) -> Any:
    """A fresh emulator over fakeredis, for tests that put a fault proxy in front of it."""
    return _emulator_servers.get("fakeredis").fresh()


@pytest.fixture
def proxy(upstream: Any) -> Iterator[FaultProxy]:
    """The fault-injection proxy in front of ``upstream``."""
    with FaultProxy.for_url(upstream.url) as running:
        yield running
