"""Fixtures for the fault suite: a fault proxy in front of the emulator, a hand-turned clock."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.rest.breaker import reset_breakers
from tests.tooling import ManualClock

from .fault_proxy import FaultProxy


@pytest.fixture
def proxy(emulator: EmulatorHandle) -> Iterator[FaultProxy]:
    parts = urlsplit(emulator.url)
    assert parts.hostname is not None and parts.port is not None
    reset_breakers()  # a port may be reused across tests: start from a closed circuit
    with FaultProxy(parts.hostname, parts.port) as running:
        yield running
    reset_breakers()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(10_000.0)
