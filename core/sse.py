"""Server-sent events as Upstash's subscribe streams send them: bytes in, messages out.

``POST /subscribe/<channel>`` answers ``text/event-stream``; each event's data is
``message,<channel>,<payload>`` (``pmessage,<pattern>,<channel>,<payload>`` for
patterns, ``subscribe,<channel>,<count>`` for the confirmation). :class:`Events` turns
one stream's chunks into :class:`Message` objects, bounding every line and event so a
server that never ends one cannot fill the memory. No I/O here:
:mod:`continuum.pubsub` reads the streams.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass

from continuum.errors import ResponseTooLarge
from continuum.local import compile_glob

__all__ = ["MAX_EVENT_SIZE", "Events", "Lines", "Message", "SseParser", "to_message"]

#: The largest event (one line, or the data lines of one event) a stream may send: a
#: server that never ends a line cannot fill the subscriber's memory.
MAX_EVENT_SIZE = 64 * 1024 * 1024
_NEWLINE = re.compile(r"\r\n|\r|\n")
_CONFIRMATIONS = ("subscribe", "psubscribe")
log = logging.getLogger("continuum.pubsub")


@dataclass(frozen=True, slots=True)
class Message:
    """One event: ``type`` is ``subscribe``/``psubscribe`` (confirmations, ``data`` is the
    subscription count) or ``message``/``pmessage`` (``data`` is the payload)."""

    type: str
    channel: str
    pattern: str | None
    data: str


class SseParser:
    """Incremental ``text/event-stream`` parsing: feed lines, get each event's data.

    Follows the HTML spec's rules: ``data:`` lines accumulate (joined with newlines),
    one optional space after the colon is dropped, ``:`` lines are comments (keepalives),
    other fields are ignored, and a blank line dispatches the event.
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self._first = True

    def feed(self, line: str) -> str | None:
        if self._first:
            line = line.removeprefix("\ufeff")
            self._first = False
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data = []
            return data
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value.removeprefix(" "))
        return None


class Lines:
    """Splits an event stream's bytes into lines (CRLF, LF or CR, as the SSE spec says,
    and nothing else: ``str.splitlines`` would also split on characters a message may
    carry), refusing a line or an event longer than ``limit`` characters."""

    def __init__(self, limit: int, where: str) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._after_cr = False
        self._event = 0
        self._limit = limit
        self._where = where

    def feed(self, chunk: bytes) -> list[str]:
        text = self._decoder.decode(chunk)
        if self._after_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split between two chunks
        if text:
            self._after_cr = text.endswith("\r")
        pieces = _NEWLINE.split(self._pending + text)
        self._pending = pieces.pop()
        if len(self._pending) > self._limit:
            raise self._too_large()
        for line in pieces:
            self._event = 0 if not line else self._event + len(line)
            if self._event > self._limit:
                raise self._too_large()
        return pieces

    def _too_large(self) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"the {self._where} stream sent an event over {self._limit} characters; "
            "the subscription was closed",
            limit=self._limit,
        )


def to_message(data: str, name: str, is_pattern: bool) -> Message | None:
    """Turn one event's data into a ``Message`` for the stream subscribed to ``name``, or
    None for an event that stream cannot carry.

    A stream carries one subscription, so it never reports another's messages: on a
    channel's stream every message is on that channel, and on a pattern's stream the
    channel must match the pattern (Redis's glob rules). A server that does not frame a
    published line break (docs/EMULATOR.md, "Pub/sub framing") would otherwise let a
    payload such as ``hi\n\ndata: message,admin,...`` pose as a message on ``admin``.
    """
    kind, _, rest = data.partition(",")
    if kind != ("pmessage" if is_pattern else "message"):
        if kind in _CONFIRMATIONS and kind.startswith("p") == is_pattern:
            count = rest.removeprefix(name + ",") if rest.startswith(name + ",") else rest
            return Message(kind, name, name if is_pattern else None, count.rpartition(",")[2])
        return None
    # The name as we subscribed to it comes first; a server that spells it otherwise
    # (another escaping) is read up to the first comma.
    tail = rest[len(name) + 1 :] if rest.startswith(name + ",") else rest.partition(",")[2]
    if not is_pattern:
        return Message("message", name, None, tail)
    channel, _, payload = tail.partition(",")
    if not compile_glob(name.encode())(channel.encode()):
        return None
    return Message("pmessage", channel, name, payload)


class Events:
    """One stream's bytes in, its messages out: bounded lines, SSE events, ``Message``s
    (a resubscription's repeated confirmation left out)."""

    def __init__(
        self, limit: int, where: str, name: str, is_pattern: bool, resubscribed: bool
    ) -> None:
        self._lines = Lines(limit, where)
        self._parser = SseParser()
        self._name = name
        self._is_pattern = is_pattern
        self._resubscribed = resubscribed
        self._first = True

    def feed(self, chunk: bytes) -> list[Message]:
        messages = []
        for line in self._lines.feed(chunk):
            data = self._parser.feed(line)
            if data is None:
                continue
            first, self._first = self._first, False
            message = to_message(data, self._name, self._is_pattern)
            if message is None or (message.type in _CONFIRMATIONS and not first):
                # only the stream's first event confirms it; anything else here was not
                # sent by this subscription
                kind = "pattern" if self._is_pattern else "channel"
                log.warning(
                    "ignored an event the stream of %s %r cannot carry (%d characters)",
                    kind,
                    self._name,
                    len(data),
                )
            elif not (self._resubscribed and message.type in _CONFIRMATIONS):
                messages.append(message)
        return messages
