"""Python twins of the limiter's Lua scripts, for local mode and the fallback store.

``LocalCache`` cannot run Lua, so each script has a twin here that issues the same
commands in the same order through ``call`` and returns the same reply for the same
inputs. A twin is written against a one-command ``call`` rather than against
``LocalCache`` itself, so the test suite can run a twin and its script side by side on
one real redis-server and compare every reply: the proof that local mode limits the way
Upstash does. Arithmetic is done in floats, in the order Lua does it, because Lua's only
number type is a double.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from continuum.errors import ServerError

__all__ = [
    "Call",
    "fixed_window",
    "reset",
    "sliding_log",
    "sliding_window",
    "token_bucket",
]

# One Redis command in, its reply out (errors raised), e.g. call("GET", key).
Call = Callable[..., object]
Twin = Callable[[Call, Sequence[bytes], Sequence[bytes]], object]

_ZADD_CHUNK = 500


def _num(x: float) -> str:
    return f"{x:.0f}"


def _tonumber(raw: object) -> float | None:
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if "_" in text:  # Python reads "1_0" as 10; Lua does not
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _server_now(call: Call) -> float:
    reply = call("TIME")
    if not isinstance(reply, list) or len(reply) != 2:
        raise ServerError(f"TIME answered {reply!r}, not [seconds, microseconds]")
    seconds, micros = (_tonumber(part) for part in reply)
    if seconds is None or micros is None:
        raise ServerError(f"TIME answered {reply!r}, not [seconds, microseconds]")
    return seconds * 1_000_000 + micros


def _params(args: Sequence[bytes]) -> tuple[float, float, float]:
    window, limit, cost = (float(arg) for arg in args[:3])
    return window, limit, cost


def _window_index(now: float, window: float) -> float:
    index = float(math.floor(now / window))
    if index * window > now:
        index -= 1
    if (index + 1) * window <= now:
        index += 1
    return index


class _Counted:
    """``call``, counting what the script's own wrapper counts: each ``redis.call``."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.calls = 0

    def __call__(self, *args: object) -> object:
        self.calls += 1
        return self._call(*args)

    def reply(self, *values: float) -> list[int]:
        # Lua numbers become integer replies by truncation toward zero; the call count last
        return [int(value) for value in values] + [self.calls]


def sliding_log(call: Call, keys: Sequence[bytes], args: Sequence[bytes]) -> list[int]:
    """Twin of ``scripts/sliding_log.lua``."""
    call = counted = _Counted(call)
    now = _server_now(call)
    key = keys[0]
    window, limit, cost = _params(args)
    used = float(_int_reply(call("ZCARD", key)))
    if cost == 0 or used + cost > limit:
        used -= _int_reply(call("ZREMRANGEBYSCORE", key, "-inf", _num(now - window)))
    if cost > 0 and used + cost <= limit:
        score = _num(now)
        nonce = args[3].decode()
        units = int(cost)
        for first in range(1, units + 1, _ZADD_CHUNK):
            pairs: list[str] = []
            for unit in range(first, min(units, first + _ZADD_CHUNK - 1) + 1):
                pairs += [score, f"{nonce}:{unit}"]
            call("ZADD", key, *pairs)
        call("PEXPIRE", key, math.ceil(window / 1000))
        return counted.reply(1, limit - used - cost, now + window, 0, now, used + cost)
    remaining = max(0.0, limit - used)
    if cost == 0:
        reset_at = now
        if used > 0:
            newest = call("ZRANGE", key, -1, -1, "WITHSCORES")
            reset_at = _score(newest) + window
        return counted.reply(1, remaining, reset_at, 0, now, used)
    rank = int(used + cost - limit - 1)
    oldest = call("ZRANGE", key, rank, rank, "WITHSCORES")
    retry = _score(oldest) + window
    return counted.reply(0, remaining, retry, retry, now, used)


def fixed_window(call: Call, keys: Sequence[bytes], args: Sequence[bytes]) -> list[int]:
    """Twin of ``scripts/fixed_window.lua``."""
    call = counted = _Counted(call)
    now = _server_now(call)
    key = keys[0]
    window, limit, cost = _params(args)
    index = _window_index(now, window)
    stored = _fields(call("GET", key), 2)
    used = 0.0
    if stored is not None and _tonumber(stored[0]) == index:
        used = _tonumber(stored[1]) or 0.0
    reset_at = (index + 1) * window
    if cost > 0 and used + cost <= limit:
        used += cost
        value = f"{_num(index)}:{_num(used)}"
        call("SET", key, value, "PX", math.ceil((reset_at - now) / 1000))
        return counted.reply(1, limit - used, reset_at, 0, now, used)
    remaining = max(0.0, limit - used)
    if cost == 0:
        return counted.reply(1, remaining, reset_at, 0, now, used)
    return counted.reply(0, remaining, reset_at, reset_at, now, used)


def sliding_window(call: Call, keys: Sequence[bytes], args: Sequence[bytes]) -> list[int]:
    """Twin of ``scripts/sliding_window.lua``."""
    call = counted = _Counted(call)
    now = _server_now(call)
    key = keys[0]
    window, limit, cost = _params(args)
    index = _window_index(now, window)
    stored = _fields(call("GET", key), 3)
    current, previous = 0.0, 0.0
    if stored is not None:
        stored_index = _tonumber(stored[0])
        if stored_index == index:
            current = _tonumber(stored[1]) or 0.0
            previous = _tonumber(stored[2]) or 0.0
        elif stored_index == index - 1:
            previous = _tonumber(stored[1]) or 0.0
    start = index * window
    overlap = window - (now - start)
    used = previous * overlap / window + current
    reset_at = start + window
    if cost > 0 and used + cost <= limit:
        current += cost
        value = f"{_num(index)}:{_num(current)}:{_num(previous)}"
        call("SET", key, value, "PX", math.ceil((reset_at + window - now) / 1000))
        used += cost
        return counted.reply(1, math.floor(limit - used), reset_at, 0, now, math.ceil(used))
    remaining = max(0, math.floor(limit - used))
    if cost == 0:
        return counted.reply(1, remaining, reset_at, 0, now, math.ceil(used))
    if current + cost <= limit:
        retry = start + math.ceil(window - window * (limit - current - cost) / previous)
    else:
        retry = start + window + math.ceil(window * (current + cost - limit) / current)
    return counted.reply(0, remaining, retry, retry, now, math.ceil(used))


def token_bucket(call: Call, keys: Sequence[bytes], args: Sequence[bytes]) -> list[int]:
    """Twin of ``scripts/token_bucket.lua``."""
    call = counted = _Counted(call)
    now = _server_now(call)
    key = keys[0]
    window, limit, cost = _params(args)
    stored = _fields(call("GET", key), 2)
    tokens = limit
    if stored is not None:
        stored_tokens, stored_at = _tonumber(stored[0]), _tonumber(stored[1])
        if stored_tokens is not None and stored_at is not None:
            elapsed = max(0.0, now - stored_at)
            tokens = min(limit, stored_tokens + elapsed * limit / window)
    if cost > 0 and tokens >= cost:
        tokens -= cost
        full_in = math.ceil((limit - tokens) * window / limit)
        value = f"{tokens:.17g}:{_num(now)}"
        call("SET", key, value, "PX", math.ceil(full_in / 1000))
        return counted.reply(
            1, math.floor(tokens), now + full_in, 0, now, math.ceil(limit - tokens)
        )
    full_in = math.ceil((limit - tokens) * window / limit)
    if cost == 0:
        return counted.reply(
            1, math.floor(tokens), now + full_in, 0, now, math.ceil(limit - tokens)
        )
    retry = now + math.ceil((cost - tokens) * window / limit)
    return counted.reply(0, math.floor(tokens), retry, retry, now, math.ceil(limit - tokens))


def reset(call: Call, keys: Sequence[bytes], args: Sequence[bytes]) -> int:
    """Twin of ``scripts/reset.lua``."""
    return _int_reply(call("DEL", keys[0]))


def _int_reply(reply: object) -> int:
    if isinstance(reply, bool) or not isinstance(reply, int):
        raise ServerError(f"expected an integer reply, got {reply!r}")
    return reply


def _fields(reply: object, size: int) -> list[bytes] | None:
    """A stored "a:b[:c]" value split like the scripts' Lua pattern, or None."""
    if reply is None:
        return None
    if not isinstance(reply, bytes):
        raise ServerError(f"expected a bulk string, got {reply!r}")
    fields = reply.split(b":")
    return fields if len(fields) == size else None


def _list_reply(reply: object, size: int) -> list[object]:
    if not isinstance(reply, list) or len(reply) != size:
        raise ServerError(f"expected {size} replies, got {reply!r}")
    return reply


def _score(reply: object) -> float:
    pair = _list_reply(reply, 2)
    score = _tonumber(pair[1])
    if score is None:
        raise ServerError(f"expected a member and its score, got {reply!r}")
    return score
