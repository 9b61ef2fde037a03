"""Where Upstash answers differently from Redis, on every backend.

Each rule was checked against the official SDKs' tests, which run against real Upstash
(upstash-redis for Python, @upstash/redis): the command is rewritten before it runs, or
its reply after, so fakeredis and redis-server alike answer as Upstash does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from continuum.emulator.resp import Command, ErrorReply, Reply

if TYPE_CHECKING:
    from continuum.emulator.backend import Backend, Plan


def translate(args: Command, backend: Backend) -> Plan:
    name = args[0].upper()
    rule = _RULES.get(name)
    if rule is None:
        return args, None
    return rule(args, backend)


def _xinfo(args: Command, backend: Backend) -> Plan:
    """XINFO CONSUMERS of a group that does not exist answers ``[]``, not NOGROUP."""
    if len(args) > 1 and args[1].upper() == b"CONSUMERS":
        return args, _no_group_is_empty
    return args, None


def _no_group_is_empty(reply: Reply) -> tuple[Reply, int]:
    if isinstance(reply, ErrorReply) and reply.message.startswith("NOGROUP"):
        return [], 0
    return reply, 0


def _copy(args: Command, backend: Backend) -> Plan:
    """COPY of a key onto itself answers 0 (nothing copied), not an error."""
    if len(args) >= 3 and args[1] == args[2]:
        return args, _same_key_is_zero
    return args, None


def _same_key_is_zero(reply: Reply) -> tuple[Reply, int]:
    if isinstance(reply, ErrorReply) and "same" in reply.message:
        return 0, 0
    return reply, 0


_RULES = {
    b"XINFO": _xinfo,
    b"COPY": _copy,
}
