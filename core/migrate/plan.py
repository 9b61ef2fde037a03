"""What a key becomes on the target: commands in chunks that fit Upstash's request limit.

A key is written by the commands that build it (SET, or HSET/RPUSH/SADD/ZADD of at most
:data:`~continuum.migrate.keydata.PAGE` elements and about :data:`PIECE` bytes each, XADD
per entry) followed by its remaining TTL (``PX`` on a SET, else PEXPIRE). Its commands
are grouped in *chunks*: a chunk is the unit of progress (a checkpoint names the last
chunk applied), and a request carries as many whole chunks as fit, so a hash too big for
one request is spread over several. Strings over :data:`PIECE` bytes are SET and then
APPENDed piece by piece.

REST carries arguments as JSON text. An argument that is not valid UTF-8 (a binary value,
a binary key) cannot travel there, except as the single raw body of a path-form request.
Such a command is sent as ``EVAL`` of :data:`BINARY_SCRIPT`, with the binary arguments
hex-encoded and decoded by the script, so binary data takes part in pipelines and
transactions like text. Upstash bills it as two commands (EVAL and its one call).

The TTL is not known until the chunk is sent (time passes while copying), so plans
hold the :data:`TTL` placeholder, resolved by :func:`finish` at send time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from continuum.migrate.keydata import PAGE, KeyData

__all__ = [
    "BINARY_SCRIPT",
    "PIECE",
    "TTL",
    "Chunk",
    "billed",
    "encoded_size",
    "finish",
    "plan_key",
]

#: Bytes of data per write command (a single larger element gets a command of its own).
PIECE = 1024 * 1024

BINARY_SCRIPT = """\
-- One Redis command whose arguments may be binary: ARGV[1] has a letter per argument,
-- "x" when that argument is hex-encoded (REST carries only UTF-8 text), "t" when not.
local args = {}
for i = 2, #ARGV do
  local arg = ARGV[i]
  if string.byte(ARGV[1], i - 1) == 120 then
    arg = string.gsub(arg, "%x%x", function(h) return string.char(tonumber(h, 16)) end)
  end
  args[i - 1] = arg
end
return redis.call((unpack or table.unpack)(args))
"""


class _Ttl:
    """The remaining TTL in milliseconds, filled in when the chunk is sent."""

    def __repr__(self) -> str:
        return "TTL"


TTL = _Ttl()
Command = tuple[Any, ...]
Chunk = list[Command]


@dataclass(frozen=True)
class Written:
    """A finished command as it goes on the wire, its JSON size and what it bills."""

    command: Command
    size: int
    billed: int


def plan_key(data: KeyData, *, overwrite: bool, guard: bool, piece: int = PIECE) -> list[Chunk]:
    """The chunks that recreate ``data`` on the target.

    ``overwrite``: the target may hold the key already (delete it first). ``guard``: a
    string is written with NX, so a key that appeared in the target meanwhile is left
    alone (its SET answers nil). ``piece``: bytes of data per command.
    """
    key = data.key
    expiring = data.pttl > 0
    if data.kind == "string":
        chunks = _string(data, guard=guard and not overwrite, piece=piece)
    else:
        chunks = [[command] for command in _collection(data, piece)]
    if not chunks:  # Redis keeps no empty collection; nothing to write
        return []
    if overwrite and data.kind != "string":  # a SET replaces whatever was there
        chunks[0].insert(0, ("DEL", key))
    if expiring and not (data.kind == "string" and len(chunks) == 1):
        chunks[-1].append(("PEXPIRE", key, TTL))
    return chunks


def _string(data: KeyData, *, guard: bool, piece: int) -> list[Chunk]:
    value: bytes = data.items[0]
    ttl = ("PX", TTL) if data.pttl > 0 else ()
    if len(value) <= piece:
        return [[("SET", data.key, value, *ttl, *(("NX",) if guard else ()))]]
    pieces = [value[i : i + piece] for i in range(0, len(value), piece)]
    return [[("SET", data.key, pieces[0])]] + [[("APPEND", data.key, p)] for p in pieces[1:]]


_WRITES = {"hash": "HSET", "list": "RPUSH", "set": "SADD", "zset": "ZADD"}


def _collection(data: KeyData, piece: int) -> list[Command]:
    key = data.key
    if data.kind == "stream":
        return _stream(data)
    groups: list[tuple[bytes, ...]]
    if data.kind == "hash":
        groups = [(f, v) for f, v in data.items]
    elif data.kind == "zset":
        groups = [(score, member) for member, score in data.items]
    else:
        groups = [(element,) for element in data.items]
    commands: list[Command] = []
    batch: list[bytes] = []
    size = 0
    for group in groups:
        weight = sum(len(x) for x in group)
        if batch and (len(batch) >= PAGE * len(group) or size + weight > piece):
            commands.append((_WRITES[data.kind], key, *batch))
            batch, size = [], 0
        batch.extend(group)
        size += weight
    if batch:
        commands.append((_WRITES[data.kind], key, *batch))
    return commands


def _stream(data: KeyData) -> list[Command]:
    """XADD each entry at its own ID; then the last generated ID (an XADD that is at once
    XDELeted) when entries after the last one were deleted; then the consumer groups."""
    key = data.key
    commands: list[Command] = [("XADD", key, entry_id, *flat) for entry_id, flat in data.items]
    last_entry = data.items[-1][0] if data.items else b"0-0"
    last = data.stream_last_id or last_entry
    if _stream_id(last) > _stream_id(last_entry):
        commands += [("XADD", key, last, "-", "-"), ("XDEL", key, last)]
    elif not data.items:  # empty, never written to: only MKSTREAM makes one
        placeholder = "continuum-migrate"
        commands += [
            ("XGROUP", "CREATE", key, placeholder, "0", "MKSTREAM"),
            ("XGROUP", "DESTROY", key, placeholder),
        ]
    commands += [("XGROUP", "CREATE", key, name, delivered) for name, delivered in data.groups]
    return commands


def _stream_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or b"0")


def finish(command: Command, ttl_ms: int) -> Written:
    """The command as sent: the TTL filled in, binary arguments hex-encoded in an EVAL."""
    args = [ttl_ms if arg is TTL else arg for arg in command]
    texts = [_text(arg) for arg in args]
    if None not in texts:
        return Written(tuple(args), encoded_size([t for t in texts if t is not None]), 1)
    mask = "".join("t" if t is not None else "x" for t in texts)
    wrapped = ["EVAL", BINARY_SCRIPT, "0", mask]
    wrapped += [t if t is not None else bytes(a).hex() for t, a in zip(texts, args, strict=True)]
    return Written(tuple(wrapped), encoded_size(wrapped), 2)


def _text(arg: Any) -> str | None:
    if isinstance(arg, bytes):
        try:
            return arg.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(arg, bool):
        raise TypeError("booleans are not Redis arguments")
    return str(arg)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encoded_size(texts: Sequence[str]) -> int:
    """Bytes of the command in a REST request body (a JSON array of strings)."""
    return len(_ENCODER.encode(list(texts)).encode("utf-8", "surrogatepass"))


def billed(chunks: Sequence[Chunk]) -> int:
    """Commands Upstash bills for these chunks (a binary-safe EVAL counts two)."""
    return sum(finish(command, 1).billed for chunk in chunks for command in chunk)
