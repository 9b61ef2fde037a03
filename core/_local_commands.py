"""The commands ``LocalCache`` answers, with Redis's replies and error texts.

Each handler takes the store and the arguments after the command name (all ``bytes``) and
returns a ``Reply`` or raises ``CommandError``. ``COMMANDS`` maps a lower-case name to its
handler and Redis's arity (negative: at least that many, counting the name).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from core.errors import CommandError, NoScriptError

if TYPE_CHECKING:
    from core.local import LocalCache

__all__ = ["COMMANDS", "WRONGTYPE", "Arg", "Reply", "to_arg"]

Reply: TypeAlias = "int | str | bytes | list[Reply] | None"
Arg: TypeAlias = "str | bytes | int | float"
Handler: TypeAlias = "Callable[[LocalCache, list[bytes]], Reply]"

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
_INT64 = (-(2**63), 2**63 - 1)
_MAX_EXPIRE_MS = 2**62


def to_arg(value: Arg | bytearray | memoryview) -> bytes:
    """One command argument as Redis sees it (str as UTF-8, numbers as their text)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise CommandError(f"ERR unsupported argument type {type(value).__name__}")


def format_float(value: float) -> bytes:
    """Redis's reply text for a double: shortest form, integers without a ``.0``."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value.is_integer() and abs(value) < 1e17:
        return str(int(value)).encode()
    return repr(value).encode()


def parse_int(raw: bytes, error: str = NOT_INT) -> int:
    """Redis's strict integer parsing: no spaces, no ``+``, no leading zeros, 64-bit."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if (
        not digits
        or len(raw) > 20
        or not (digits.isdigit() and digits.isascii())
        or (len(digits) > 1 and digits[:1] == b"0")
    ):
        raise CommandError(error)
    value = int(raw)
    if not _INT64[0] <= value <= _INT64[1]:
        raise CommandError(error)
    return value


def parse_float(raw: bytes, error: str = NOT_FLOAT) -> float:
    if not raw or raw != raw.strip():
        raise CommandError(error)
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(error) from None
    if math.isnan(value):
        raise CommandError(error)
    return value


def _upper(raw: bytes) -> bytes:
    return raw.upper()


# -- strings ------------------------------------------------------------------------------


def _get_string(db: LocalCache, k: bytes) -> bytes | None:
    if not db._typed(k, "string"):
        return None
    value = db._data[k]
    assert isinstance(value, bytes)
    return value


def _expiry_ms(db: LocalCache, option: bytes, raw: bytes, command: str) -> int:
    """Absolute expiry (ms) from EX/PX/EXAT/PXAT; Redis refuses non-positive times."""
    amount = parse_int(raw)
    if amount <= 0 or amount > _MAX_EXPIRE_MS // 1000:
        raise CommandError(f"ERR invalid expire time in '{command}' command")
    if option == b"EX":
        return db.now_ms() + amount * 1000
    if option == b"PX":
        return db.now_ms() + amount
    if option == b"EXAT":
        return amount * 1000
    return amount


def cmd_set(db: LocalCache, args: list[bytes], name: str = "set") -> Reply:
    k, value = args[0], args[1]
    nx = xx = get = keep = False
    expire_ms: int | None = None
    i = 2
    while i < len(args):
        opt = _upper(args[i])
        if opt == b"NX" and not xx:
            nx = True
        elif opt == b"XX" and not nx:
            xx = True
        elif opt == b"GET":
            get = True
        elif opt == b"KEEPTTL" and expire_ms is None:
            keep = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and expire_ms is None and not keep:
            if i + 1 >= len(args):
                raise CommandError(SYNTAX)
            expire_ms = _expiry_ms(db, opt, args[i + 1], name)
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    old = _get_string(db, k) if get else None
    exists = db._live(k)
    if (nx and exists) or (xx and not exists):
        return old if get else None
    db._store(k, value, keep_ttl=keep)
    if expire_ms is not None:
        db._expires[k] = expire_ms / 1000
    return old if get else "OK"


def cmd_setex(db: LocalCache, args: list[bytes]) -> Reply:
    return cmd_set(db, [args[0], args[2], b"EX", args[1]], "setex")


def cmd_psetex(db: LocalCache, args: list[bytes]) -> Reply:
    return cmd_set(db, [args[0], args[2], b"PX", args[1]], "psetex")


def cmd_setnx(db: LocalCache, args: list[bytes]) -> Reply:
    return 1 if cmd_set(db, [args[0], args[1], b"NX"]) == "OK" else 0


def cmd_get(db: LocalCache, args: list[bytes]) -> Reply:
    return _get_string(db, args[0])


def cmd_getdel(db: LocalCache, args: list[bytes]) -> Reply:
    value = _get_string(db, args[0])
    if value is not None:
        db._drop(args[0])
    return value


def cmd_getex(db: LocalCache, args: list[bytes]) -> Reply:
    k = args[0]
    expire_ms: int | None = None
    persist = False
    rest = args[1:]
    if rest:
        opt = _upper(rest[0])
        if opt == b"PERSIST" and len(rest) == 1:
            persist = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and len(rest) == 2:
            expire_ms = _expiry_ms(db, opt, rest[1], "getex")
        else:
            raise CommandError(SYNTAX)
    value = _get_string(db, k)
    if value is not None:
        if persist:
            db._expires.pop(k, None)
        elif expire_ms is not None:
            db._expires[k] = expire_ms / 1000
    return value


def cmd_mget(db: LocalCache, args: list[bytes]) -> Reply:
    out: list[Reply] = []
    for k in args:
        if db._live(k) and db._types[k] == "string":
            out.append(db._data[k])  # type: ignore[arg-type]
        else:
            out.append(None)
    return out


def cmd_mset(db: LocalCache, args: list[bytes]) -> Reply:
    if len(args) % 2:
        raise CommandError("ERR wrong number of arguments for 'mset' command")
    for i in range(0, len(args), 2):
        db._live(args[i])
        db._store(args[i], args[i + 1])
    return "OK"


def _incr(db: LocalCache, k: bytes, amount: int) -> Reply:
    current = _get_string(db, k)
    base = 0 if current is None else parse_int(current)
    result = base + amount
    if not _INT64[0] <= result <= _INT64[1]:
        raise CommandError("ERR increment or decrement would overflow")
    db._store(k, str(result).encode(), keep_ttl=True)
    return result


def cmd_incr(db: LocalCache, args: list[bytes]) -> Reply:
    return _incr(db, args[0], 1)


def cmd_decr(db: LocalCache, args: list[bytes]) -> Reply:
    return _incr(db, args[0], -1)


def cmd_incrby(db: LocalCache, args: list[bytes]) -> Reply:
    return _incr(db, args[0], parse_int(args[1]))


def cmd_decrby(db: LocalCache, args: list[bytes]) -> Reply:
    amount = parse_int(args[1])
    if amount == _INT64[0]:
        raise CommandError("ERR decrement would overflow")
    return _incr(db, args[0], -amount)


def cmd_incrbyfloat(db: LocalCache, args: list[bytes]) -> Reply:
    current = _get_string(db, args[0])
    base = 0.0 if current is None else parse_float(current)
    result = base + parse_float(args[1])
    if math.isnan(result) or math.isinf(result):
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = format_float(result)
    db._store(args[0], text, keep_ttl=True)
    return text


def cmd_append(db: LocalCache, args: list[bytes]) -> Reply:
    value = (_get_string(db, args[0]) or b"") + args[1]
    db._store(args[0], value, keep_ttl=True)
    return len(value)


def cmd_strlen(db: LocalCache, args: list[bytes]) -> Reply:
    return len(_get_string(db, args[0]) or b"")


# -- keys -----------------------------------------------------------------------------------


def cmd_del(db: LocalCache, args: list[bytes]) -> Reply:
    return sum(db._drop(k) for k in args if db._live(k))


def cmd_exists(db: LocalCache, args: list[bytes]) -> Reply:
    return sum(1 for k in args if db._live(k))


def _expire(db: LocalCache, args: list[bytes], to_ms: Callable[[int], int], name: str) -> Reply:
    k = args[0]
    amount = parse_int(args[1])
    flags = {_upper(a) for a in args[2:]}
    for raw in args[2:]:
        if _upper(raw) not in (b"NX", b"XX", b"GT", b"LT"):
            raise CommandError(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
    if (b"NX" in flags and len(flags) > 1) or {b"GT", b"LT"} <= flags:
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    try:
        when = to_ms(amount)
    except OverflowError:
        raise CommandError(f"ERR invalid expire time in '{name}' command") from None
    if abs(when) > _MAX_EXPIRE_MS:
        raise CommandError(f"ERR invalid expire time in '{name}' command")
    if not db._live(k):
        return 0
    current = db._expires.get(k)
    current_ms = None if current is None else round(current * 1000)
    if (
        (b"NX" in flags and current_ms is not None)
        or (b"XX" in flags and current_ms is None)
        or (b"GT" in flags and (current_ms is None or when <= current_ms))
        or (b"LT" in flags and current_ms is not None and when >= current_ms)
    ):
        return 0
    if when <= db.now_ms():
        db._drop(k)
    else:
        db._expires[k] = when / 1000
    return 1


def cmd_expire(db: LocalCache, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: db.now_ms() + n * 1000, "expire")


def cmd_pexpire(db: LocalCache, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: db.now_ms() + n, "pexpire")


def cmd_expireat(db: LocalCache, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: n * 1000, "expireat")


def cmd_pexpireat(db: LocalCache, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: n, "pexpireat")


def cmd_persist(db: LocalCache, args: list[bytes]) -> Reply:
    if not db._live(args[0]):
        return 0
    return 0 if db._expires.pop(args[0], None) is None else 1


def _pttl(db: LocalCache, k: bytes) -> int:
    if not db._live(k):
        return -2
    exp = db._expires.get(k)
    if exp is None:
        return -1
    return max(0, round(exp * 1000) - db.now_ms())


def cmd_ttl(db: LocalCache, args: list[bytes]) -> Reply:
    ms = _pttl(db, args[0])
    return ms if ms < 0 else (ms + 500) // 1000


def cmd_pttl(db: LocalCache, args: list[bytes]) -> Reply:
    return _pttl(db, args[0])


def cmd_type(db: LocalCache, args: list[bytes]) -> Reply:
    return db._types[args[0]].encode() if db._live(args[0]) else b"none"


def cmd_scan(db: LocalCache, args: list[bytes]) -> Reply:
    try:
        cursor = int(args[0]) if args[0].isdigit() and args[0].isascii() else -1
    except ValueError:
        cursor = -1
    if cursor < 0:
        raise CommandError("ERR invalid cursor")
    count, match, kind = 10, None, None
    rest = args[1:]
    if len(rest) % 2:
        raise CommandError(SYNTAX)
    for opt, value in zip(rest[::2], rest[1::2], strict=True):
        name = _upper(opt)
        if name == b"COUNT":
            count = parse_int(value)
            if count < 1:
                raise CommandError(SYNTAX)
        elif name == b"MATCH":
            match = value
        elif name == b"TYPE":
            kind = value.lower().decode("utf-8", "replace")
        else:
            raise CommandError(SYNTAX)
    next_cursor, keys = db.scan_keys(cursor, count, match, kind)
    return [str(next_cursor).encode(), list(keys)]


def cmd_keys(db: LocalCache, args: list[bytes]) -> Reply:
    keys: list[Reply] = []
    cursor = 0
    while True:
        cursor, found = db.scan_keys(cursor, 1 << 30, args[0], None)
        keys.extend(found)
        if cursor == 0:
            return keys


def cmd_dbsize(db: LocalCache, args: list[bytes]) -> Reply:
    return len(db)


def cmd_flushdb(db: LocalCache, args: list[bytes]) -> Reply:
    if len(args) > 1 or (args and _upper(args[0]) not in (b"ASYNC", b"SYNC")):
        raise CommandError(SYNTAX)
    for k in list(db._data):
        db._drop(k)
    return "OK"


def cmd_ping(db: LocalCache, args: list[bytes]) -> Reply:
    if len(args) > 1:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    return args[0] if args else b"PONG"


def cmd_echo(db: LocalCache, args: list[bytes]) -> Reply:
    return args[0]


def cmd_time(db: LocalCache, args: list[bytes]) -> Reply:
    micros = int(db._clock() * 1_000_000)
    return [str(micros // 1_000_000).encode(), str(micros % 1_000_000).encode()]


def cmd_publish(db: LocalCache, args: list[bytes]) -> Reply:
    return 0  # nobody subscribes to a local store


# -- hashes ---------------------------------------------------------------------------------


def _hash(db: LocalCache, k: bytes) -> dict[bytes, bytes] | None:
    if not db._typed(k, "hash"):
        return None
    return db._data[k]  # type: ignore[return-value]


def cmd_hset(db: LocalCache, args: list[bytes]) -> Reply:
    if len(args) % 2 == 0:
        raise CommandError("ERR wrong number of arguments for 'hset' command")
    fields: dict[bytes, bytes] = db._container(args[0], "hash")  # type: ignore[assignment]
    added = 0
    for i in range(1, len(args), 2):
        added += args[i] not in fields
        fields[args[i]] = args[i + 1]
    return added


def cmd_hget(db: LocalCache, args: list[bytes]) -> Reply:
    fields = _hash(db, args[0])
    return None if fields is None else fields.get(args[1])


def cmd_hmget(db: LocalCache, args: list[bytes]) -> Reply:
    fields = _hash(db, args[0]) or {}
    return [fields.get(f) for f in args[1:]]


def cmd_hgetall(db: LocalCache, args: list[bytes]) -> Reply:
    out: list[Reply] = []
    for field, value in (_hash(db, args[0]) or {}).items():
        out += [field, value]
    return out


def cmd_hdel(db: LocalCache, args: list[bytes]) -> Reply:
    fields = _hash(db, args[0])
    if fields is None:
        return 0
    removed = sum(1 for f in set(args[1:]) if fields.pop(f, None) is not None)
    db._drop_if_empty(args[0])
    return removed


def cmd_hincrby(db: LocalCache, args: list[bytes]) -> Reply:
    amount = parse_int(args[2])
    existing = _hash(db, args[0])
    current = (existing or {}).get(args[1])
    base = 0 if current is None else parse_int(current, "ERR hash value is not an integer")
    result = base + amount
    if not _INT64[0] <= result <= _INT64[1]:
        raise CommandError("ERR increment or decrement would overflow")
    fields: dict[bytes, bytes] = db._container(args[0], "hash")  # type: ignore[assignment]
    fields[args[1]] = str(result).encode()
    return result


def cmd_hexists(db: LocalCache, args: list[bytes]) -> Reply:
    return int(args[1] in (_hash(db, args[0]) or {}))


def cmd_hlen(db: LocalCache, args: list[bytes]) -> Reply:
    return len(_hash(db, args[0]) or {})


# -- sorted sets ----------------------------------------------------------------------------


def _zset(db: LocalCache, k: bytes) -> dict[bytes, float] | None:
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


def cmd_zadd(db: LocalCache, args: list[bytes]) -> Reply:
    flags: set[bytes] = set()
    i = 1
    while i < len(args) and _upper(args[i]) in (b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"):
        flags.add(_upper(args[i]))
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


def cmd_zrem(db: LocalCache, args: list[bytes]) -> Reply:
    members = _zset(db, args[0])
    if members is None:
        return 0
    removed = sum(1 for m in set(args[1:]) if members.pop(m, None) is not None)
    db._drop_if_empty(args[0])
    return removed


def cmd_zcard(db: LocalCache, args: list[bytes]) -> Reply:
    return len(_zset(db, args[0]) or {})


def cmd_zscore(db: LocalCache, args: list[bytes]) -> Reply:
    score = (_zset(db, args[0]) or {}).get(args[1])
    return None if score is None else format_float(score)


def cmd_zcount(db: LocalCache, args: list[bytes]) -> Reply:
    low, high = _score_bound(args[1]), _score_bound(args[2])
    return sum(1 for s in (_zset(db, args[0]) or {}).values() if _in_range(s, low, high))


def cmd_zremrangebyscore(db: LocalCache, args: list[bytes]) -> Reply:
    low, high = _score_bound(args[1]), _score_bound(args[2])
    members = _zset(db, args[0])
    if members is None:
        return 0
    doomed = [m for m, s in members.items() if _in_range(s, low, high)]
    for m in doomed:
        del members[m]
    db._drop_if_empty(args[0])
    return len(doomed)


def cmd_zrange(db: LocalCache, args: list[bytes]) -> Reply:
    by_score = rev = with_scores = False
    limit: tuple[int, int] | None = None
    i = 3
    while i < len(args):
        opt = _upper(args[i])
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
    items = _sorted(_zset(db, args[0]) or {})
    if rev:
        items.reverse()
    if by_score:
        first, second = _score_bound(args[1]), _score_bound(args[2])
        low, high = (second, first) if rev else (first, second)
        items = [(m, s) for m, s in items if _in_range(s, low, high)]
        if limit is not None:
            offset, count = limit
            items = [] if offset < 0 else items[offset:][: None if count < 0 else count]
    else:
        start, stop = parse_int(args[1]), parse_int(args[2])
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


# -- scripts --------------------------------------------------------------------------------


def _sha(source: bytes) -> str:
    return hashlib.sha1(source, usedforsecurity=False).hexdigest()


def _script_call(db: LocalCache, sha: str, args: list[bytes]) -> Reply:
    numkeys = parse_int(args[0])
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    if numkeys > len(args) - 1:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    return db.run_script(sha, list(args[1 : 1 + numkeys]), list(args[1 + numkeys :]))


def cmd_eval(db: LocalCache, args: list[bytes]) -> Reply:
    return _script_call(db, _sha(args[0]), args[1:])


def cmd_evalsha(db: LocalCache, args: list[bytes]) -> Reply:
    sha = args[0].decode("ascii", "replace").lower()
    if sha not in db._loaded:
        raise NoScriptError("NOSCRIPT No matching script. Please use EVAL.")
    return _script_call(db, sha, args[1:])


def cmd_script(db: LocalCache, args: list[bytes]) -> Reply:
    sub = _upper(args[0])
    if sub == b"LOAD" and len(args) == 2:
        sha = _sha(args[1])
        db._loaded.add(sha)
        return sha.encode()
    if sub == b"EXISTS" and len(args) >= 2:
        return [int(a.decode("ascii", "replace").lower() in db._loaded) for a in args[1:]]
    if sub == b"FLUSH":
        db._loaded.clear()
        return "OK"
    raise CommandError(
        f"ERR unknown subcommand '{args[0].decode('utf-8', 'replace')}'. Try SCRIPT HELP."
    )


COMMANDS: dict[str, tuple[Handler, int]] = {
    "ping": (cmd_ping, -1),
    "echo": (cmd_echo, 2),
    "get": (cmd_get, 2),
    "set": (cmd_set, -3),
    "setex": (cmd_setex, 4),
    "psetex": (cmd_psetex, 4),
    "setnx": (cmd_setnx, 3),
    "getdel": (cmd_getdel, 2),
    "getex": (cmd_getex, -2),
    "mget": (cmd_mget, -2),
    "mset": (cmd_mset, -3),
    "del": (cmd_del, -2),
    "unlink": (cmd_del, -2),
    "exists": (cmd_exists, -2),
    "expire": (cmd_expire, -3),
    "pexpire": (cmd_pexpire, -3),
    "expireat": (cmd_expireat, -3),
    "pexpireat": (cmd_pexpireat, -3),
    "persist": (cmd_persist, 2),
    "ttl": (cmd_ttl, 2),
    "pttl": (cmd_pttl, 2),
    "incr": (cmd_incr, 2),
    "incrby": (cmd_incrby, 3),
    "decr": (cmd_decr, 2),
    "decrby": (cmd_decrby, 3),
    "incrbyfloat": (cmd_incrbyfloat, 3),
    "append": (cmd_append, 3),
    "strlen": (cmd_strlen, 2),
    "type": (cmd_type, 2),
    "scan": (cmd_scan, -2),
    "keys": (cmd_keys, 2),
    "dbsize": (cmd_dbsize, 1),
    "flushdb": (cmd_flushdb, -1),
    "flushall": (cmd_flushdb, -1),
    "time": (cmd_time, 1),
    "publish": (cmd_publish, 3),
    "hset": (cmd_hset, -4),
    "hget": (cmd_hget, 3),
    "hmget": (cmd_hmget, -3),
    "hgetall": (cmd_hgetall, 2),
    "hdel": (cmd_hdel, -3),
    "hincrby": (cmd_hincrby, 4),
    "hexists": (cmd_hexists, 3),
    "hlen": (cmd_hlen, 2),
    "zadd": (cmd_zadd, -4),
    "zrem": (cmd_zrem, -3),
    "zcard": (cmd_zcard, 2),
    "zrange": (cmd_zrange, -4),
    "zremrangebyscore": (cmd_zremrangebyscore, 4),
    "zcount": (cmd_zcount, 4),
    "zscore": (cmd_zscore, 3),
    "eval": (cmd_eval, -3),
    "evalsha": (cmd_evalsha, -3),
    "script": (cmd_script, -2),
}
