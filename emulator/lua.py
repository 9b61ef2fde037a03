"""Lua source instrumentation: a deadline check on every loop iteration and function entry.

Neither backend can stop every runaway script by itself: fakeredis runs Lua in-process
under its server lock (a debug hook is per coroutine and a ``pcall`` catches its error),
and redis-server cannot kill a script that has written (``UNKILLABLE``). So the
emulator rewrites the source: after each ``do`` (``while``, ``for`` and plain blocks), each
``repeat`` and each function's parameter list it inserts ``do <tick>() end``, a call to a
local the prelude defines under a name no script can guess. Once the deadline has
passed every tick raises, so an error caught by a ``pcall`` is raised again at the next
iteration or call outside it: a script cannot keep running, whatever it catches.

Only tokens are looked at (comments, strings and long brackets are skipped as Lua 5.1
reads them), so a script's meaning and its line numbers are unchanged.
"""

from __future__ import annotations

import functools
import re

_LONG_OPEN = re.compile(rb"\[(=*)\[")
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(rb"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


#: Longest source whose instrumented text is kept: clients send the same few scripts
#: (a rate limiter's, their own) on every EVAL, and scanning one costs about half a
#: millisecond, more than Redis takes to run it; bigger ones are scanned each time.
_CACHED_SOURCE = 64 * 1024


def instrument(source: bytes, tick: bytes) -> bytes:
    """``source`` with ``do <tick>() end`` after every loop or block opening and every
    function's parameter list. ``tick`` is the (unguessable) name of the check."""
    if len(source) <= _CACHED_SOURCE:
        return _remembered(source, tick)
    return _instrument(source, tick)


@functools.lru_cache(maxsize=256)  # at most 256 x 64 KB of sources, and their rewrites
def _remembered(source: bytes, tick: bytes) -> bytes:
    return _instrument(source, tick)


def _instrument(source: bytes, tick: bytes) -> bytes:
    check = b" do " + tick + b"() end "
    out: list[bytes] = []
    i, n = 0, len(source)
    last = 0
    awaiting_params = False
    while i < n:
        c = source[i : i + 1]
        if c == b"-" and source.startswith(b"--", i):
            i = _skip_comment(source, i)
            continue
        if c in (b"'", b'"'):
            i = _skip_quoted(source, i)
            continue
        if c == b"[":
            long = _LONG_OPEN.match(source, i)
            if long:
                i = _skip_long(source, i, long.group(1))
                continue
        if awaiting_params and c == b")":
            out += [source[last : i + 1], check]
            last = i = i + 1
            awaiting_params = False
            continue
        name = _NAME.match(source, i)
        if name:
            word = name.group()
            end = name.end()
            if word in (b"do", b"repeat"):
                out += [source[last:end], check]
                last = end
            elif word == b"function":
                awaiting_params = True
            i = end
            continue
        number = _NUMBER.match(source, i)
        i = number.end() if number else i + 1
    out.append(source[last:])
    return b"".join(out)


def _skip_comment(source: bytes, i: int) -> int:
    long = _LONG_OPEN.match(source, i + 2)
    if long:
        return _skip_long(source, i + 2, long.group(1))
    newline = source.find(b"\n", i)
    return len(source) if newline < 0 else newline


def _skip_long(source: bytes, i: int, level: bytes) -> int:
    close = source.find(b"]" + level + b"]", i)
    return len(source) if close < 0 else close + len(level) + 2


def _skip_quoted(source: bytes, i: int) -> int:
    quote = source[i]
    j = i + 1
    while j < len(source):
        ch = source[j]
        if ch == 0x5C:  # backslash: the next character is escaped
            j += 2
            continue
        if ch == quote or ch == 0x0A:
            return j + 1
        j += 1
    return j
