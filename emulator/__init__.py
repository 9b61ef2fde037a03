"""A local stand-in for Upstash Redis's REST API, for development and tests.

``EmulatorServer`` runs it in a background thread (fakeredis in-process, or a real Redis
by URL); ``continuum emulator`` runs it from the command line; the pytest plugin
(``continuum.emulator.pytest_plugin``) hands a running one to tests. Never part of a deploy bundle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from continuum.emulator.access import DEFAULT_TOKEN

if TYPE_CHECKING:
    from continuum.emulator.server import EmulatorServer

__all__ = ["DEFAULT_TOKEN", "EmulatorServer"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the CLI's --help and the pytest plugin's registration import
    # this package, and the server brings redis-py with it.
    if name == "EmulatorServer":
        from continuum.emulator.server import EmulatorServer

        return EmulatorServer
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
