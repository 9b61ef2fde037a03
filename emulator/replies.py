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
