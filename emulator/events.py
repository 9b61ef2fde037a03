"""Pub/sub over server-sent events: ``/subscribe/<channel>`` and ``/psubscribe/<pattern>``.

Every event is one SSE event whose data is ``<kind>,<channel>,<message>`` (or
``pmessage,<pattern>,<channel>,<message>``), as Upstash documents it. The stream is
``text/event-stream``, so it is framed by the SSE rules: a line break inside the data
(LF, CR or CRLF, anywhere: in the message, the channel or the pattern) continues the
data on a new ``data: `` line, and an empty line ends the event. A message can therefore
never end its event early or start one of its own (``"hi\\n\\ndata: message,admin,x"``
stays one message on ``chat``). A client recovers the data by joining an event's
``data:`` lines with ``\\n`` (what every SSE parser does), then splitting off the first
field or fields at the first commas: a channel (or pattern) containing a comma cannot be
told apart, as on Upstash. Line breaks arrive as ``\\n`` whatever they were (CR and CRLF
are line breaks to SSE); every other byte arrives as it was, NUL included, with invalid
UTF-8 as U+FFFD (an event stream is UTF-8 text).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 0.25
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def frame(fields: list[str]) -> bytes:
    """One SSE event carrying ``fields`` joined by commas, line breaks as new data lines."""
    text = ",".join(fields)
    return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text)).encode() + b"\n"


def event_of(message: dict[str, Any]) -> bytes:
    """The SSE event for a redis-py pub/sub message."""
    kind = _text(message["type"])
    fields = [kind]
    if kind == "pmessage":
        fields.append(_text(message.get("pattern")))
    fields.append(_text(message.get("channel")))
    fields.append(_text(message.get("data")))
    return frame(fields)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def stream(pubsub: Any, stopping: threading.Event) -> Iterator[bytes]:
    """The events of ``pubsub`` until the emulator stops or the backend goes away. An idle
    poll yields ``b""`` (the server checks that the client is still there) and every
    ``KEEPALIVE_SECONDS`` of silence a comment line."""
    idle = 0.0
    try:
        while not stopping.is_set():
            try:
                message = pubsub.get_message(timeout=POLL_SECONDS)
            except (RedisConnectionError, RedisTimeoutError, OSError, ValueError):
                return
            if message is None:
                idle += POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield b": keepalive\n\n"
                else:
                    yield b""
                continue
            idle = 0.0
            yield event_of(message)
    finally:
        with contextlib.suppress(Exception):
            pubsub.close()
