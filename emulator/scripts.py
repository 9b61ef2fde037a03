"""The Lua scripts the emulator has seen, and the text it actually runs for each.

What a client sends and what the backend runs differ:

- Upstash accepts a first line ``#!lua flags=...`` that fakeredis (any ``#!`` line) and
  redis-server 7.0 (``allow-key-locking``) reject, while clients call EVALSHA with the
  SHA1 of the text they sent. The book strips the line and files the script under the
  original SHA1.
- Upstash bills each ``redis.call``/``redis.pcall`` a script makes, and a script must end
  when it runs too long, whatever it does (``continuum.emulator.lua``). On redis-server
  the script runs inside a one-line prelude whose ``redis`` counts calls and whose
  ``tick`` checks the clock (``TIME``); the script returns ``{calls, result}``. On
  fakeredis the script runs in the emulator's own sandbox (``continuum.emulator.sandbox``),
  which counts calls and refuses writes from read-only scripts in Python; the text sent
  to fakeredis is then only a marker naming the prepared script.
- The prelude's names carry a random suffix per process, so no script can name them.
  Its first line is shared with the script's own (empty once a ``#!`` line is
  stripped), so Lua error line numbers stay the script's.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from types import TracebackType

from continuum.emulator.lua import instrument

#: The error a script gets when it runs past the emulator's time limit.
TIMEOUT = "ERR script timed out: it ran for more than {seconds:g} s and was stopped by the emulator"
_SUFFIX = secrets.token_hex(8).encode()


def hidden(name: bytes) -> bytes:
    """A Lua name no script can guess (the suffix is random per process)."""
    return b"__" + name + b"_" + _SUFFIX


TICK = hidden(b"tick")


def redis_prelude(seconds: float) -> tuple[bytes, bytes]:
    """The one-line prelude of a script on redis-server: counting ``redis``, deadline tick."""
    real, calls, over, deadline, ticks, clock = (
        hidden(n) for n in (b"real", b"calls", b"over", b"deadline", b"ticks", b"clock")
    )
    message = TIMEOUT.format(seconds=seconds).encode()
    return b"".join(
        [
            b"local %s, %s, %s, %s = redis, 0, false, 0 " % (real, calls, over, ticks),
            b"local function %s() local t = %s.call('TIME') " % (clock, real),
            b"return tonumber(t[1]) + tonumber(t[2]) / 1000000 end ",
            b"local %s = %s() + %r " % (deadline, clock, seconds),
            b"local function %s() if %s then error({err = '%s'}) end " % (TICK, over, message),
            b"%s = %s + 1 if %s >= 1000 then %s = 0 " % (ticks, ticks, ticks, ticks),
            b"if %s() > %s then %s = true error({err = '%s'}) end end end "
            % (clock, deadline, over, message),
            b"local redis = setmetatable({",
            b"call = function(...) %s = %s + 1 return %s.call(...) end, " % (calls, calls, real),
            b"pcall = function(...) %s = %s + 1 return %s.pcall(...) end" % (calls, calls, real),
            b"}, {__index = %s, __newindex = %s, __metatable = false}) " % (real, _READONLY),
            # _G shows the counting redis; rawget/rawset treat it as Redis's read-only _G
            b"local %s, %s, %s = rawget, rawset, _G "
            % (hidden(b"rawget"), hidden(b"rawset"), hidden(b"globals")),
            b"local _G = setmetatable({}, {__index = function(_, k) ",
            b"if k == 'redis' then return redis end return _G[k] end, ",
            b"__newindex = %s, __metatable = false}) " % _READONLY,
            b"local function rawget(t, k) if t == _G then if k == 'redis' then return redis end ",
            b"return %s(%s, k) end " % (hidden(b"rawget"), hidden(b"globals")),
            b"return %s(t, k) end " % hidden(b"rawget"),
            b"local function rawset(t, k, v) if t == _G then ",
            b"error('Attempt to modify a readonly table', 0) end ",
            b"return %s(t, k, v) end " % hidden(b"rawset"),
            b"local %s = (function() " % hidden(b"result"),
        ]
    ), calls


_READONLY = b"function() error('Attempt to modify a readonly table', 2) end"


def strip_shebang(script: bytes) -> bytes:
    """The script without a first ``#!`` line (kept as an empty line, so line numbers hold)."""
    if script.startswith(b"#!"):
        newline = script.find(b"\n")
        return b"" if newline < 0 else script[newline:]
    return script


class Wrapper:
    """How one backend runs a script body: the text it executes for it."""

    def wrap(self, body: bytes, read_only: bool) -> bytes:
        raise NotImplementedError

    def internal(self, body: bytes) -> bytes:
        """The text for one of the emulator's own scripts (unbilled, not a client's)."""
        return body


class RedisWrapper(Wrapper):
    """redis-server: the prelude, the instrumented body, and ``{calls, result}``."""

    def __init__(self, seconds: float) -> None:
        prelude, calls = redis_prelude(seconds)
        self._prelude = prelude
        self._return = b"\nend)() return {%s, %s}" % (calls, hidden(b"result"))

    def wrap(self, body: bytes, read_only: bool) -> bytes:
        return self._prelude + instrument(body, TICK) + self._return


class ScriptBook:
    """Original SHA1 -> the script's text, shared by every request of one emulator."""

    def __init__(self, wrapper: Wrapper) -> None:
        self._wrapper = wrapper
        self._texts: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def remember(self, script: bytes, *, read_only: bool = False) -> tuple[str, bytes]:
        """The SHA1 of the text as sent, and the text the backend runs."""
        sha = hashlib.sha1(script).hexdigest()  # noqa: S324 - Redis names scripts by SHA1
        body = strip_shebang(script)
        with self._lock:
            self._texts[sha] = body
        return sha, self._wrapper.wrap(body, read_only)

    def runnable(self, sha: bytes, *, read_only: bool = False) -> bytes | None:
        """The text to run for a SHA1 a client sent, if the emulator has seen the script."""
        with self._lock:
            body = self._texts.get(sha.decode("ascii", "replace").lower())
        return None if body is None else self._wrapper.wrap(body, read_only)

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
