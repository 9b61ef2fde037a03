"""The Redis behind the emulator: fakeredis in-process, or a real server by URL.

Commands go to the backend as raw argument lists on a pooled connection speaking RESP2
(as Upstash's Redis does; redis-py 8 would default to RESP3) and replies are read with
decoding off, without redis-py's per-command response callbacks, so bytes stay
bytes and a reply reaches the HTTP layer exactly as Redis sent it. A batch (pipeline) is
written in one go and its replies read back in order; a transaction is MULTI ... EXEC on
one connection.

Scripts are rewritten on the way (``continuum.emulator.scripts``): the ``#!lua`` line Upstash
accepts is stripped, EVALSHA works with the SHA1 of the text the client sent, inner
redis.call()s are counted for billing, and a script that never ends is stopped. fakeredis
has no EVAL_RO/EVALSHA_RO, so there they run as EVAL/EVALSHA inside a wrapper that refuses
the commands fakeredis flags as writes, with redis-server's error.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import redis
from redis._parsers.base import BaseParser
from redis.exceptions import ExecAbortError, RedisError, ResponseError

from continuum.emulator.scripts import HARDEN_LUA, ScriptBook, Watchdog

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
TOO_DEEP = "ERR the reply is nested too deeply for the emulator (the command did run)"

# Error codes Redis sends in front of its message. Older redis-py strips "ERR" (and a few
# others) without saying so; an error not starting with one of these lost its "ERR".
_ERROR_CODES = frozenset(
    {
        "WRONGTYPE",
        "BUSYKEY",
        "NOGROUP",
        "BUSYGROUP",
        "OOM",
        "BUSY",
        "NOTBUSY",
        "MISCONF",
        "UNKILLABLE",
        "NOPROTO",
        "EXECABORT",
        "NOSCRIPT",
        "NOPERM",
        "READONLY",
        "LOADING",
        "CROSSSLOT",
        "MOVED",
        "ASK",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "MASTERDOWN",
        "NOAUTH",
        "WRONGPASS",
        "NOREPLICAS",
        "INVALIDOBJ",
        "NOTEMPTY",
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
# the SHA1 of no script: what an EVALSHA of a script this emulator never saw asks for
_NO_SUCH_SHA = b"0" * 40


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
    """Redis's error line, rebuilt from redis-py's exception.

    redis-py strips the code off the errors it maps to an exception class of its own
    (``ERR``, ``EXECABORT``, ``NOPERM``, ...) and keeps every other line whole; 8.0 and
    later also keep the code in ``status_code``, so since 8.2 a ``WRONGTYPE`` line arrives
    whole *and* with its code. Whether the code was stripped is therefore read from the
    parser's own table, never from the presence of ``status_code``.
    """
    text = str(error)
    if isinstance(error, redis.exceptions.NoScriptError):
        return NOSCRIPT
    if hasattr(error, "status_code"):  # redis-py 8+: the line's code, or None
        code = error.status_code
        line = f"{code} {text}" if code in _STRIPPED_CODES else text
    elif isinstance(error, ExecAbortError):
        line = f"EXECABORT {text}"
    else:
        line = text if text.split(" ", 1)[0] in _ERROR_CODES else f"ERR {text}"
    # fakeredis writes some codes after "ERR" ("ERR BUSYGROUP ..."); Redis sends them alone.
    code, _, rest = line.partition(" ")
    if code == "ERR" and rest.split(" ", 1)[0] in _ERROR_CODES:
        return rest
    return line


# The error codes redis-py strips (the keys of its parser's exception table, 5.0 to 8.x).
_STRIPPED_CODES = frozenset(BaseParser.EXCEPTION_CLASSES)


def _plain(reply: Any) -> Reply:
    """Errors nested in EXEC or script arrays arrive as exception instances: make them data."""
    if isinstance(reply, list):
        return [_plain(item) for item in reply]
    if isinstance(reply, ResponseError):
        return ErrorReply(error_text(reply))
    return reply  # type: ignore[no-any-return]


_SCRIPT_RUNS = frozenset({b"EVAL", b"EVAL_RO", b"EVALSHA", b"EVALSHA_RO"})


def _script_reply(sha: str, runnable: bytes) -> _Fix:
    """The script's own reply out of {count, result}. An error raised by the script passes
    as it is, except that it names the script by the SHA1 the client knows, not the
    wrapper's, and without the Lua stack trace fakeredis appends."""

    def fix(reply: Reply) -> tuple[Reply, int]:
        if isinstance(reply, list) and reply and isinstance(reply[0], int) and len(reply) <= 2:
            return (reply[1] if len(reply) == 2 else None), reply[0]
        if isinstance(reply, ErrorReply):
            wrapper = hashlib.sha1(runnable).hexdigest()  # noqa: S324 - Redis's script name
            message = reply.message.split("\nstack traceback:", 1)[0]  # fakeredis adds it
            return ErrorReply(message.replace(wrapper, sha)), 0
        return reply, 0

    return fix


def _no_python_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("scripts cannot reach Python objects")


class _SandboxedLupa:
    """fakeredis's lupa module, but every ``LuaRuntime`` it makes gives Lua no way into
    Python: no ``python`` global and no attribute access on the Python objects fakeredis
    hands to scripts (``redis.call``, ``cjson.null``, a caught error), any of which led to
    ``__globals__`` and from there to the interpreter's builtins."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def LuaRuntime(self, *args: Any, **kwargs: Any) -> Any:  # lupa's name, kept
        kwargs.update(
            register_eval=False, register_builtins=False, attribute_filter=_no_python_attributes
        )
        return self._module.LuaRuntime(*args, **kwargs)


_HARDENING = threading.Lock()


def _harden_lua(server: Any, client: redis.Redis) -> None:
    """Give fakeredis's in-process Lua the sandbox Redis gives scripts.

    fakeredis builds its runtime on the first script and keeps it on the server object:
    that first script runs here with lupa's runtime swapped for the sandboxed one, then
    HARDEN_LUA removes the standard libraries Redis leaves out. If a future fakeredis
    changes either place, the emulator still runs, unhardened, and says so."""
    try:
        from fakeredis.commands_mixins import scripting_mixin

        module = scripting_mixin.LUA_MODULE
    except (ImportError, AttributeError):
        module = None
    with _HARDENING:
        if module is not None:
            scripting_mixin.LUA_MODULE = _SandboxedLupa(module)  # type: ignore[assignment]
        try:
            client.eval("return 1", 0)
        finally:
            if module is not None:
                scripting_mixin.LUA_MODULE = module
    runtime = getattr(server, "_lua_runtime", None)
    if module is None or runtime is None:
        warnings.warn(
            "fakeredis's Lua runtime was not found: scripts run without the Redis sandbox",
            RuntimeWarning,
            stacklevel=3,
        )
        if runtime is None:
            return
    runtime.eval(HARDEN_LUA)()


class Backend:
    """A Redis to run commands on: ``"fakeredis"`` or a ``redis://`` / ``rediss://`` URL."""

    def __init__(self, target: str = "fakeredis", *, script_timeout: float = 5.0) -> None:
        """``script_timeout``: seconds after which a running script is stopped."""
        self.target = target
        self.script_timeout = script_timeout
        if target == "fakeredis":
            import fakeredis

            self._server: Any = fakeredis.FakeServer()
            self.client: redis.Redis = fakeredis.FakeRedis(server=self._server, protocol=2)
            self.kind = "fakeredis"
            _harden_lua(self._server, self.client)
        else:
            self.client = redis.Redis.from_url(
                target,
                protocol=2,
                socket_timeout=30,
                socket_connect_timeout=5,
                max_connections=64,
            )
            self.kind = "redis"
        self._pool = self.client.connection_pool
        # Subscribers hold their connection for as long as they listen: they get a client
        # of their own, so sixty-odd of them cannot take every connection commands need.
        self._listeners: redis.Redis = (
            self.client
            if self.kind == "fakeredis"
            else redis.Redis.from_url(target, protocol=2, socket_connect_timeout=5)
        )
        # In-process Lua is stopped by a hook; redis-server by a SCRIPT KILL watchdog.
        in_process = self.kind == "fakeredis"
        self._scripts = ScriptBook(
            cpu_limit=script_timeout if in_process else None,
            write_commands=self._write_commands if in_process else None,
        )

    def close(self) -> None:
        self._pool.disconnect()
        self._listeners.connection_pool.disconnect()

    def describe(self) -> str:
        """Where commands go, for humans (a URL's password is left out)."""
        if self.kind == "fakeredis":
            return "fakeredis (in-process)"
        kwargs = self._pool.connection_kwargs
        return f"redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    # -- scripts -------------------------------------------------------------------------

    def _kill_busy_script(self) -> None:
        """SCRIPT KILL on a connection of its own (the pool's may all be waiting)."""
        conn = self._pool.connection_class(**self._pool.connection_kwargs)
        try:
            conn.send_command("SCRIPT", "KILL")
            conn.read_response()
        except (RedisError, OSError):
            pass  # NOTBUSY (it just ended) or UNKILLABLE (it wrote): nothing more to do
        finally:
            conn.disconnect()

    def _write_commands(self) -> list[bytes]:
        """The commands this backend flags as writes (a container counts if a sub-command
        writes, e.g. XGROUP), from COMMAND: what a read-only script may not call."""
        reply = self.run([(b"COMMAND",)]).replies[0]
        names: list[bytes] = []
        for info in reply if isinstance(reply, list) else []:
            if isinstance(info, list) and len(info) > 2 and isinstance(info[2], list):
                name = info[0]
                if isinstance(name, bytes) and b"write" in info[2]:
                    names.append(name.split(b"|", 1)[0])
        return [name for name in names if name.replace(b".", b"").replace(b"_", b"").isalnum()]

    def _guard(self, plans: list[_Plan]) -> contextlib.AbstractContextManager[object]:
        if self.kind == "redis" and any(args[0] in _SCRIPT_RUNS for args, _ in plans):
            return Watchdog(self.script_timeout, self._kill_busy_script)
        return contextlib.nullcontext()

    def _translate(self, args: Command) -> _Plan:
        """The command the backend runs for ``args``, and how to rewrite its reply."""
        name = args[0].upper()
        read_only = name in (b"EVAL_RO", b"EVALSHA_RO")
        native_read_only = read_only and self.kind == "redis"
        run = b"EVAL_RO" if native_read_only else b"EVAL"
        if name in (b"EVAL", b"EVAL_RO") and len(args) > 1:
            sha, runnable = self._scripts.remember(args[1], read_only=read_only)
            return [run, runnable, *args[2:]], _script_reply(sha, runnable)
        if name in (b"EVALSHA", b"EVALSHA_RO") and len(args) > 1:
            known_script = self._scripts.runnable(args[1], read_only=read_only)
            if known_script is not None:
                sha = args[1].decode("ascii", "replace").lower()
                return [run, known_script, *args[2:]], _script_reply(sha, known_script)
            # Not through this emulator: NOSCRIPT, as a fresh Upstash database answers, so the
            # client sends the text (a real Redis shared with other clients may hold the
            # script, but running it unwrapped would bill its calls wrongly). Asking for a
            # SHA no script has keeps Redis's own reply, in transactions too.
            run_sha = b"EVALSHA_RO" if native_read_only else b"EVALSHA"
            return [run_sha, _NO_SUCH_SHA, *args[2:]], None
        if name == b"SCRIPT" and len(args) > 2:
            sub = args[1].upper()
            if sub == b"LOAD":
                sha, runnable = self._scripts.remember(args[2])
                return [args[0], args[1], runnable], lambda reply: (
                    reply if isinstance(reply, ErrorReply) else sha.encode(),
                    0,
                )
            if sub == b"EXISTS":  # what EVALSHA would find: scripts sent through here
                known = [self._scripts.runnable(sha) is not None for sha in args[2:]]
                return args, lambda reply: (_known_scripts(known, reply), 0)
        if name == b"SCRIPT" and len(args) > 1 and args[1].upper() == b"FLUSH":
            self._scripts.forget_all()
        return args, None

    # -- execution -----------------------------------------------------------------------

    def run(self, commands: Sequence[Command]) -> Outcome:
        """Run commands in order (not atomically); each reply or ErrorReply in its slot."""
        plans = [self._translate(args) for args in commands]
        if self.kind == "fakeredis":
            return self._finish(plans, [self._run_in_process(args) for args, _ in plans])
        with self._connection() as conn, self._guard(plans):
            conn.send_packed_command(conn.pack_commands([args for args, _ in plans]))
            replies = self._read_all(conn, len(plans))
        return self._finish(plans, replies)

    def _run_in_process(self, args: Command) -> Reply:
        """One command on fakeredis. Where fakeredis has a bug (a Python exception rather
        than a Redis error), that command answers an error instead of failing the request."""
        try:
            with self._connection() as conn:
                conn.send_packed_command(conn.pack_command(*args))
                return self._read(conn)
        except RedisError:
            raise
        except Exception as error:
            return ErrorReply(_fakeredis_failed(repr(args[0].decode("utf-8", "replace")), error))

    def transaction(self, commands: Sequence[Command]) -> Outcome:
        """Run commands in MULTI/EXEC; raises TransactionDiscarded when Redis aborts it."""
        plans = [self._translate(args) for args in commands]
        try:
            with self._connection() as conn, self._guard(plans):
                packed = [(b"MULTI",), *[args for args, _ in plans], (b"EXEC",)]
                conn.send_packed_command(conn.pack_commands(packed))
                replies = self._read_all(conn, len(packed))
        except RedisError:
            raise
        except Exception as error:  # fakeredis's own bugs (see _run_in_process)
            raise TransactionDiscarded(_fakeredis_failed("this transaction", error)) from None
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
        listeners: Any = self._listeners  # typed in some redis-py releases, not in others
        return listeners.pubsub(ignore_subscribe_messages=False)

    @classmethod
    def _read_all(cls, conn: Any, count: int) -> list[Reply]:
        """``count`` replies in order. redis-py parses nested replies recursively, so one
        nested thousands deep (a script can build it) cannot be read; it and the replies
        behind it on that connection become errors and the connection is dropped."""
        replies: list[Reply] = []
        for _ in range(count):
            try:
                replies.append(cls._read(conn))
            except RecursionError:
                conn.disconnect()
                replies.append(ErrorReply(TOO_DEEP))
                lost = ErrorReply("ERR reply lost: an earlier reply in this batch was too deep")
                replies.extend(lost for _ in range(count - len(replies)))
                break
        return replies

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
        try:
            if exc_type is not None:
                self._conn.disconnect()
        except Exception:  # noqa: S110 - a broken connection is being dropped anyway
            pass
        finally:
            self._pool.release(self._conn)


def _fakeredis_failed(what: str, error: Exception) -> str:
    return f"ERR fakeredis could not run {what} ({type(error).__name__}): check the arguments"


def _known_scripts(known: list[bool], reply: Reply) -> Reply:
    if not isinstance(reply, list):
        return reply  # an error (e.g. wrong arguments) stays the backend's
    return [1 if k else 0 for k in known]
