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
- fakeredis has no EVAL_RO/EVALSHA_RO. There the counting ``redis`` of a read-only script
  also refuses every command the backend flags as a write, as redis-server does, so a
  read-only token cannot write through a script.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from types import TracebackType

_COUNTING = (
    b"local __emu_calls = 0 local __emu_redis = redis "
    b"local redis = setmetatable({"
    b"call = function(...) __emu_calls = __emu_calls + 1 return __emu_redis.call(...) end, "
    b"pcall = function(...) __emu_calls = __emu_calls + 1 return __emu_redis.pcall(...) end"
    b"}, {__index = __emu_redis}) "
)
READ_ONLY_WRITE = "ERR Write commands are not allowed from read-only scripts."


def _read_only_counting(writes: Iterable[bytes]) -> bytes:
    """The counting prelude of a read-only script: a write raises (call) or answers (pcall)
    Redis's read-only error. One line, like ``_COUNTING``."""
    table = b",".join(b'["%s"]=true' % name.lower() for name in sorted(set(writes)))
    return (
        b"local __emu_calls = 0 local __emu_redis = redis "
        b"local __emu_writes = {" + table + b"} "
        b"local function __emu_denied(cmd) "
        b"return __emu_writes[string.lower(tostring(cmd))] ~= nil end "
        b"local redis = setmetatable({"
        b"call = function(cmd, ...) __emu_calls = __emu_calls + 1 "
        b"if __emu_denied(cmd) then error('" + READ_ONLY_WRITE.encode() + b"') end "
        b"return __emu_redis.call(cmd, ...) end, "
        b"pcall = function(cmd, ...) __emu_calls = __emu_calls + 1 "
        b"if __emu_denied(cmd) then return {err = '" + READ_ONLY_WRITE.encode() + b"'} end "
        b"return __emu_redis.pcall(cmd, ...) end"
        b"}, {__index = __emu_redis}) "
    )


_OPEN = b"local __emu_result = (function() "
_CLOSE = b"\nend)() "
_RETURN = b"return {__emu_calls, __emu_result}"
# The hook is armed through redis.__emu_arm/__emu_disarm, which the sandboxed fakeredis
# runtime provides (see ``harden_lua``: scripts see no ``debug`` or ``os``); the
# fallbacks use the globals, for a runtime that could not be hardened. The leading ";"
# keeps Lua from reading "(...)" as a call of the statement before it.
_UNHOOK = b";(redis.__emu_disarm or function() debug.sethook() end)() "


def _deadline_hook(seconds: float) -> bytes:
    message = f"ERR script ran for more than {seconds:g} s: stopped by the emulator"
    return (
        f";(redis.__emu_arm or function(seconds, message) local t0 = os.clock() "
        f"debug.sethook(function() if os.clock() - t0 > seconds then error(message) end end, "
        f"'', 1000000) end)({seconds!r}, {message!r}) "
    ).encode()


#: Run once in fakeredis's Lua runtime. Redis and Upstash give scripts no ``os``, ``io``,
#: ``debug``, ``require`` or file loading; lupa's runtime has them all, plus ``python``,
#: so a script could run shell commands on the developer's machine. The deadline hook
#: keeps private references to ``debug.sethook`` and ``os.clock`` in two closures.
HARDEN_LUA = b"""
function()
  local sethook, clock = debug.sethook, os.clock
  redis.__emu_arm = function(seconds, message)
    local started = clock()
    sethook(function() if clock() - started > seconds then error(message) end end, '', 1000000)
  end
  redis.__emu_disarm = function() sethook() end
  os = nil io = nil debug = nil python = nil package = nil require = nil
  dofile = nil loadfile = nil module = nil getfenv = nil setfenv = nil
end
"""


def strip_shebang(script: bytes) -> bytes:
    """The script without a first ``#!`` line (kept as an empty line, so line numbers hold)."""
    if script.startswith(b"#!"):
        newline = script.find(b"\n")
        return b"" if newline < 0 else script[newline:]
    return script


class ScriptBook:
    """Original SHA1 -> the script's text, shared by every request of one emulator."""

    def __init__(
        self,
        *,
        cpu_limit: float | None = None,
        write_commands: Callable[[], Iterable[bytes]] | None = None,
    ) -> None:
        """``cpu_limit``: stop scripts after this many CPU seconds (for in-process Lua).
        ``write_commands``: the backend's write commands, for a backend without EVAL_RO
        (asked once, on the first read-only script)."""
        self._hook = b"" if cpu_limit is None else _deadline_hook(cpu_limit)
        self._unhook = b"" if cpu_limit is None else _UNHOOK
        self._write_commands = write_commands
        self._read_only_prelude: bytes | None = None
        self._texts: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def remember(self, script: bytes, *, read_only: bool = False) -> tuple[str, bytes]:
        """The SHA1 of the text as sent, and the text the backend runs."""
        sha = hashlib.sha1(script).hexdigest()  # noqa: S324 - Redis names scripts by SHA1
        body = strip_shebang(script)
        with self._lock:
            self._texts[sha] = body
        return sha, self._wrap(body, read_only)

    def runnable(self, sha: bytes, *, read_only: bool = False) -> bytes | None:
        """The text to run for a SHA1 a client sent, if the emulator has seen the script."""
        with self._lock:
            body = self._texts.get(sha.decode("ascii", "replace").lower())
        return None if body is None else self._wrap(body, read_only)

    def forget_all(self) -> None:
        with self._lock:
            self._texts.clear()

    def _wrap(self, body: bytes, read_only: bool) -> bytes:
        prelude = self._prelude(read_only)
        return prelude + self._hook + _OPEN + body + _CLOSE + self._unhook + _RETURN

    def _prelude(self, read_only: bool) -> bytes:
        if not read_only or self._write_commands is None:
            return _COUNTING
        if self._read_only_prelude is None:
            self._read_only_prelude = _read_only_counting(self._write_commands())
        return self._read_only_prelude


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
