"""Redis replies as the emulator carries them: values, error replies and their size.

Replies are read from the backend with decoding off and without redis-py's response
callbacks, so bytes stay bytes; errors become ``ErrorReply`` with Redis's full text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import redis
from redis._parsers.base import BaseParser
from redis.exceptions import ExecAbortError, ResponseError

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
TOO_DEEP = "ERR the reply is nested too deeply for the emulator (the command did run)"

# Error codes Redis sends in front of its message. Older redis-py strips "ERR" (and a few
# others) without saying so; an error not starting with one of these lost its "ERR".
_ERROR_CODES = frozenset(
    {
        "WRONGTYPE", "BUSYKEY", "NOGROUP", "BUSYGROUP", "OOM", "BUSY", "NOTBUSY", "MISCONF",
        "UNKILLABLE", "NOPROTO", "EXECABORT", "NOSCRIPT", "NOPERM", "READONLY", "LOADING",
        "CROSSSLOT", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "NOAUTH",
        "WRONGPASS", "NOREPLICAS", "INVALIDOBJ", "NOTEMPTY",
    }
)  # fmt: skip
# The error codes redis-py strips (the keys of its parser's exception table, 5.0 to 8.x).
_STRIPPED_CODES = frozenset(BaseParser.EXCEPTION_CLASSES)


@dataclass(frozen=True)
class ErrorReply:
    """A Redis error answer, with Redis's full text (code included)."""

    message: str


Reply = Union[None, int, bytes, list["Reply"], ErrorReply]  # noqa: UP007 - runtime alias
Command = Sequence[bytes]


@dataclass(frozen=True)
class Outcome:
    """Replies in command order, and the redis.call()s scripts made (Upstash bills them)."""

    replies: list[Reply]
    script_calls: int = 0


class TransactionDiscarded(Exception):
    """MULTI/EXEC was aborted as a whole; ``message`` is the first queuing error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_text(error: ResponseError) -> str:
    """Redis's error line, rebuilt from redis-py's exception.

    redis-py strips the code off the errors it maps to an exception class of its own
    (``ERR``, ``EXECABORT``, ``NOPERM``, ...) and keeps every other line whole; 7.0 and
    later also keep the code in ``status_code``, so since 8.2 a ``WRONGTYPE`` line arrives
    whole *and* with its code. Whether the code was stripped is therefore read from the
    parser's own table, never from the presence of ``status_code``.
    """
    return _code_once(_text_of(error))


def _code_once(text: str) -> str:
    """fakeredis writes a few errors as "ERR BUSYGROUP ...": Redis sends the code alone."""
    if text.startswith("ERR ") and text[4:].split(" ", 1)[0] in _ERROR_CODES:
        return text[4:]
    return text


def _text_of(error: ResponseError) -> str:
    text = str(error)
    if isinstance(error, redis.exceptions.NoScriptError):
        return NOSCRIPT
    if hasattr(error, "status_code"):  # redis-py 7+: the line's code, or None
        code = error.status_code
        return f"{code} {text}" if code in _STRIPPED_CODES else text
    if isinstance(error, ExecAbortError):
        return f"EXECABORT {text}"
    first = text.split(" ", 1)[0]
    return text if first in _ERROR_CODES else f"ERR {text}"


def plain(reply: Any) -> Reply:
    """Errors nested in EXEC or script arrays arrive as exception instances: make them data."""
    if isinstance(reply, list):
        return [plain(item) for item in reply]
    if isinstance(reply, ResponseError):
        return ErrorReply(error_text(reply))
    return reply  # type: ignore[no-any-return]


def size_of(reply: Reply) -> int:
    """About what a reply weighs on the wire: its strings' bytes, its numbers' digits."""
    if isinstance(reply, bytes):
        return len(reply)
    if isinstance(reply, list):
        return sum(size_of(item) for item in reply)
    if isinstance(reply, int):
        return len(str(reply))
    if isinstance(reply, ErrorReply):
        return len(reply.message)
    return 0


def too_large(limit: int, actual: int) -> str:
    """Upstash's text for a request body, or one reply, over the request limit."""
    return (
        f"ERR max request size exceeded. Limit: {limit} bytes, Actual: {actual} bytes. "
        "See https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded "
        "for details"
    )


def total_too_large(limit: int, total: int) -> str:
    return (
        f"ERR max response size exceeded: the replies of this request would total {total} "
        f"bytes, over the {limit} bytes limit. Send fewer or smaller reads per request"
    )


class ReplyBudget:
    """What one request's replies may weigh in all: each reply is admitted as it is read,
    and one that would take the total over ``limit`` is replaced by an error (dropped at
    once, so a pipeline of huge reads never builds a huge response)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def admit(self, reply: Reply) -> Reply:
        size = size_of(reply)
        if size > self.limit:
            return ErrorReply(too_large(self.limit, size))
        if self.used + size > self.limit:
            return ErrorReply(total_too_large(self.limit, self.used + size))
        self.used += size
        return reply
