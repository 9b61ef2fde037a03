"""Commands that set or read a time to live on fakeredis, with Redis's precision.

fakeredis stores SETEX's, PSETEX's and GETEX's expiry truncated to a whole second of the
clock (``int(now + ttl)``): a key set with ``SETEX k 10`` lives 9 to 10 seconds, one set
with ``PSETEX k 800`` can be gone at once, and TTL right after answers 9 about half the
time. These keep the millisecond, as Redis does. HSETEX KEEPTTL keeps the fields' TTLs
(fakeredis drops them), and TTL rounds to the nearest second as Redis does (fakeredis
rounds down).
"""

from __future__ import annotations

from typing import Any

from fakeredis._command_args_parsing import Int
from fakeredis._commands import Key
from fakeredis._core import CommandItem
from fakeredis._helpers import casematch
from fakeredis.model import Hash

from continuum.emulator.extension import command

_RELATIVE = {b"EX": 1.0, b"PX": 0.001}
_ABSOLUTE = {b"EXAT": 1.0, b"PXAT": 0.001}


class ExpiryCommands:
    """Mixed into the emulator's fakeredis socket (see ``continuum.emulator.fake``)."""

    _db: Any

    @command("ttl", (Key(),))
    def ttl(self, key: CommandItem) -> int:
        millis = int(self.pttl(key))  # type: ignore[attr-defined]
        return millis if millis < 0 else (millis + 500) // 1000

    @command("setex", (Key(), Int, bytes))
    def setex(self, key: CommandItem, seconds: int, value: bytes) -> Any:
        answer = super().setex(key, seconds, value)  # type: ignore[misc]
        key.expireat = self._db.time + seconds
        return answer

    @command("psetex", (Key(), Int, bytes))
    def psetex(self, key: CommandItem, millis: int, value: bytes) -> Any:
        answer = super().psetex(key, millis, value)  # type: ignore[misc]
        key.expireat = self._db.time + millis / 1000
        return answer

    @command("getex", (Key(bytes),), (bytes,))
    def getex(self, key: CommandItem, *args: bytes) -> Any:
        answer = super().getex(key, *args)  # type: ignore[misc]
        if key and len(args) == 2:  # one option with a time (fakeredis refused any other)
            option, when = args[0].upper(), int(args[1])
            if option in _RELATIVE:
                key.expireat = self._db.time + when * _RELATIVE[option]
            elif option in _ABSOLUTE:
                key.expireat = when * _ABSOLUTE[option]
        return answer

    @command("hsetex", (Key(Hash),), (bytes,))
    def hsetex(self, key: CommandItem, *args: bytes) -> Any:
        options = args[: next((i for i, a in enumerate(args) if casematch(a, b"fields")), 0)]
        kept: dict[bytes, int] = {}
        if any(casematch(option, b"keepttl") for option in options) and key.value:
            kept = {f: when for f in key.value if (when := key.value.get_key_expireat(f))}
        answer = super().hsetex(key, *args)  # type: ignore[misc]
        for field, when in kept.items():
            if field in key.value:
                key.value.set_key_expireat(field, when)
        return answer
