"""Which commands Redis (and so Upstash) knows, and which ones this backend lacks.

The emulator serves whatever Upstash serves, through its backend. When the backend is
missing a command (fakeredis never implemented it; the redis-server at ``--redis-url`` is
older than the command), the client is told so, and what to do, instead of Upstash's
"Command is not available" (which would wrongly say Upstash refuses it). Redis's own
command list comes from fakeredis's copy of ``COMMAND DOCS`` (every command up to Redis 8,
modules included); a backend's list from ``COMMAND`` (redis-server) or fakeredis's table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from continuum.emulator.backend import Backend

# The Redis release that brought a command or option, where it is newer than 7.0.
_SINCE = {
    "HEXPIRE": "7.4", "HPEXPIRE": "7.4", "HEXPIREAT": "7.4", "HPEXPIREAT": "7.4",
    "HTTL": "7.4", "HPTTL": "7.4", "HEXPIRETIME": "7.4", "HPEXPIRETIME": "7.4",
    "HPERSIST": "7.4", "HGETEX": "8.0", "HSETEX": "8.0", "HGETDEL": "8.0",
    "XACKDEL": "8.2", "XDELEX": "8.2", "BITOP DIFF": "8.2", "BITOP DIFF1": "8.2",
    "BITOP ANDOR": "8.2", "BITOP ONE": "8.2",
}  # fmt: skip
_NEW_BITOPS = frozenset({b"DIFF", b"DIFF1", b"ANDOR", b"ONE"})
# Commands redis-server has that fakeredis's copy of COMMAND DOCS leaves out: a backend
# without them lacks them (Upstash serves them), rather than Upstash refusing them.
_UNLISTED = frozenset({"OBJECT", "LOLWUT", "ROLE", "XSETID"})
# Served by the emulator itself on every backend.
_EMULATED = frozenset({"FUNCTION", "FCALL", "FCALL_RO"})


def redis_commands() -> set[str]:
    """Every command Redis knows (upper-case, containers by their first word)."""
    import fakeredis

    with open(os.path.join(os.path.dirname(fakeredis.__file__), "commands.json")) as file:
        return {name.split(" ")[0].upper() for name in json.load(file)} | _UNLISTED


@dataclass
class Catalogue:
    """What one backend answers, and how to say what it lacks."""

    known: set[str]
    served: set[str]
    version: tuple[int, ...]
    where: str

    @classmethod
    def of(cls, backend: Backend) -> Catalogue:
        if backend.kind == "fakeredis":
            from continuum.emulator import fake

            return cls(redis_commands(), fake.supported_names(), fake.VERSION, "fakeredis")
        reply = backend.run([(b"COMMAND",)]).replies[0]
        served = {
            info[0].decode("utf-8", "replace").upper()
            for info in (reply if isinstance(reply, list) else [])
            if isinstance(info, list) and info and isinstance(info[0], bytes)
        }
        raw = backend.client.info("server").get("redis_version", "0")
        version = tuple(int(part) for part in str(raw).split(".") if part.isdigit())
        return cls(redis_commands(), served, version, f"redis {raw} ({backend.describe()})")

    def lacks(self, args: Sequence[bytes]) -> str | None:
        name = args[0].decode("utf-8", "replace").upper()
        if name in _EMULATED or name not in self.known:
            return None  # the emulator's own, or unknown to Redis: Upstash's answer applies
        if name not in self.served:
            return self._refusal(name)
        if name == "BITOP" and len(args) > 1 and args[1].upper() in _NEW_BITOPS:
            feature = f"BITOP {args[1].decode().upper()}"
            if self.version < (8, 2):
                return self._refusal(feature)
        return None

    def _refusal(self, feature: str) -> str:
        since = _SINCE.get(feature)
        if feature.startswith("JSON."):
            need = "a Redis with the JSON module (Redis 8, or Redis Stack)"
        elif since is not None:
            need = f"Redis {since} or later"
        else:
            need = "a Redis that has it"
        # Point at fakeredis only from another backend, and only where fakeredis has it.
        elsewhere = self.where != "fakeredis" and _fakeredis_serves(feature)
        advice = "on fakeredis (the default) or with" if elsewhere else "with"
        return (
            f"ERR the emulator's backend ({self.where}) lacks '{feature}', which Upstash "
            f"serves: run the emulator {advice} --redis-url pointing at {need}"
        )


def _fakeredis_serves(feature: str) -> bool:
    from continuum.emulator import fake

    return feature.split(" ")[0] in fake.supported_names()
