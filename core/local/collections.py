"""Hashes and sorted sets for ``LocalCache``: the commands sessions and limiters use."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from continuum.errors import CommandError
from continuum.local.values import (
    SYNTAX,
    Reply,
    format_float,
    in_int64,
    parse_float,
    parse_int,
    upper,
)

if TYPE_CHECKING:
    from continuum.local.keyspace import Keyspace

__all__ = [
    "cmd_hdel", "cmd_hexists", "cmd_hget", "cmd_hgetall", "cmd_hincrby", "cmd_hlen",
    "cmd_hmget", "cmd_hset", "cmd_zadd", "cmd_zcard", "cmd_zcount", "cmd_zrange",
    "cmd_zrem", "cmd_zremrangebyscore", "cmd_zscore",
]  # fmt: skip


# -- hashes ---------------------------------------------------------------------------------


def _hash(db: Keyspace, k: bytes) -> dict[bytes, bytes] | None:
    if not db._typed(k, "hash"):
        return None
    return db._data[k]  # type: ignore[return-value]


def cmd_hset(db: Keyspace, args: list[bytes]) -> Reply:
    if len(args) % 2 == 0:
        raise CommandError("ERR wrong number of arguments for 'hset' command")
    fields: dict[bytes, bytes] = db._container(args[0], "hash")  # type: ignore[assignment]
    added = 0
    for i in range(1, len(args), 2):
        added += args[i] not in fields
        fields[args[i]] = args[i + 1]
    return added


def cmd_hget(db: Keyspace, args: list[bytes]) -> Reply:
    fields = _hash(db, args[0])
    return None if fields is None else fields.get(args[1])


def cmd_hmget(db: Keyspace, args: list[bytes]) -> Reply:
    fields = _hash(db, args[0]) or {}
    return [fields.get(f) for f in args[1:]]


def cmd_hgetall(db: Keyspace, args: list[bytes]) -> Reply:
    out: list[Reply] = []
    for field, value in (_hash(db, args[0]) or {}).items():
        out += [field, value]
    return out


def cmd_hdel(db: Keyspace, args: list[bytes]) -> Reply:
    fields = _hash(db, args[0])
    if fields is None:
        return 0
    removed = sum(1 for f in set(args[1:]) if fields.pop(f, None) is not None)
    db._drop_if_empty(args[0])
    return removed


def cmd_hincrby(db: Keyspace, args: list[bytes]) -> Reply:
    amount = parse_int(args[2])
    existing = _hash(db, args[0])
    current = (existing or {}).get(args[1])
    base = 0 if current is None else parse_int(current, "ERR hash value is not an integer")
    result = base + amount
    if not in_int64(result):
        raise CommandError("ERR increment or decrement would overflow")
    fields: dict[bytes, bytes] = db._container(args[0], "hash")  # type: ignore[assignment]
    fields[args[1]] = str(result).encode()
    return result


def cmd_hexists(db: Keyspace, args: list[bytes]) -> Reply:
    return int(args[1] in (_hash(db, args[0]) or {}))


def cmd_hlen(db: Keyspace, args: list[bytes]) -> Reply:
    return len(_hash(db, args[0]) or {})


# -- sorted sets ----------------------------------------------------------------------------


def _zset(db: Keyspace, k: bytes) -> dict[bytes, float] | None:
    if not db._typed(k, "zset"):
        return None
    return db._data[k]  # type: ignore[return-value]


def _sorted(members: dict[bytes, float]) -> list[tuple[bytes, float]]:
    return sorted(members.items(), key=lambda item: (item[1], item[0]))


def _score_bound(raw: bytes) -> tuple[float, bool]:
    """A ZRANGEBYSCORE bound: (value, exclusive)."""
    exclusive = raw[:1] == b"("
    text = raw[1:] if exclusive else raw
    try:
        return parse_float(text), exclusive
    except CommandError:
        raise CommandError("ERR min or max is not a float") from None


def _in_range(score: float, low: tuple[float, bool], high: tuple[float, bool]) -> bool:
    above = score > low[0] if low[1] else score >= low[0]
    below = score < high[0] if high[1] else score <= high[0]
    return above and below


def cmd_zadd(db: Keyspace, args: list[bytes]) -> Reply:
    flags: set[bytes] = set()
    i = 1
    while i < len(args) and upper(args[i]) in (b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"):
        flags.add(upper(args[i]))
        i += 1
    pairs = args[i:]
    if not pairs or len(pairs) % 2:
        raise CommandError(SYNTAX)
    if {b"NX", b"XX"} <= flags:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (b"NX" in flags and flags & {b"GT", b"LT"}) or {b"GT", b"LT"} <= flags:
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if b"INCR" in flags and len(pairs) != 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    scores = [parse_float(pairs[j]) for j in range(0, len(pairs), 2)]
    existing = _zset(db, args[0])
    if existing is None and b"XX" in flags:
        return None if b"INCR" in flags else 0
    members: dict[bytes, float] = db._container(args[0], "zset")  # type: ignore[assignment]
    changed = added = 0
    result: float | None = None
    for score, member in zip(scores, pairs[1::2], strict=True):
        old = members.get(member)
        if (old is None and b"XX" in flags) or (old is not None and b"NX" in flags):
            continue
        new = score + (old or 0.0) if b"INCR" in flags else score
        if math.isnan(new):
            raise CommandError("ERR resulting score is not a number (NaN)")
        if old is not None and ((b"GT" in flags and new <= old) or (b"LT" in flags and new >= old)):
            continue
        result = new
        if old is None:
            added += 1
        elif old != new:
            changed += 1
        members[member] = new
    db._drop_if_empty(args[0])
    if b"INCR" in flags:
        return None if result is None else format_float(result)
    return added + changed if b"CH" in flags else added


def cmd_zrem(db: Keyspace, args: list[bytes]) -> Reply:
    members = _zset(db, args[0])
    if members is None:
        return 0
    removed = sum(1 for m in set(args[1:]) if members.pop(m, None) is not None)
    db._drop_if_empty(args[0])
    return removed


def cmd_zcard(db: Keyspace, args: list[bytes]) -> Reply:
    return len(_zset(db, args[0]) or {})


def cmd_zscore(db: Keyspace, args: list[bytes]) -> Reply:
    score = (_zset(db, args[0]) or {}).get(args[1])
    return None if score is None else format_float(score)


def cmd_zcount(db: Keyspace, args: list[bytes]) -> Reply:
    low, high = _score_bound(args[1]), _score_bound(args[2])
    return sum(1 for s in (_zset(db, args[0]) or {}).values() if _in_range(s, low, high))


def cmd_zremrangebyscore(db: Keyspace, args: list[bytes]) -> Reply:
    low, high = _score_bound(args[1]), _score_bound(args[2])
    members = _zset(db, args[0])
    if members is None:
        return 0
    doomed = [m for m, s in members.items() if _in_range(s, low, high)]
    for m in doomed:
        del members[m]
    db._drop_if_empty(args[0])
    return len(doomed)


def cmd_zrange(db: Keyspace, args: list[bytes]) -> Reply:
    by_score = rev = with_scores = False
    limit: tuple[int, int] | None = None
    i = 3
    while i < len(args):
        opt = upper(args[i])
        if opt == b"BYSCORE":
            by_score = True
        elif opt == b"REV":
            rev = True
        elif opt == b"WITHSCORES":
            with_scores = True
        elif opt == b"LIMIT" and i + 2 < len(args):
            limit = (parse_int(args[i + 1]), parse_int(args[i + 2]))
            i += 2
        else:
            raise CommandError(SYNTAX)
        i += 1
    if limit is not None and not by_score:
        raise CommandError(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    # Like Redis, refuse bad bounds before looking at the key (even a wrong-typed one).
    if by_score:
        first, second = _score_bound(args[1]), _score_bound(args[2])
    else:
        start, stop = parse_int(args[1]), parse_int(args[2])
    items = _sorted(_zset(db, args[0]) or {})
    if rev:
        items.reverse()
    if by_score:
        low, high = (second, first) if rev else (first, second)
        items = [(m, s) for m, s in items if _in_range(s, low, high)]
        if limit is not None:
            offset, count = limit
            items = [] if offset < 0 else items[offset:][: None if count < 0 else count]
    else:
        n = len(items)
        start = max(start + n if start < 0 else start, 0)
        stop = stop + n if stop < 0 else min(stop, n - 1)
        items = items[start : stop + 1] if start <= stop else []
    out: list[Reply] = []
    for member, score in items:
        out.append(member)
        if with_scores:
            out.append(format_float(score))
    return out
