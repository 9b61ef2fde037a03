"""``continuum subscribe CHANNEL...``: print messages published on channels as they arrive.

    continuum subscribe chat                 # until Ctrl-C
    continuum subscribe 'events:*' --pattern --count 10 --json

It listens over Upstash's REST server-sent events (:class:`continuum.pubsub.PubSub`), so it
works wherever the REST API does. "subscribed to ..." goes to stderr once the server has
confirmed every subscription, so a script can wait for that line before publishing; each
message goes to stdout, flushed at once so a pipe sees it immediately.

With ``--json`` each message is one JSON object on one line, its text exact. Otherwise a
message reads ``channel: data``, and it can never pass for two: every further line of a
multi-line message is indented by two spaces while a message's first line never starts
with a space (a channel name with a space, a colon or an unprintable character is shown
as a JSON string), and control characters (a terminal's cursor moves, NUL, Unicode line
separators, bidirectional overrides) are shown as ``\\xNN``/``\\uNNNN`` escapes instead of
being obeyed by the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from types import FrameType, TracebackType

from continuum.config import ConnectionMode, UpstashConfig
from continuum.errors import CacheError, ValidationError
from continuum.pubsub import Message, PubSub


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channels", nargs="+", metavar="CHANNEL", help="channel names")
    parser.add_argument(
        "--pattern", action="store_true", help="treat CHANNEL as a glob (PSUBSCRIBE)"
    )
    parser.add_argument("--count", type=int, metavar="N", help="exit after N messages")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to connect (default: %(default)s)",
    )
    parser.add_argument(
        "--database",
        default="primary",
        help="named database: primary (default), sessions, federation",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.count is not None and args.count < 1:
            raise ValidationError("--count must be at least 1")
        if not args.timeout > 0:
            raise ValidationError("--timeout must be a positive number of seconds")
        config = UpstashConfig.from_env()
        if config.resolved_mode is not ConnectionMode.REST:
            raise ValidationError(
                "no Upstash database configured: set UPSTASH_REDIS_REST_URL and "
                "UPSTASH_REDIS_REST_TOKEN"
            )
        database = config.database(args.database)
    except CacheError as exc:
        print(f"continuum subscribe: {exc}", file=sys.stderr)
        return 2
    received = 0
    sub = PubSub(database.url, database.token, timeout=args.timeout)
    stop = _StopRequest()
    try:
        with stop:
            if args.pattern:
                sub.psubscribe(*args.channels)
            else:
                sub.subscribe(*args.channels)
            with stop.deferred():
                received += _await_confirmations(
                    sub, len(args.channels), args.timeout, args.json, stop
                )
                kind = "patterns" if args.pattern else "channels"
                if not stop.requested:
                    print(f"subscribed to {kind} {', '.join(args.channels)} (Ctrl-C to stop)",
                          file=sys.stderr, flush=True)  # fmt: skip
                while not stop.requested and (args.count is None or received < args.count):
                    message = sub.get_message(_POLL)
                    if message is not None:
                        received += _show(message, args.json)
        if stop.requested:
            _stopped(received)
    except KeyboardInterrupt:
        _stopped(received)
    except CacheError as exc:
        print(f"continuum subscribe: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        sub.close()
    return 0


_POLL = 0.25  # seconds between checks for a stop request while no message arrives


def _stopped(received: int) -> None:
    print(f"\nstopped after {received} message{'s' * (received != 1)}", file=sys.stderr)


class _StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM, handled so that stopping never tears a message.

    Inside ``deferred()`` the first signal only asks the loop to stop at the next message
    boundary, so every message printed is counted and none is half printed; a second one
    interrupts at once. Elsewhere (connecting) a signal interrupts at once. Handlers are
    installed only from the main thread, and the previous ones come back on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._deferring = False
        self._saved: dict[int, object] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._saved.clear()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """While inside, a first signal only asks the loop to stop."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring and not self.requested:
            self.requested = True
            return
        raise KeyboardInterrupt


def _await_confirmations(
    sub: PubSub, expected: int, timeout: float, as_json: bool, stop: _StopRequest
) -> int:
    """Wait (bounded) for the server to confirm each subscription; returns messages shown.

    A message can arrive on one channel before another channel is confirmed: it is
    printed, not lost.
    """
    confirmed = shown = 0
    deadline = time.monotonic() + timeout
    while confirmed < expected and not stop.requested:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        message = sub.get_message(min(left, _POLL))
        if message is None:
            continue
        if message.type in ("subscribe", "psubscribe"):
            confirmed += 1
        elif _show(message, as_json):
            shown += 1
    return shown


def _show(message: Message, as_json: bool) -> bool:
    """Print a published message; False for anything else (confirmations)."""
    if message.type not in ("message", "pmessage"):
        return False
    if as_json:
        doc = {"channel": message.channel, "pattern": message.pattern, "data": message.data}
        print(json.dumps(doc), flush=True)
    else:
        print(readable(message.channel, message.data), flush=True)
    return True


_CONTINUED = "  "  # starts every line of a message after its first
# Format characters that reorder what a terminal shows (bidirectional embeddings,
# overrides and isolates): a line must read as it is.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def readable(channel: str, data: str) -> str:
    """A message as ``continuum subscribe`` prints it without ``--json`` (see above)."""
    plain = (
        channel.isprintable()
        and not channel.startswith('"')
        and not any(c.isspace() or c == ":" for c in channel)
    )
    head = channel if plain and channel else json.dumps(channel)
    first, *more = (_escaped(line) for line in data.split("\n"))
    return "\n".join([f"{head}: {first}", *(_CONTINUED + line for line in more)])


def _escaped(line: str) -> str:
    return "".join(_escape(c) if _hidden(c) else c for c in line)


def _hidden(c: str) -> bool:
    return c != "\t" and (unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI)


def _escape(c: str) -> str:
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
