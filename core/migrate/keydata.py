"""Reading whole keys of any type, from any store, with bounded commands.

A key is read by a generator that yields lists of commands and receives their replies
(the sans-I/O pattern of :mod:`continuum.cache.drive`), so one reader serves the source
(redis-py over TCP) and the target (Upstash over REST, for ``--verify``), and
:func:`read_keys` runs many keys' readers in lockstep: each step's commands for every key
travel in one pipeline. No command reads an unbounded amount: collections are walked
with HSCAN/SSCAN/ZSCAN, LRANGE and XRANGE pages, long strings with GETRANGE.

What comes back is canonical, so two stores holding the same data give equal
:class:`KeyData`: hash fields and set members sorted, sorted-set members sorted with
their scores as Redis prints them (exact text, never a float), stream entries in ID order.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from continuum.errors import CommandError, ServerError

__all__ = ["PAGE", "KeyData", "read_key", "read_keys"]

Command = tuple[str | bytes | int, ...]
Reader = Generator[list[Command], list[Any], "KeyData | None"]

#: Elements per page of a collection read (and per write command, see plan.py).
PAGE = 1000
#: Strings longer than this are read in GETRANGE slices.
_SLICE = 4 * 1024 * 1024
_RETRIES = 3

SUPPORTED = ("string", "hash", "list", "set", "zset", "stream")


@dataclass
class KeyData:
    """One key as read: its type, remaining TTL and canonical content.

    ``items`` is, by type: ``[value]`` for a string; sorted ``(field, value)`` pairs for a
    hash; the elements in order for a list; sorted members for a set; ``(member, score)``
    sorted by member for a sorted set; ``(id, [field, value, ...])`` in order for a stream.
    ``pttl`` is milliseconds left (-1: no expiry), measured at ``read_at`` (monotonic).
    ``too_large`` is set, and reading stopped, once the content passed the size limit.
    """

    key: bytes
    kind: str
    pttl: int
    read_at: float
    items: list[Any] = field(default_factory=list)
    size: int = 0
    stream_last_id: bytes | None = None
    groups: list[tuple[bytes, bytes]] = field(default_factory=list)
    too_large: bool = False

    @property
    def supported(self) -> bool:
        return self.kind in SUPPORTED

    def content(self) -> tuple[Any, ...]:
        """What two copies of a key must agree on (the TTL is compared apart). Scores are
        compared as the doubles they are: two servers may print one differently."""
        items = [(m, float(s)) for m, s in self.items] if self.kind == "zset" else self.items
        return (self.kind, items, self.groups)

    def fingerprint(self) -> str:
        """A digest of the content: a key that changed between two runs is noticed."""
        digest = hashlib.sha256(repr((self.content(), self.stream_last_id)).encode())
        return digest.hexdigest()


def read_key(key: bytes, *, limit: int, metadata: bool = True) -> Reader:
    """Read ``key`` (None when it does not exist). ``metadata`` also reads the stream's
    last generated ID (XINFO STREAM, which Upstash's REST API does not serve)."""
    # A string's first slice comes with its type: most strings are read in one step (for
    # another type GETRANGE answers WRONGTYPE, which is ignored).
    kind_reply, pttl, head = yield [("TYPE", key), ("PTTL", key), ("GETRANGE", key, 0, _SLICE - 1)]
    kind = _text(_ok(kind_reply))
    if kind == "none":
        return None
    data = KeyData(key, kind, _int(_ok(pttl)), time.monotonic())
    if kind == "string":
        yield from _string(data, _bytes(_ok(head)), limit)
    elif kind in ("hash", "set", "zset"):
        yield from _scanned(data, limit)
    elif kind == "list":
        yield from _list(data, limit)
    elif kind == "stream":
        yield from _stream(data, limit, metadata)
    return data


def _string(data: KeyData, head: bytes, limit: int) -> Generator[list[Command], list[Any], None]:
    """``head`` is the first slice; a string that fills it is measured, then read on."""
    parts = [head]
    if len(head) == _SLICE:
        (length,) = yield [("STRLEN", data.key)]
        data.size = _int(_ok(length))
        if data.size > limit:
            data.too_large = True
            return
        for start in range(_SLICE, data.size, _SLICE):
            (part,) = yield [("GETRANGE", data.key, start, start + _SLICE - 1)]
            parts.append(_bytes(_ok(part)))
    data.items = [b"".join(parts)]
    data.size = len(data.items[0])
    data.too_large = data.size > limit


_SCANS = {"hash": "HSCAN", "set": "SSCAN", "zset": "ZSCAN"}


def _scanned(data: KeyData, limit: int) -> Generator[list[Command], list[Any], None]:
    """HSCAN/SSCAN/ZSCAN to the end; SCAN may repeat an element, the dict keeps one."""
    pairs = data.kind != "set"
    found: dict[bytes, bytes | None] = {}
    cursor: bytes = b"0"
    while True:
        (page,) = yield [(_SCANS[data.kind], data.key, cursor, "COUNT", PAGE)]
        page = _ok(page)
        if not isinstance(page, list) or len(page) != 2 or not isinstance(page[1], list):
            raise ServerError(f"{_SCANS[data.kind]} answered an unexpected shape")
        cursor, flat = _bytes(page[0]), [_bytes(x) for x in page[1]]
        if pairs:
            for name, value in zip(flat[::2], flat[1::2], strict=True):
                data.size += 0 if name in found else len(name) + len(value)
                found[name] = value
        else:
            for name in flat:
                data.size += 0 if name in found else len(name)
                found[name] = None
        if data.size > limit:
            data.too_large = True
            return
        if cursor == b"0":
            break
    names = sorted(found)
    data.items = [(n, found[n]) for n in names] if pairs else names


def _list(data: KeyData, limit: int) -> Generator[list[Command], list[Any], None]:
    start = 0
    while True:
        (page,) = yield [("LRANGE", data.key, start, start + PAGE - 1)]
        elements = [_bytes(x) for x in _ok(page)]
        data.items += elements
        data.size += sum(len(e) for e in elements)
        if data.size > limit:
            data.too_large = True
            return
        if len(elements) < PAGE:
            return
        start += PAGE


def _stream(data: KeyData, limit: int, metadata: bool) -> Generator[list[Command], list[Any], None]:
    start = b"-"
    while True:
        (page,) = yield [("XRANGE", data.key, start, "+", "COUNT", PAGE)]
        for entry in _ok(page):
            entry_id, flat = _bytes(entry[0]), [_bytes(x) for x in entry[1]]
            data.items.append((entry_id, flat))
            data.size += len(entry_id) + sum(len(x) for x in flat)
        if data.size > limit:
            data.too_large = True
            return
        if len(_ok(page)) < PAGE:
            break
        start = b"(" + data.items[-1][0]
    commands: list[Command] = [("XINFO", "GROUPS", data.key)]
    if metadata:
        commands.append(("XINFO", "STREAM", data.key))
    replies = yield commands
    for group in _ok(replies[0]):
        info = _pairs(group)
        data.groups.append((info[b"name"], info[b"last-delivered-id"]))
    data.groups.sort()
    if metadata:
        data.stream_last_id = _pairs(_ok(replies[1]))[b"last-generated-id"]


def read_keys(
    keys: Sequence[bytes],
    execute: Callable[[list[Command]], list[Any]],
    *,
    limit: int,
    metadata: bool = True,
) -> list[KeyData | None]:
    """Read many keys in lockstep: one pipeline per step, every unfinished key in it.

    A key whose type changed while it was read (its next command answered WRONGTYPE) is
    read again from the start, a few times at most.
    """
    readers = [read_key(key, limit=limit, metadata=metadata) for key in keys]
    retries = [_RETRIES] * len(keys)
    results: list[KeyData | None] = [None] * len(keys)
    pending: dict[int, list[Command]] = {}
    for i, reader in enumerate(readers):
        pending[i] = next(reader)
    while pending:
        order = list(pending)
        commands = [c for i in order for c in pending[i]]
        replies = execute(commands)
        at = 0
        for i in order:
            size = len(pending[i])
            try:
                pending[i] = readers[i].send(replies[at : at + size])
            except StopIteration as done:
                results[i] = done.value
                del pending[i]
            except CommandError:
                if not retries[i]:
                    raise
                retries[i] -= 1
                readers[i] = read_key(keys[i], limit=limit, metadata=metadata)
                pending[i] = next(readers[i])
            at += size
    return results


def _ok(reply: Any) -> Any:
    if isinstance(reply, CommandError):
        raise reply
    return reply


def _bytes(reply: Any) -> bytes:
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode("utf-8")
    if isinstance(reply, int):
        return str(reply).encode()
    raise ServerError(f"expected a string reply, got {type(reply).__name__}")


def _text(reply: Any) -> str:
    return _bytes(reply).decode("utf-8", "replace")


def _int(reply: Any) -> int:
    if isinstance(reply, int):
        return reply
    try:
        return int(_bytes(reply))
    except ValueError:
        raise ServerError("expected an integer reply") from None


def _pairs(reply: Any) -> dict[bytes, Any]:
    """An XINFO reply (alternating names and values) as a dict."""
    if not isinstance(reply, list) or len(reply) % 2:
        raise ServerError("XINFO answered an unexpected shape")
    return {_bytes(name): value for name, value in zip(reply[::2], reply[1::2], strict=True)}
