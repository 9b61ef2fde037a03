"""The Lua scripts the emulator has seen, and the text it actually runs for each.

Three things differ between what a client sends and what the backend may run:

- Upstash accepts a first line ``#!lua flags=...`` that fakeredis (any ``#!`` line) and
  redis-server 7.0 (``allow-key-locking``) reject, while clients call EVALSHA with the
  SHA1 of the text they sent. The book strips the line and files the script under the
  original SHA1.
- Upstash bills each ``redis.call``/``redis.pcall`` a script makes. The script runs inside
  a function whose own ``redis`` counts calls, and returns ``{count, result}``. The prelude
  shares the script's first line (empty once a ``#!`` line is stripped), so Lua error
  line numbers stay the script's own.
- A script that never ends would hang the emulator: fakeredis runs Lua in-process while
  holding its server lock, and redis-server serves nobody else until ``SCRIPT KILL``. On
  fakeredis a Lua hook stops a script after ``timeout`` seconds of CPU; on redis-server a
  watchdog sends ``SCRIPT KILL`` (see ``Watchdog``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from types import TracebackType

_COUNTING = (
    b"local __emu_calls = 0 local __emu_redis = redis "
    b"local redis = setmetatable({"
    b"call = function(...) __emu_calls = __emu_calls + 1 return __emu_redis.call(...) end, "
    b"pcall = function(...) __emu_calls = __emu_calls + 1 return __emu_redis.pcall(...) end"
    b"}, {__index = __emu_redis}) "
)
_OPEN = b"local __emu_result = (function() "
_CLOSE = b"\nend)() "
_RETURN = b"return {__emu_calls, __emu_result}"
_UNHOOK = b"debug.sethook() "


def _deadline_hook(seconds: float) -> bytes:
    message = f"ERR script ran for more than {seconds:g} s: stopped by the emulator"
    return (
        f"local __emu_t0 = os.clock() debug.sethook(function() "
        f"if os.clock() - __emu_t0 > {seconds!r} then error({message!r}) end end, '', 1000000) "
    ).encode()


def strip_shebang(script: bytes) -> bytes:
    """The script without a first ``#!`` line (kept as an empty line, so line numbers hold)."""
    if script.startswith(b"#!"):
        newline = script.find(b"\n")
        return b"" if newline < 0 else script[newline:]
    return script


class ScriptBook:
    """Original SHA1 -> runnable text, shared by every request of one emulator."""

    def __init__(self, *, cpu_limit: float | None = None) -> None:
        """``cpu_limit``: stop scripts after this many CPU seconds (for in-process Lua)."""
        self._hook = b"" if cpu_limit is None else _deadline_hook(cpu_limit)
        self._unhook = b"" if cpu_limit is None else _UNHOOK
        self._texts: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def remember(self, script: bytes) -> tuple[str, bytes]:
        """The SHA1 of the text as sent, and the text the backend runs."""
        sha = hashlib.sha1(script).hexdigest()  # noqa: S324 - Redis names scripts by SHA1
        runnable = (
            _COUNTING + self._hook + _OPEN + strip_shebang(script) + _CLOSE + self._unhook
            + _RETURN
        )
        with self._lock:
            self._texts[sha] = runnable
        return sha, runnable

    def runnable(self, sha: bytes) -> bytes | None:
        """The text to run for a SHA1 a client sent, if the emulator has seen the script."""
        with self._lock:
            return self._texts.get(sha.decode("ascii", "replace").lower())

    def forget_all(self) -> None:
        with self._lock:
            self._texts.clear()


class Watchdog:
    """Calls ``kill`` if the ``with`` block is still running after ``seconds``."""

    def __init__(self, seconds: float, kill: Callable[[], None]) -> None:
        self._timer = threading.Timer(seconds, kill)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
