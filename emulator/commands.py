"""Which commands Upstash runs, refuses, or keeps from a read-only token.

Upstash is not a plain Redis: its REST API refuses blocking commands, connection and
transaction control, cluster and server administration, and answers with its own error
text. A read-only token may run reads only (and not SCAN or KEYS). This module holds those
tables and the checks the request handler applies before a command reaches the backend,
so the emulator refuses exactly what Upstash refuses, with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_KEY_BYTES = 32 * 1024

# Commands Upstash refuses outright, by upper-case name.
_UNSUPPORTED = frozenset(
    {
        # blocking
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "WAIT",
        "WAITAOF",
        # transaction control (transactions go through /multi-exec)
        "MULTI",
        "EXEC",
        "DISCARD",
        "WATCH",
        "UNWATCH",
        # pub/sub listening (use /subscribe and /psubscribe)
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
        # connection
        "AUTH",
        "HELLO",
        "QUIT",
        "RESET",
        "SELECT",
        "CLIENT",
        "READONLY",
        "READWRITE",
        # cluster and replication
        "CLUSTER",
        "ASKING",
        "SLAVEOF",
        "REPLICAOF",
        "SYNC",
        "PSYNC",
        "FAILOVER",
        "MIGRATE",
        # server administration
        "CONFIG",
        "MONITOR",
        "DEBUG",
        "SHUTDOWN",
        "SAVE",
        "BGSAVE",
        "BGREWRITEAOF",
        "LASTSAVE",
        "ACL",
        "MODULE",
        "LATENCY",
        "SLOWLOG",
        "SWAPDB",
    }
)

# Containers whose sub-commands Upstash serves only in part: allowed sub-commands.
_PARTIAL = {
    "MEMORY": frozenset({"USAGE"}),
    "SCRIPT": frozenset({"LOAD", "EXISTS", "FLUSH"}),
    "FUNCTION": frozenset({"LOAD", "LIST", "STATS", "DELETE", "FLUSH"}),
}

# What a read-only token may run. Anything else answers NOPERM (unknown commands too:
# refusing is the safe side for a token meant to be harmless).
_READ_ONLY = frozenset(
    {
        "PING",
        "ECHO",
        "TIME",
        "DBSIZE",
        "RANDOMKEY",
        "EXISTS",
        "TYPE",
        "TTL",
        "PTTL",
        "EXPIRETIME",
        "PEXPIRETIME",
        "TOUCH",
        "DUMP",
        "OBJECT",
        "MEMORY",
        "INFO",
        "COMMAND",
        "GET",
        "MGET",
        "STRLEN",
        "GETRANGE",
        "SUBSTR",
        "LCS",
        "GETBIT",
        "BITCOUNT",
        "BITPOS",
        "BITFIELD_RO",
        "HGET",
        "HMGET",
        "HGETALL",
        "HKEYS",
        "HVALS",
        "HLEN",
        "HEXISTS",
        "HSTRLEN",
        "HSCAN",
        "HRANDFIELD",
        "HTTL",
        "HPTTL",
        "HEXPIRETIME",
        "HPEXPIRETIME",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "LPOS",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SRANDMEMBER",
        "SINTER",
        "SINTERCARD",
        "SUNION",
        "SDIFF",
        "SSCAN",
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZRANGEBYLEX",
        "ZREVRANGE",
        "ZREVRANGEBYSCORE",
        "ZREVRANGEBYLEX",
        "ZSCORE",
        "ZMSCORE",
        "ZCARD",
        "ZCOUNT",
        "ZLEXCOUNT",
        "ZRANK",
        "ZREVRANK",
        "ZRANDMEMBER",
        "ZDIFF",
        "ZINTER",
        "ZINTERCARD",
        "ZUNION",
        "ZSCAN",
        "PFCOUNT",
        "GEOPOS",
        "GEODIST",
        "GEOHASH",
        "GEOSEARCH",
        "GEORADIUS_RO",
        "GEORADIUSBYMEMBER_RO",
        "XRANGE",
        "XREVRANGE",
        "XLEN",
        "XREAD",
        "XINFO",
        "XPENDING",
        "SORT_RO",
        "EVAL_RO",
        "EVALSHA_RO",
        "SCRIPT",
        "FCALL_RO",
        "FUNCTION",
        "JSON.GET",
        "JSON.MGET",
        "JSON.TYPE",
        "JSON.STRLEN",
        "JSON.ARRLEN",
        "JSON.OBJKEYS",
        "JSON.OBJLEN",
        "JSON.ARRINDEX",
        "PUBSUB",
    }
)
# Sub-commands of read-only containers that still write.
_READ_ONLY_DENIED_SUB = {
    "SCRIPT": frozenset({"FLUSH", "KILL"}),
    "FUNCTION": frozenset({"LOAD", "DELETE", "FLUSH", "RESTORE", "KILL"}),
}

# Commands whose successful answer is the simple status "OK" (kept raw under base64).
_STATUS_OK = frozenset(
    {
        "SET",
        "MSET",
        "SETEX",
        "PSETEX",
        "HMSET",
        "LSET",
        "LTRIM",
        "RENAME",
        "FLUSHDB",
        "FLUSHALL",
        "RESTORE",
        "PFMERGE",
        "XGROUP",
        "XSETID",
        "SCRIPT",
        "FUNCTION",
        "JSON.SET",
        "JSON.MSET",
    }
)

# Key positions for the key-size check: all arguments, every other one, or EVAL's KEYS.
_ALL_KEYS = frozenset(
    {
        "MGET",
        "DEL",
        "UNLINK",
        "EXISTS",
        "TOUCH",
        "SINTER",
        "SUNION",
        "SDIFF",
        "SINTERSTORE",
        "SUNIONSTORE",
        "SDIFFSTORE",
        "PFCOUNT",
        "PFMERGE",
        "RENAME",
        "RENAMENX",
        "RPOPLPUSH",
        "LMOVE",
        "SMOVE",
        "COPY",
        "JSON.MGET",
    }
)
_PAIR_KEYS = frozenset({"MSET", "MSETNX"})
_SCRIPT_KEYS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"})
_NO_KEYS = frozenset(
    {
        "PING",
        "ECHO",
        "TIME",
        "DBSIZE",
        "RANDOMKEY",
        "INFO",
        "COMMAND",
        "SCRIPT",
        "FLUSHDB",
        "FLUSHALL",
        "PUBLISH",
        "SPUBLISH",
        "PUBSUB",
        "SCAN",
        "KEYS",
        "MEMORY",
        "OBJECT",
        "XINFO",
        "XGROUP",
        "XREAD",
        "XREADGROUP",
    }
)


def name_of(args: Sequence[bytes]) -> str:
    """The upper-case command name (the first argument), decoded leniently."""
    return args[0].decode("utf-8", "replace").upper()


def refusal(args: Sequence[bytes]) -> str | None:
    """Upstash's error text when it refuses this command outright, else None."""
    name = name_of(args)
    sub = args[1].decode("utf-8", "replace").upper() if len(args) > 1 else ""
    shown = args[0].decode("utf-8", "replace")
    if name in _UNSUPPORTED:
        return _not_available(shown)
    allowed = _PARTIAL.get(name)
    if allowed is not None and sub not in allowed:
        return _not_available(f"{shown} {args[1].decode('utf-8', 'replace')}" if sub else shown)
    if name in {"XREAD", "XREADGROUP"} and any(a.upper() == b"BLOCK" for a in args[1:]):
        return _not_available(shown)
    return None


def _not_available(shown: str) -> str:
    return f"ERR Command is not available: '{shown}'"


def unknown_command(args: Sequence[bytes]) -> str:
    """Upstash's answer for a command it does not know (Redis would say 'unknown command')."""
    return _not_available(args[0].decode("utf-8", "replace"))


def denied_to_read_only(args: Sequence[bytes]) -> str | None:
    """The NOPERM text when a read-only token may not run this command, else None."""
    name = name_of(args)
    allowed = name in _READ_ONLY
    if allowed and len(args) > 1:
        denied_sub = _READ_ONLY_DENIED_SUB.get(name)
        if denied_sub is not None and args[1].upper().decode("utf-8", "replace") in denied_sub:
            allowed = False
    if allowed:
        return None
    return (
        f"NOPERM this user has no permissions to run the '{name.lower()}' command or its subcommand"
    )


def oversized_key(args: Sequence[bytes], limit: int = MAX_KEY_BYTES) -> str | None:
    """Upstash's error text when a key argument is longer than ``limit`` bytes, else None."""
    for key in _keys(args):
        if len(key) > limit:
            return f"ERR max key size exceeded. Limit: {limit} bytes, Actual: {len(key)} bytes"
    return None


def _keys(args: Sequence[bytes]) -> Sequence[bytes]:
    name = name_of(args)
    if len(args) < 2 or name in _NO_KEYS:
        return ()
    if name in _ALL_KEYS:
        return args[1:]
    if name in _PAIR_KEYS:
        return args[1::2]
    if name in _SCRIPT_KEYS:
        try:
            count = int(args[2])
        except (IndexError, ValueError):
            return ()
        return args[3 : 3 + max(count, 0)]
    return args[1:2]


# A negative count asks for that many random members, repeats allowed: redis-server 7.0
# crashes on a huge one and fakeredis never returns. No real reply could be that large
# anyway (Upstash caps a response at 10 MB), so the emulator refuses beyond this.
MAX_RANDOM_REPEATS = 1_000_000
_RANDOM_MEMBERS = frozenset({"SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER"})
# Upstash's largest record. SETRANGE and SETBIT far past the end would otherwise make the
# backend allocate up to 512 MB (in the emulator's own process, on fakeredis).
MAX_RECORD_BYTES = 100 * 1024 * 1024


def out_of_range(args: Sequence[bytes]) -> str | None:
    """Redis's range error for arguments that would build something unbounded, else None."""
    name = name_of(args)
    if len(args) < 3 or name not in _RANDOM_MEMBERS | {"SETRANGE", "SETBIT"}:
        return None
    try:
        number = int(args[2])
    except ValueError:
        return None  # the backend answers its own "not an integer" error
    if name in _RANDOM_MEMBERS and number < -MAX_RANDOM_REPEATS:
        return "ERR value is out of range"
    if name == "SETRANGE" and number + len(args[3] if len(args) > 3 else b"") > MAX_RECORD_BYTES:
        return "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    if name == "SETBIT" and number >= MAX_RECORD_BYTES * 8:
        return "ERR bit offset is not an integer or out of range"
    return None


def replies_status_ok(args: Sequence[bytes]) -> bool:
    """Whether this command's "OK" is Redis's simple status (not a stored value "OK")."""
    name = name_of(args)
    if name == "SET":
        return not any(a.upper() == b"GET" for a in args[3:])
    return name in _STATUS_OK
