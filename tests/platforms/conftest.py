"""Shared by every platform test: the behaviour list and an Upstash that is down.

Platform tests live in sub-folders without ``__init__.py`` (a ``tests/platforms``
package would shadow the real ``platforms`` package), so this folder is put on
``sys.path`` here and they ``import behaviour``.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def dead_upstash_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once.

    The port was bound and released, so it is free now; another process grabbing it
    during the test is possible but unlikely, and would show up as a wrong backend.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
