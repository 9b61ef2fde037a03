"""The Redis behind the emulator: fakeredis in-process, or a real server by URL.

Commands go to the backend as raw argument lists on a pooled connection speaking RESP2
(as Upstash's Redis does; redis-py 8 would default to RESP3) and replies are read with
decoding off, without redis-py's per-command response callbacks, so bytes stay
bytes and a reply reaches the HTTP layer exactly as Redis sent it. A batch (pipeline) is
written in one go and its replies read back in order; a transaction is MULTI ... EXEC on
one connection.

Scripts need three translations. fakeredis has no EVAL_RO/EVALSHA_RO, so there they run
as EVAL/EVALSHA (without the read-only check redis-server makes). And Upstash accepts a
first line ``#!lua flags=...`` that fakeredis (any ``#!`` line) and redis-server 7.0
(``allow-key-locking``) reject, while clients call EVALSHA with the SHA1 of the text they
sent. So the emulator strips that line before the backend sees it, and remembers
original-SHA1 -> the text it runs. That text also counts the script's redis.call()s,
which Upstash bills (see ``_COUNTING_PRELUDE``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import redis
from redis.exceptions import ExecAbortError, ResponseError

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."

# Error codes Redis sends in front of its message. Older redis-py strips "ERR" (and a few
# others) without saying so; an error not starting with one of these lost its "ERR".
_ERROR_CODES = frozenset(
    {
        "WRONGTYPE", "BUSYKEY", "NOGROUP", "BUSYGROUP", "OOM", "BUSY", "NOTBUSY", "MISCONF",
        "UNKILLABLE", "NOPROTO", "EXECABORT", "NOSCRIPT", "NOPERM", "READONLY", "LOADING",
        "CROSSSLOT", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "NOAUTH",
        "WRONGPASS", "NOREPLICAS", "INVALIDOBJ", "NOTEMPTY",
    }
)


@dataclass(frozen=True)
class ErrorReply:
    """A Redis error answer, with Redis's full text (code included)."""

    message: str


Reply = Union[None, int, bytes, list["Reply"], ErrorReply]  # noqa: UP007 - runtime alias
Command = Sequence[bytes]


# How to turn the backend's reply into the client's, and the inner calls a script made.
_Fix = Callable[[Reply], tuple[Reply, int]]
_Plan = tuple[Command, _Fix | None]

# Upstash bills each redis.call/pcall a script makes. The emulator counts them by running
# every script inside a function whose own ``redis`` counts calls before passing them on,
# and returning {count, result}. The prelude shares the script's first line (which is
# empty when a ``#!`` line was stripped), so Lua error line numbers stay the script's own.
_COUNTING_PRELUDE = (
    b"local __emu_calls = 0 local __emu_redis = redis "
    b"local redis = setmetatable({"
    b"call = function(...) __emu_calls = __emu_calls + 1 return __emu_redis.call(...) end, "
    b"pcall = function(...) __emu_calls = __emu_calls + 1 return __emu_redis.pcall(...) end"
    b"}, {__index = __emu_redis}) "
    b"local __emu_result = (function() "
)
_COUNTING_EPILOGUE = b"\nend)() return {__emu_calls, __emu_result}"


@dataclass(frozen=True)
class Outcome:
    """Replies in command order, and the redis.call()s scripts made (Upstash bills them)."""

    replies: list[Reply]
    script_calls: int = 0


class TransactionDiscarded(Exception):
    """MULTI/EXEC was aborted as a whole; ``message`` is the first queuing error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_text(error: ResponseError) -> str:
    """Redis's error line, rebuilt from redis-py's exception (which strips known codes)."""
    text = str(error)
    if isinstance(error, redis.exceptions.NoScriptError):
        return NOSCRIPT
    if hasattr(error, "status_code"):  # redis-py 7+: the code it stripped, or None
        code = error.status_code
        return f"{code} {text}" if code else text
    if isinstance(error, ExecAbortError):
        return f"EXECABORT {text}"
    first = text.split(" ", 1)[0]
    return text if first in _ERROR_CODES else f"ERR {text}"


def _plain(reply: Any) -> Reply:
    """Errors nested in EXEC or script arrays arrive as exception instances: make them data."""
    if isinstance(reply, list):
        return [_plain(item) for item in reply]
    if isinstance(reply, ResponseError):
        return ErrorReply(error_text(reply))
    return reply  # type: ignore[no-any-return]


def _counted(script: bytes) -> bytes:
    return _COUNTING_PRELUDE + strip_shebang(script) + _COUNTING_EPILOGUE


def _uncount(reply: Reply) -> tuple[Reply, int]:
    """The script's own reply out of {count, result}; errors raised by a script pass as-is."""
    if isinstance(reply, list) and reply and isinstance(reply[0], int) and len(reply) <= 2:
        return (reply[1] if len(reply) == 2 else None), reply[0]
    return reply, 0


def strip_shebang(script: bytes) -> bytes:
    """The script without a first ``#!`` line (kept as an empty line, so line numbers hold)."""
    if script.startswith(b"#!"):
        newline = script.find(b"\n")
        return b"" if newline < 0 else script[newline:]
    return script


class Backend:
    """A Redis to run commands on: ``"fakeredis"`` or a ``redis://`` / ``rediss://`` URL."""

    def __init__(self, target: str = "fakeredis") -> None:
        self.target = target
        if target == "fakeredis":
            import fakeredis

            self._server: Any = fakeredis.FakeServer()
            self.client: redis.Redis = fakeredis.FakeRedis(server=self._server, protocol=2)
            self.kind = "fakeredis"
        else:
            self.client = redis.Redis.from_url(
                target, protocol=2, socket_timeout=30, socket_connect_timeout=5,
                max_connections=64,
            )
            self.kind = "redis"
        self._pool = self.client.connection_pool
        self._scripts: dict[str, bytes] = {}
        self._scripts_lock = threading.Lock()

    def close(self) -> None:
        self._pool.disconnect()

    def describe(self) -> str:
        """Where commands go, for humans (a URL's password is left out)."""
        if self.kind == "fakeredis":
            return "fakeredis (in-process)"
        kwargs = self._pool.connection_kwargs
        return f"redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    # -- scripts -------------------------------------------------------------------------

    def _remember(self, script: bytes) -> tuple[str, bytes]:
        """The SHA1 of the text as sent, and the text the backend runs (stripped, counting)."""
        sha = hashlib.sha1(script).hexdigest()  # noqa: S324 - Redis names scripts by SHA1
        prepared = _counted(script)
        with self._scripts_lock:
            self._scripts[sha] = prepared
        return sha, prepared

    def _known(self, sha: bytes) -> bytes | None:
        with self._scripts_lock:
            return self._scripts.get(sha.decode("ascii", "replace").lower())

    def _translate(self, args: Command) -> _Plan:
        """The command the backend runs for ``args``, and how to rewrite its reply."""
        name = args[0].upper()
        read_only = name in (b"EVAL_RO", b"EVALSHA_RO") and self.kind == "redis"
        if name in (b"EVAL", b"EVAL_RO") and len(args) > 1:
            _, prepared = self._remember(args[1])
            return [b"EVAL_RO" if read_only else b"EVAL", prepared, *args[2:]], _uncount
        if name in (b"EVALSHA", b"EVALSHA_RO") and len(args) > 1:
            known_script = self._known(args[1])
            if known_script is not None:
                return [b"EVAL_RO" if read_only else b"EVAL", known_script, *args[2:]], _uncount
            return [b"EVALSHA_RO" if read_only else b"EVALSHA", *args[1:]], None
        if name == b"SCRIPT" and len(args) > 2:
            sub = args[1].upper()
            if sub == b"LOAD":
                sha, prepared = self._remember(args[2])
                return [args[0], args[1], prepared], lambda reply: (
                    reply if isinstance(reply, ErrorReply) else sha.encode(), 0
                )
            if sub == b"EXISTS":
                known = [self._known(sha) is not None for sha in args[2:]]
                return args, lambda reply: (_merge_exists(known, reply), 0)
        if name == b"SCRIPT" and len(args) > 1 and args[1].upper() == b"FLUSH":
            with self._scripts_lock:
                self._scripts.clear()
        return args, None

    # -- execution -----------------------------------------------------------------------

    def run(self, commands: Sequence[Command]) -> Outcome:
        """Run commands in order (not atomically); each reply or ErrorReply in its slot."""
        plans = [self._translate(args) for args in commands]
        with self._connection() as conn:
            conn.send_packed_command(conn.pack_commands([args for args, _ in plans]))
            replies = [self._read(conn) for _ in plans]
        return self._finish(plans, replies)

    def transaction(self, commands: Sequence[Command]) -> Outcome:
        """Run commands in MULTI/EXEC; raises TransactionDiscarded when Redis aborts it."""
        plans = [self._translate(args) for args in commands]
        with self._connection() as conn:
            packed = [(b"MULTI",), *[args for args, _ in plans], (b"EXEC",)]
            conn.send_packed_command(conn.pack_commands(packed))
            replies = [self._read(conn) for _ in packed]
        queued = replies[1:-1]
        first_error = next((r for r in queued if isinstance(r, ErrorReply)), None)
        result = replies[-1]
        if first_error is not None or isinstance(result, ErrorReply):
            reason = first_error if first_error is not None else result
            assert isinstance(reason, ErrorReply)
            raise TransactionDiscarded(reason.message)
        if not isinstance(result, list):
            raise TransactionDiscarded("EXECABORT Transaction discarded")
        return self._finish(plans, result)

    @staticmethod
    def _finish(plans: list[_Plan], replies: list[Reply]) -> Outcome:
        out: list[Reply] = []
        calls = 0
        for (_, fix), reply in zip(plans, replies, strict=True):
            if fix is None:
                out.append(reply)
                continue
            fixed, inner = fix(reply)
            out.append(fixed)
            calls += inner
        return Outcome(out, calls)

    def flush(self) -> None:
        """Empty the database this emulator serves (other databases and scripts stay)."""
        self.run([(b"FLUSHDB",)])

    def pubsub(self) -> Any:
        """A redis-py PubSub on this backend (for the SSE endpoints)."""
        return self.client.pubsub(ignore_subscribe_messages=False)  # type: ignore[no-untyped-call]

    @staticmethod
    def _read(conn: Any) -> Reply:
        try:
            return _plain(conn.read_response(disable_decoding=True))
        except ResponseError as error:
            return ErrorReply(error_text(error))

    def _connection(self) -> _Lease:
        return _Lease(self._pool)


class _Lease:
    """A pooled connection for one batch; dropped (not reused) if the batch failed midway."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._conn: Any = None

    def __enter__(self) -> Any:
        self._conn = self._pool.get_connection()
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._conn.disconnect()
        self._pool.release(self._conn)


def _merge_exists(known: list[bool], reply: Reply) -> Reply:
    if not isinstance(reply, list):
        return reply
    return [1 if k else r for k, r in zip(known, reply, strict=False)]

