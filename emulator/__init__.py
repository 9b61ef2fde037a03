"""A local stand-in for Upstash Redis's REST API, for development and tests.

``EmulatorServer`` runs it in a background thread (fakeredis in-process, or a real Redis
by URL); ``continuum emulator`` runs it from the command line; the pytest plugin
(``emulator.pytest_plugin``) hands a running one to tests. Never part of a deploy bundle.
"""

from __future__ import annotations

from emulator.server import DEFAULT_TOKEN, EmulatorServer

__all__ = ["DEFAULT_TOKEN", "EmulatorServer"]
