"""Who may reach the emulator: the default token and the loopback test.

Kept apart from ``continuum.emulator.server`` (which pulls in redis-py and the WSGI app) so that
``continuum emulator --help`` and a refused bind answer without loading the server.
"""

from __future__ import annotations

import ipaddress

# Public knowledge (it is in the docs): fine on loopback, refused for a reachable bind.
DEFAULT_TOKEN = "continuum-dev-token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
