"""Turning backend replies into Upstash's JSON: encoding, error texts and sizes."""

from __future__ import annotations

import base64
from typing import Any

from continuum.emulator import commands
from continuum.emulator.resp import Command, ErrorReply, Reply

_SCRIPT_COMMANDS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})


def upstash_error(args: Command | None, reply: ErrorReply) -> str:
    """Redis's error text, with Upstash's own words where they differ: Redis's "unknown
    command" for the command itself (not one a script called) is Upstash's refusal."""
    if (
        args is not None
        and reply.message.startswith("ERR unknown command")
        and commands.name_of(args) not in _SCRIPT_COMMANDS
    ):
        return commands.unknown_command(args)
    return reply.message


def _encode(reply: Reply, encode: bool) -> Any:
    if reply.__class__ is bytes:
        assert isinstance(reply, bytes)
        if encode:
            return base64.b64encode(reply).decode("ascii")
        return reply.decode("utf-8", "replace")
    if isinstance(reply, list):
        return [_encode(item, encode) for item in reply]
    if isinstance(reply, ErrorReply):
        return reply.message
    return reply


def result(args: Command, reply: Reply, encode: bool) -> Any:
    if encode and reply == b"OK" and commands.replies_status_ok(args):
        return "OK"
    return _encode(reply, encode)


def slot(args: Command, reply: Reply, encode: bool) -> dict[str, Any]:
    if isinstance(reply, ErrorReply):
        return {"error": upstash_error(args, reply)}
    return {"result": result(args, reply, encode)}


# Replies Redis sends as a simple status ("+..."), not a bulk string, under RESP2.
_STATUS_NAMES = frozenset({"TYPE"})


def resp2(args: Command, reply: Reply) -> bytes:
    """The reply as redis-server writes it on the wire (``Upstash-Response-Format: resp2``).
    redis-py reads a status and a bulk string alike, so a status is told by the command:
    ``OK`` of the commands that answer it, ``PONG`` and ``TYPE``'s answer."""
    name = commands.name_of(args)
    status = (
        (reply == b"OK" and commands.replies_status_ok(args))
        or (name == "PING" and len(args) == 1)
        or name in _STATUS_NAMES
    )
    if status and isinstance(reply, bytes):
        return b"+" + reply + b"\r\n"
    out: list[bytes] = []
    _write(reply, out)
    return b"".join(out)


def resp2_error(message: str) -> bytes:
    # An error is one line on the wire: Redis turns line breaks in it into spaces.
    return b"-" + message.replace("\r", " ").replace("\n", " ").encode() + b"\r\n"


def _write(reply: Reply, out: list[bytes]) -> None:
    if isinstance(reply, bytes):
        out += (b"$%d\r\n" % len(reply), reply, b"\r\n")
    elif isinstance(reply, list):
        out.append(b"*%d\r\n" % len(reply))
        for item in reply:
            _write(item, out)
    elif isinstance(reply, ErrorReply):
        out.append(resp2_error(reply.message))
    elif reply is None:
        out.append(b"$-1\r\n")
    else:
        out.append(b":%d\r\n" % reply)
