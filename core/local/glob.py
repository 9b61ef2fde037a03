"""Redis's glob rules (KEYS, SCAN MATCH), compiled to a regex once per pattern.

Redis matches bytes with ``*``, ``?``, ``[...]`` (``^`` negates, ``a-z`` ranges, reversed
ranges swap), and ``\\`` escaping the next byte, also inside brackets. Its quirks are kept
on purpose so a pattern selects the same keys here as on the server: an unclosed ``[``
ends at the end of the pattern, ``[]`` matches nothing, a trailing ``\\`` is literal, and
the empty key matches only a bare ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["compile_glob", "escape_glob"]

_SPECIAL = frozenset(b"*?[]\\")


def escape_glob(text: bytes) -> bytes:
    """``text`` with every glob character escaped, so it matches only itself."""
    return b"".join(b"\\" + bytes([c]) if c in _SPECIAL else bytes([c]) for c in text)


def _lit(c: int) -> bytes:
    return re.escape(bytes([c]))


def _bracket(pattern: bytes, i: int) -> tuple[bytes, int]:
    """Translate the class starting after ``[`` at ``i``; returns (regex, next index)."""
    n = len(pattern)
    negate = i < n and pattern[i] == ord("^")
    if negate:
        i += 1
    parts: list[bytes] = []
    while i < n:
        c = pattern[i]
        if c == ord("\\") and n - i >= 2:
            parts.append(_lit(pattern[i + 1]))
            i += 2
        elif c == ord("]"):
            i += 1
            break
        elif n - i >= 3 and pattern[i + 1] == ord("-"):
            lo, hi = sorted((c, pattern[i + 2]))
            parts.append(_lit(lo) + b"-" + _lit(hi))
            i += 3
        else:
            parts.append(_lit(c))
            i += 1
    if not parts:
        return (b"." if negate else b"(?!)"), i
    return b"[" + (b"^" if negate else b"") + b"".join(parts) + b"]", i


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], object]:
    """A predicate: whether a key matches ``pattern`` under Redis's rules.

    A naive translation (``*`` to ``.*``) backtracks exponentially on hostile patterns such
    as ``*a*a*a*a*b``. Between two stars every token matches exactly one byte, so taking
    each middle segment at its earliest occurrence is always right: each becomes an atomic
    ``(?>.*?segment)`` and only the last star may backtrack, which keeps matching
    polynomial whatever the pattern.
    """
    segments: list[list[bytes]] = [[]]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == ord("*"):
            while i < n and pattern[i] == ord("*"):
                i += 1
            segments.append([])
            continue
        if c == ord("?"):
            segments[-1].append(b".")
        elif c == ord("["):
            regex, i = _bracket(pattern, i + 1)
            segments[-1].append(regex)
            continue
        elif c == ord("\\") and n - i >= 2:
            i += 1
            segments[-1].append(_lit(pattern[i]))
        else:
            segments[-1].append(_lit(c))
        i += 1
    parts = [b"".join(segment) for segment in segments]
    if len(pattern) > 1 and not pattern.strip(b"*"):
        # Redis's matcher never runs on an empty key, so ``**`` misses it; only a bare
        # ``*`` (a shortcut in KEYS and SCAN) returns it.
        parts[0] = b"(?=.)"
    if len(parts) == 1:
        regex = parts[0]
    else:
        middle = b"".join(b"(?>.*?" + part + b")" for part in parts[1:-1])
        regex = parts[0] + middle + b".*" + parts[-1]
    return re.compile(regex, re.DOTALL).fullmatch
