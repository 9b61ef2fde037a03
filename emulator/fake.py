"""fakeredis as the emulator runs it: with the commands Upstash serves that it lacks.

The emulator's fakeredis connections make an ``EmulatorSocket``: fakeredis's socket, whose
command lookup first consults the emulator's own table (``_EXTRA``). The commands there
run under fakeredis's server lock with its argument types, inside transactions and from
scripts alike, and nothing is registered in fakeredis's global command table, so other
users of fakeredis in the same process are unaffected. Geo, JSON, sorted-set, expiry,
stream and float replies are fixed by ``continuum.emulator.geo``, ``rejson``, ``zsets``,
``expiry``, ``streams`` and ``numbers``, which add to the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fakeredis
from fakeredis import _msgs as msgs
from fakeredis._clients._sync import FakeRedisConnection
from fakeredis._commands import COMMANDS_WITH_SUB, SUPPORTED_COMMANDS, Key, Signature
from fakeredis._core import CommandItem
from fakeredis._helpers import SimpleError, casematch
from fakeredis._socket import FakeSocket
from fakeredis.model import is_write_command

from continuum.emulator.expiry import ExpiryCommands
from continuum.emulator.extension import _EXTRA, command
from continuum.emulator.geo import GeoCommands
from continuum.emulator.numbers import NumberCommands
from continuum.emulator.rejson import JsonCommands
from continuum.emulator.streams import StreamCommands
from continuum.emulator.zsets import SortedSetCommands

VERSION = (8, 2)

NO_PICKLES = (
    "ERR the emulator's fakeredis backend does not serve '{command}': its payloads are "
    "Python pickles, which would let a client run code in the emulator; run the emulator "
    "with --redis-url pointing at a real Redis to use DUMP and RESTORE"
)


def extra_names() -> set[str]:
    """The commands the emulator adds to fakeredis (upper-case)."""
    return {name.split(" ")[0].upper() for name in _EXTRA}


def supported_names() -> set[str]:
    """Every command the emulator's fakeredis answers (upper-case)."""
    return {name.split(" ")[0].upper() for name in SUPPORTED_COMMANDS} | extra_names()


def is_write(args: list[bytes]) -> bool:
    """Whether a script's call writes (fakeredis's command table, container sub-commands
    included), for the read-only scripts only fakeredis lacks."""
    name = args[0].lower()
    if is_write_command(name) or name in _WRITES:
        return True
    return len(args) > 1 and is_write_command(name + b" " + args[1].lower())


_WRITES = frozenset({b"hsetex", b"hgetex", b"hgetdel", b"hexpire", b"hpexpire", b"bitop"})


class EmulatorSocket(
    GeoCommands,
    JsonCommands,
    SortedSetCommands,
    ExpiryCommands,
    StreamCommands,
    NumberCommands,
    FakeSocket,
):
    """fakeredis's socket with the emulator's commands looked up first."""

    def _name_to_func(self, cmd_name: str) -> tuple[Callable[..., Any] | None, Signature]:
        sig = _EXTRA.get(cmd_name)
        if sig is not None:
            return getattr(self, sig.func_name), sig
        return super()._name_to_func(cmd_name)

    # fakeredis's DUMP payload is a Python pickle and its RESTORE unpickles whatever the
    # client sends: any token holder could run code in the emulator. Refused here, so no
    # path (a request, a pipeline, a transaction, a script) reaches them.
    @command("dump", (Key(),))
    def dump(self, key: CommandItem) -> Any:
        raise SimpleError(NO_PICKLES.format(command="DUMP"))

    @command("restore", (Key(), bytes, bytes), (bytes,))
    def restore(self, key: CommandItem, *args: bytes) -> Any:
        raise SimpleError(NO_PICKLES.format(command="RESTORE"))

    @command("touch", (Key(),), (Key(),))
    def touch(self, *keys: CommandItem) -> int:
        return sum(1 for key in keys if key)

    @command("bitfield_ro", (Key(bytes),), (bytes,))
    def bitfield_ro(self, key: CommandItem, *args: bytes) -> Any:
        for i in range(0, len(args), 3):
            if not casematch(args[i], b"get") or i + 2 >= len(args):
                raise SimpleError("ERR BITFIELD_RO only supports the GET subcommand")
        return self.bitfield(key, *args)

    @command("bitop", (bytes, Key()), (Key(bytes),))
    def bitop(self, op_name: bytes, dst: CommandItem, *keys: CommandItem) -> int:
        combine = _NEW_BITOPS.get(op_name.upper())
        if combine is None:
            return int(super().bitop(op_name, dst, *keys))
        if len(keys) < 2 and op_name.upper() != b"ONE":
            name = op_name.decode("utf-8", "replace").upper()
            raise SimpleError(f"ERR BITOP {name} must be called with at least two source keys.")
        if not keys:
            raise SimpleError(msgs.WRONG_ARGS_MSG6.format("bitop"))
        values = [key.value if key.value is not None else b"" for key in keys]
        size = max(len(value) for value in values)
        padded = [int.from_bytes(value.ljust(size, b"\x00"), "big") for value in values]
        result = combine(padded[0], padded[1:], (1 << (8 * size)) - 1).to_bytes(size, "big")
        dst.value = result or None
        return len(result)

    @command("lpos", (Key(list), bytes), (bytes,))
    def lpos(self, key: CommandItem, elem: bytes, *args: bytes) -> Any:
        """fakeredis's RANK-zero error lacks Redis's ``ERR`` code."""
        try:
            return super().lpos(key, elem, *args)
        except SimpleError as error:
            if error.value.startswith("RANK "):
                raise SimpleError(f"ERR {error.value}") from None
            raise

    @command("memory", (bytes,), (bytes,))
    def memory(self, sub: bytes, *args: bytes) -> Any:
        if not casematch(sub, b"usage") or not args:
            raise SimpleError(msgs.WRONG_ARGS_MSG6.format("memory"))
        item = self._db.get(args[0])
        if item is None:
            return None
        return _memory_of(args[0], item.value)

    @command("ts.mget", (bytes,), (bytes,))
    def ts_mget_guarded(self, *args: bytes) -> Any:
        """fakeredis's TS.MGET loops forever on an argument it does not know (or on
        SELECTED_LABELS), freezing every client: those answer its arity error instead."""
        for arg in args:
            if casematch(arg, b"filter"):
                break
            if not (casematch(arg, b"latest") or casematch(arg, b"withlabels")):
                raise SimpleError(msgs.WRONG_ARGS_MSG6.format("ts.mget"))
        return self.ts_mget(*args)

    @command("info", (), (bytes,))
    def info(self, *sections: bytes) -> bytes:
        """The server and keyspace sections (Upstash's REST docs call ``/info``; fakeredis
        has no INFO). Other sections asked by name are empty, as Redis answers an unknown
        one."""
        wanted = {section.lower() for section in sections} or {b"default"}
        every = bool(wanted & {b"all", b"everything", b"default"})
        lines: list[str] = []
        if every or b"server" in wanted:
            version = ".".join(str(part) for part in VERSION) + ".0"
            lines += ["# Server", f"redis_version:{version}", "redis_mode:standalone", ""]
        if every or b"keyspace" in wanted:
            lines.append("# Keyspace")
            keys = len(self._db)
            if keys:
                expires = sum(1 for item in self._db.values() if item.expireat is not None)
                lines.append(f"db0:keys={keys},expires={expires},avg_ttl=0")
            lines.append("")
        return "\r\n".join(lines).encode()


def _any(values: list[int]) -> int:
    out = 0
    for value in values:
        out |= value
    return out


def _one(first: int, rest: list[int], mask: int) -> int:
    seen, twice = first, 0
    for value in rest:
        twice |= seen & value
        seen |= value
    return seen & ~twice & mask


_NEW_BITOPS: dict[bytes, Callable[[int, list[int], int], int]] = {
    # DIFF: in the first key and in none of the others; DIFF1: in some other key but not
    # the first; ANDOR: in the first key and in at least one other; ONE: in exactly one.
    b"DIFF": lambda first, rest, mask: first & ~_any(rest) & mask,
    b"DIFF1": lambda first, rest, mask: ~first & _any(rest) & mask,
    b"ANDOR": lambda first, rest, mask: first & _any(rest),
    b"ONE": _one,
}


def _memory_of(key: bytes, value: Any) -> int:
    """About what Redis reports for a key: the key, the value and a fixed overhead."""
    overhead = 48
    if isinstance(value, bytes):
        return overhead + len(key) + len(value)
    try:
        items = list(value.items()) if hasattr(value, "items") else list(value)
    except TypeError:
        return overhead + len(key)
    size = 0
    for item in items:
        parts = item if isinstance(item, tuple) else (item,)
        size += sum(len(p) if isinstance(p, bytes) else 8 for p in parts) + 16
    return overhead + len(key) + size


class EmulatorConnection(FakeRedisConnection):
    """A fakeredis connection whose socket is an ``EmulatorSocket``."""

    def _connect(self) -> EmulatorSocket:
        assert self._server is not None  # fakeredis sets it for every connection
        if not self._server.connected:
            raise self._connection_error_class(msgs.CONNECTION_ERROR_MSG)
        return EmulatorSocket(
            self._server,
            client_class=self._client_class,
            db=self.db,
            lua_modules=self._lua_modules,
            client_info=self._client_info,
        )


def server() -> Any:
    return fakeredis.FakeServer(version=VERSION)


def client(fake_server: Any) -> Any:
    return fakeredis.FakeRedis(
        server=fake_server, protocol=2, version=VERSION, connection_class=EmulatorConnection
    )


assert "memory" not in COMMANDS_WITH_SUB  # MEMORY's sub-command reaches ``memory`` as an argument
