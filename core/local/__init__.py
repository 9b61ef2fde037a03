"""The local store: an in-memory Redis for the request-scoped fallback and local mode.

``store`` (``LocalCache``: fast paths, dispatch, scripts) builds on ``keyspace`` (values,
expiry, eviction); ``commands`` and ``collections`` are the command tables, ``values``
Redis's number parsing and texts, ``glob`` Redis's pattern matching.
"""

from continuum.local.commands import MAX_EXPIRE_MS
from continuum.local.glob import compile_glob
from continuum.local.store import Command, LocalCache, Reply, register_local_script

__all__ = [
    "MAX_EXPIRE_MS",
    "Command",
    "LocalCache",
    "Reply",
    "compile_glob",
    "register_local_script",
]
