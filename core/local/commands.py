"""The commands ``LocalCache`` answers, with Redis's replies and error texts.

Each handler takes the store and the arguments after the command name (all ``bytes``) and
returns a ``Reply`` or raises ``CommandError``. ``COMMANDS`` maps a lower-case name to its
handler and Redis's arity (negative: at least that many, counting the name). Strings, keys
and scripts live here; hashes and sorted sets in :mod:`continuum.local.collections`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from continuum.errors import CommandError, NoScriptError
from continuum.local.collections import (
    cmd_hdel,
    cmd_hexists,
    cmd_hget,
    cmd_hgetall,
    cmd_hincrby,
    cmd_hlen,
    cmd_hmget,
    cmd_hset,
    cmd_zadd,
    cmd_zcard,
    cmd_zcount,
    cmd_zrange,
    cmd_zrem,
    cmd_zremrangebyscore,
    cmd_zscore,
)
from continuum.local.values import (
    SYNTAX,
    Reply,
    in_int64,
    parse_float,
    parse_int,
    upper,
)

if TYPE_CHECKING:
    from fractions import Fraction

    from continuum.local.keyspace import Keyspace

__all__ = ["COMMANDS", "MAX_EXPIRE_MS", "Handler"]

#: A command: the keyspace and the arguments after the name; a reply or ``CommandError``.
Handler: TypeAlias = "Callable[[Keyspace, list[bytes]], Reply]"

MAX_EXPIRE_MS = 2**62


# -- strings ------------------------------------------------------------------------------


def _get_string(db: Keyspace, k: bytes) -> bytes | None:
    if not db._typed(k, "string"):
        return None
    value = db._data[k]
    assert isinstance(value, bytes)
    return value


def _expiry_ms(db: Keyspace, option: bytes, raw: bytes, command: str) -> int:
    """Absolute expiry (ms) from EX/PX/EXAT/PXAT; Redis refuses non-positive times."""
    amount = parse_int(raw)
    if amount <= 0 or amount > MAX_EXPIRE_MS // 1000:
        raise CommandError(f"ERR invalid expire time in '{command}' command")
    if option == b"EX":
        return db.now_ms() + amount * 1000
    if option == b"PX":
        return db.now_ms() + amount
    if option == b"EXAT":
        return amount * 1000
    return amount


_TTL_OPTIONS = {b"EX": b"EX", b"ex": b"EX", b"PX": b"PX", b"px": b"PX"}


def cmd_set(db: Keyspace, args: list[bytes], name: str = "set") -> Reply:
    k, value = args[0], args[1]
    if len(args) == 4:  # SET k v EX|PX n: what the cache sends, so it skips the option walk
        option = _TTL_OPTIONS.get(args[2])
        if option is not None:
            expiry = _expiry_ms(db, option, args[3], name)
            db._store(k, value)
            db._expires[k] = expiry / 1000
            return "OK"
    nx = xx = get = keep = False
    expire_ms: int | None = None
    i = 2
    while i < len(args):
        opt = upper(args[i])
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


def cmd_setex(db: Keyspace, args: list[bytes]) -> Reply:
    return cmd_set(db, [args[0], args[2], b"EX", args[1]], "setex")


def cmd_psetex(db: Keyspace, args: list[bytes]) -> Reply:
    return cmd_set(db, [args[0], args[2], b"PX", args[1]], "psetex")


def cmd_setnx(db: Keyspace, args: list[bytes]) -> Reply:
    return 1 if cmd_set(db, [args[0], args[1], b"NX"]) == "OK" else 0


def cmd_get(db: Keyspace, args: list[bytes]) -> Reply:
    return _get_string(db, args[0])


def cmd_getdel(db: Keyspace, args: list[bytes]) -> Reply:
    value = _get_string(db, args[0])
    if value is not None:
        db._drop(args[0])
    return value


def cmd_getex(db: Keyspace, args: list[bytes]) -> Reply:
    # Redis checks the option syntax, then the key, and only then the expire time: a
    # missing key answers nil even with a bad time.
    k, rest = args[0], args[1:]
    opt = upper(rest[0]) if rest else b""
    if rest and not (
        (opt == b"PERSIST" and len(rest) == 1)
        or (opt in (b"EX", b"PX", b"EXAT", b"PXAT") and len(rest) == 2)
    ):
        raise CommandError(SYNTAX)
    value = _get_string(db, k)
    if value is None:
        return None
    if opt == b"PERSIST":
        db._expires.pop(k, None)
    elif rest:
        expire_ms = _expiry_ms(db, opt, rest[1], "getex")
        if expire_ms <= db.now_ms():
            db._drop(k)
        else:
            db._expires[k] = expire_ms / 1000
    return value


def cmd_mget(db: Keyspace, args: list[bytes]) -> Reply:
    out: list[Reply] = []
    for k in args:
        if db._live(k) and db._types[k] == "string":
            out.append(db._data[k])  # type: ignore[arg-type]
        else:
            out.append(None)
    return out


def cmd_mset(db: Keyspace, args: list[bytes]) -> Reply:
    if len(args) % 2:
        raise CommandError("ERR wrong number of arguments for 'mset' command")
    for i in range(0, len(args), 2):
        db._live(args[i])
        db._store(args[i], args[i + 1])
    return "OK"


def _incr(db: Keyspace, k: bytes, amount: int) -> Reply:
    current = _get_string(db, k)
    base = 0 if current is None else parse_int(current)
    result = base + amount
    if not in_int64(result):
        raise CommandError("ERR increment or decrement would overflow")
    db._store(k, str(result).encode(), keep_ttl=True)
    return result


def cmd_incr(db: Keyspace, args: list[bytes]) -> Reply:
    return _incr(db, args[0], 1)


def cmd_decr(db: Keyspace, args: list[bytes]) -> Reply:
    return _incr(db, args[0], -1)


def cmd_incrby(db: Keyspace, args: list[bytes]) -> Reply:
    return _incr(db, args[0], parse_int(args[1]))


def cmd_decrby(db: Keyspace, args: list[bytes]) -> Reply:
    amount = parse_int(args[1])
    if amount == -(2**63):
        raise CommandError("ERR decrement would overflow")
    return _incr(db, args[0], -amount)


def cmd_incrbyfloat(db: Keyspace, args: list[bytes]) -> Reply:
    """Redis parses and adds in x87 ``long double`` (64-bit significand) and prints
    ``%.17Lf`` without trailing zeros: ``0.1 + 0.2`` is ``0.3``, big sums have no exponent.
    Exact rationals rounded to that significand reproduce its answers digit for digit."""
    current = _get_string(db, args[0])
    base = _long_double(b"0" if current is None else current)
    total = _round_significand(base + _long_double(args[1]))
    scaled = round(total * 10**17)  # half-even on the exact value, as printf rounds
    sign, digits = ("-" if scaled < 0 else ""), str(abs(scaled)).rjust(18, "0")
    text = f"{sign}{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    value = text.encode()
    db._store(args[0], value, keep_ttl=True)
    return value


def _long_double(raw: bytes) -> Fraction:
    from decimal import Decimal  # rare command: keep decimal and fractions off import
    from fractions import Fraction

    parse_float(raw)  # Redis's syntax rules first (no spaces, no '_', no NaN)
    exact = Decimal(raw.decode("ascii"))
    if not exact.is_finite():
        raise CommandError("ERR increment would produce NaN or Infinity")
    return _round_significand(Fraction(exact))


def _round_significand(value: Fraction, bits: int = 64) -> Fraction:
    """``value`` rounded (half-even) to the nearest number with a ``bits``-bit significand."""
    from fractions import Fraction

    if value == 0:
        return value
    magnitude = abs(value)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    unit = Fraction(2) ** (exponent - bits + 1)
    return round(value / unit) * unit


def cmd_append(db: Keyspace, args: list[bytes]) -> Reply:
    value = (_get_string(db, args[0]) or b"") + args[1]
    db._store(args[0], value, keep_ttl=True)
    return len(value)


def cmd_strlen(db: Keyspace, args: list[bytes]) -> Reply:
    return len(_get_string(db, args[0]) or b"")


# -- keys -----------------------------------------------------------------------------------


def cmd_del(db: Keyspace, args: list[bytes]) -> Reply:
    return sum(db._drop(k) for k in args if db._live(k))


def cmd_exists(db: Keyspace, args: list[bytes]) -> Reply:
    return sum(1 for k in args if db._live(k))


def _expire(db: Keyspace, args: list[bytes], to_ms: Callable[[int], int], name: str) -> Reply:
    k = args[0]
    amount = parse_int(args[1])
    flags = {upper(a) for a in args[2:]}
    for raw in args[2:]:
        if upper(raw) not in (b"NX", b"XX", b"GT", b"LT"):
            raise CommandError(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
    if (b"NX" in flags and len(flags) > 1) or {b"GT", b"LT"} <= flags:
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    try:
        when = to_ms(amount)
    except OverflowError:
        raise CommandError(f"ERR invalid expire time in '{name}' command") from None
    if abs(when) > MAX_EXPIRE_MS:
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


def cmd_expire(db: Keyspace, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: db.now_ms() + n * 1000, "expire")


def cmd_pexpire(db: Keyspace, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: db.now_ms() + n, "pexpire")


def cmd_expireat(db: Keyspace, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: n * 1000, "expireat")


def cmd_pexpireat(db: Keyspace, args: list[bytes]) -> Reply:
    return _expire(db, args, lambda n: n, "pexpireat")


def cmd_persist(db: Keyspace, args: list[bytes]) -> Reply:
    if not db._live(args[0]):
        return 0
    return 0 if db._expires.pop(args[0], None) is None else 1


def _pttl(db: Keyspace, k: bytes) -> int:
    if not db._live(k):
        return -2
    exp = db._expires.get(k)
    if exp is None:
        return -1
    return max(0, round(exp * 1000) - db.now_ms())


def cmd_ttl(db: Keyspace, args: list[bytes]) -> Reply:
    ms = _pttl(db, args[0])
    return ms if ms < 0 else (ms + 500) // 1000


def cmd_pttl(db: Keyspace, args: list[bytes]) -> Reply:
    return _pttl(db, args[0])


def cmd_type(db: Keyspace, args: list[bytes]) -> Reply:
    return db._types[args[0]].encode() if db._live(args[0]) else b"none"


def cmd_scan(db: Keyspace, args: list[bytes]) -> Reply:
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
        name = upper(opt)
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


def cmd_keys(db: Keyspace, args: list[bytes]) -> Reply:
    keys: list[Reply] = []
    cursor = 0
    while True:
        cursor, found = db.scan_keys(cursor, 1 << 30, args[0], None)
        keys.extend(found)
        if cursor == 0:
            return keys


def cmd_dbsize(db: Keyspace, args: list[bytes]) -> Reply:
    return len(db)


def cmd_flushdb(db: Keyspace, args: list[bytes]) -> Reply:
    if len(args) > 1 or (args and upper(args[0]) not in (b"ASYNC", b"SYNC")):
        raise CommandError(SYNTAX)
    for k in list(db._data):
        db._drop(k)
    return "OK"


def cmd_ping(db: Keyspace, args: list[bytes]) -> Reply:
    if len(args) > 1:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    return args[0] if args else b"PONG"


def cmd_echo(db: Keyspace, args: list[bytes]) -> Reply:
    return args[0]


def cmd_time(db: Keyspace, args: list[bytes]) -> Reply:
    micros = int(db._clock() * 1_000_000)
    return [str(micros // 1_000_000).encode(), str(micros % 1_000_000).encode()]


def cmd_publish(db: Keyspace, args: list[bytes]) -> Reply:
    return 0  # nobody subscribes to a local store


# -- scripts --------------------------------------------------------------------------------


def _sha(source: bytes) -> str:
    return hashlib.sha1(source, usedforsecurity=False).hexdigest()


def _script_call(db: Keyspace, sha: str, args: list[bytes]) -> Reply:
    numkeys = parse_int(args[0])
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    if numkeys > len(args) - 1:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    return db.run_script(sha, list(args[1 : 1 + numkeys]), list(args[1 + numkeys :]))


def cmd_eval(db: Keyspace, args: list[bytes]) -> Reply:
    return _script_call(db, _sha(args[0]), args[1:])


def cmd_evalsha(db: Keyspace, args: list[bytes]) -> Reply:
    sha = args[0].decode("ascii", "replace").lower()
    if sha not in db._loaded:
        raise NoScriptError("NOSCRIPT No matching script. Please use EVAL.")
    return _script_call(db, sha, args[1:])


def cmd_script(db: Keyspace, args: list[bytes]) -> Reply:
    sub = upper(args[0])
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
