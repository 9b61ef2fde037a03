"""The Redis behind the emulator: fakeredis in-process, or a real server by URL.

Commands go to the backend as raw argument lists on a pooled connection speaking RESP2
(as Upstash's Redis does; redis-py 8 would default to RESP3) and replies are read with
decoding off, without redis-py's per-command response callbacks, so bytes stay
bytes and a reply reaches the HTTP layer exactly as Redis sent it. A batch (pipeline) is
written in one go and its replies read back in order, each admitted against the
request's reply budget as it is read; a transaction is MULTI ... EXEC on one connection.

Each command is first translated (``_translate``): scripts (``continuum.emulator.scripts``)
and functions (``continuum.emulator.functions``) run the emulator's instrumented text,
and the commands where Upstash answers differently from Redis are rewritten
(``continuum.emulator.dialect``). fakeredis runs in the emulator's own Lua sandbox
(``continuum.emulator.sandbox``) and with the commands Upstash serves that it lacks
(``continuum.emulator.fake``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from continuum.emulator import catalogue, dialect
from continuum.emulator.functions import FunctionLibrary
from continuum.emulator.resp import (
    NOSCRIPT,
    TOO_DEEP,
    Command,
    ErrorReply,
    Outcome,
    Reply,
    ReplyBudget,
    TransactionDiscarded,
    error_text,
    plain,
    size_of,
)
from continuum.emulator.scripts import RedisWrapper, ScriptBook, Watchdog, Wrapper

__all__ = [
    "NOSCRIPT",
    "TOO_DEEP",
    "Backend",
    "Command",
    "ErrorReply",
    "NeedsWorker",
    "Outcome",
    "Reply",
    "ReplyBudget",
    "TransactionDiscarded",
    "error_text",
    "size_of",
]

# How to turn the backend's reply into the client's, and the inner calls a script made.
Fix = Callable[[Reply], tuple[Reply, int]]
Plan = tuple[Command, Fix | None]
# the SHA1 of no script: what an EVALSHA of a script this emulator never saw asks for
_NO_SUCH_SHA = b"0" * 40
_SCRIPT_RUNS = frozenset({b"EVAL", b"EVAL_RO", b"EVALSHA", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"})


class NeedsWorker(Exception):
    """A request tried on the event loop that may block: hand it to a worker thread."""


class _Held:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class Backend:
    """A Redis to run commands on: ``"fakeredis"`` or a ``redis://`` / ``rediss://`` URL."""

    def __init__(self, target: str = "fakeredis", *, script_timeout: float = 5.0) -> None:
        """``script_timeout``: seconds after which a running script is stopped."""
        self.target = target
        self.script_timeout = script_timeout
        self._runtime: Any = None
        wrapper: Wrapper
        if target == "fakeredis":
            from continuum.emulator import fake, sandbox

            self._server: Any = fake.server()
            self.client: redis.Redis = fake.client(self._server)
            self.kind = "fakeredis"
            self._runtime = sandbox.install(self._server, self.client, fake.is_write)
            self._runtime.seconds = script_timeout
            wrapper = sandbox.FakeWrapper(self._runtime)
        else:
            self.client = redis.Redis.from_url(
                target,
                protocol=2,
                socket_timeout=30,
                socket_connect_timeout=5,
                max_connections=64,
            )
            self.kind = "redis"
            wrapper = RedisWrapper(script_timeout)
        self._pool = self.client.connection_pool
        # Subscribers hold their connection for as long as they listen: they get a client
        # of their own, so sixty-odd of them cannot take every connection commands need.
        self._listeners: redis.Redis = (
            self.client
            if self.kind == "fakeredis"
            else redis.Redis.from_url(target, protocol=2, socket_connect_timeout=5)
        )
        self._scripts = ScriptBook(wrapper)
        self._wrapper = wrapper
        self.functions = FunctionLibrary(self)
        self.cursors = dialect.Cursors()
        self._catalogue: catalogue.Catalogue | None = None
        # Scripts hold this while they run; a command runs on the event loop only while
        # it is free, so the loop never waits behind a script for fakeredis's lock.
        self._scripts_running = threading.Lock()

    def close(self) -> None:
        self._pool.disconnect()
        self._listeners.connection_pool.disconnect()

    def describe(self) -> str:
        """Where commands go, for humans (a URL's password is left out)."""
        if self.kind == "fakeredis":
            return "fakeredis (in-process)"
        kwargs = self._pool.connection_kwargs
        return f"redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    def hold(
        self, commands: Sequence[Command], *, inline: bool
    ) -> contextlib.AbstractContextManager[object]:
        """What running ``commands`` needs held. ``inline`` (on the event loop): only quick
        fakeredis commands while no script runs, else ``NeedsWorker``; on a worker thread a
        script waits for the others."""
        scripted = any(args[0].upper() in _SCRIPT_RUNS for args in commands)
        if inline:
            if self.kind != "fakeredis" or scripted:
                raise NeedsWorker
            if not self._scripts_running.acquire(blocking=False):
                raise NeedsWorker
            return _Held(self._scripts_running)
        if scripted and self.kind == "fakeredis":
            self._scripts_running.acquire()
            return _Held(self._scripts_running)
        return contextlib.nullcontext()

    def lacks(self, args: Command) -> str | None:
        """The refusal for a command Upstash serves but this backend does not, else None."""
        if self._catalogue is None:
            self._catalogue = catalogue.Catalogue.of(self)
        return self._catalogue.lacks(args)

    def wrap(self, body: bytes, read_only: bool) -> bytes:
        """The text the backend runs for a script body (see ``continuum.emulator.scripts``)."""
        return self._wrapper.wrap(body, read_only)

    def internal(self, body: bytes, keys: Sequence[bytes], argv: Sequence[bytes]) -> Command:
        """EVAL of one of the emulator's own scripts (its calls are not billed)."""
        return [b"EVAL", self._wrapper.internal(body), str(len(keys)).encode(), *keys, *argv]

    # -- scripts -------------------------------------------------------------------------

    def _kill_busy_script(self) -> None:
        """SCRIPT KILL on a connection of its own (the pool's may all be waiting)."""
        conn = self._pool.connection_class(**self._pool.connection_kwargs)
        try:
            conn.send_command("SCRIPT", "KILL")
            conn.read_response()
        except (RedisError, OSError):
            pass  # NOTBUSY (it just ended) or UNKILLABLE (it wrote): its own ticks end it
        finally:
            conn.disconnect()

    def _guard(self, plans: list[Plan]) -> contextlib.AbstractContextManager[object]:
        # The ticks end any Lua the script runs; a long C call (a huge pattern match)
        # before any write is what SCRIPT KILL still stops.
        if self.kind == "redis" and any(args[0].upper() in _SCRIPT_RUNS for args, _ in plans):
            return Watchdog(self.script_timeout + 1.0, self._kill_busy_script)
        return contextlib.nullcontext()

    def _translate(self, args: Command) -> Plan:
        """The command the backend runs for ``args``, and how to rewrite its reply."""
        name = args[0].upper()
        read_only = name in (b"EVAL_RO", b"EVALSHA_RO")
        if name in (b"EVAL", b"EVAL_RO") and len(args) > 1:
            sha, runnable = self._scripts.remember(args[1], read_only=read_only)
            return self._run_plan(sha, runnable, read_only, args[2:])
        if name in (b"EVALSHA", b"EVALSHA_RO") and len(args) > 1:
            known_script = self._scripts.runnable(args[1], read_only=read_only)
            if known_script is not None:
                sha = args[1].decode("ascii", "replace").lower()
                return self._run_plan(sha, known_script, read_only, args[2:])
            # Not through this emulator: NOSCRIPT, as a fresh Upstash database answers, so the
            # client sends the text (a real Redis shared with other clients may hold the
            # script, but running it unwrapped would bill its calls wrongly). Asking for a
            # SHA no script has keeps Redis's own reply, in transactions too.
            return [b"EVALSHA", _NO_SUCH_SHA, *args[2:]], None
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
        if name in (b"FUNCTION", b"FCALL", b"FCALL_RO"):
            return self.functions.translate(args)
        return dialect.translate(args, self)

    def _run_plan(self, sha: str, runnable: bytes, read_only: bool, rest: Sequence[bytes]) -> Plan:
        """EVAL (EVAL_RO on redis-server, which enforces it) of the wrapped text."""
        native = self.kind == "redis" and read_only
        return [b"EVAL_RO" if native else b"EVAL", runnable, *rest], self._script_reply(
            sha, runnable
        )

    def script_fix(self, sha: str, runnable: bytes) -> Fix:
        """How the reply of a wrapped script is read back (see ``_script_reply``)."""
        return self._script_reply(sha, runnable)

    def _script_reply(self, sha: str, runnable: bytes) -> Fix:
        """The script's own reply (on redis-server out of {calls, result}). An error passes
        as it is, except that it names the script by the SHA1 the client knows."""
        wrapped = self.kind == "redis"

        def fix(reply: Reply) -> tuple[Reply, int]:
            if isinstance(reply, ErrorReply):
                wrapper = hashlib.sha1(runnable).hexdigest()  # noqa: S324 - Redis's script name
                return ErrorReply(reply.message.replace(wrapper, sha)), 0
            if wrapped and isinstance(reply, list) and reply and isinstance(reply[0], int):
                return (reply[1] if len(reply) == 2 else None), reply[0]
            return reply, 0

        return fix

    # -- execution -----------------------------------------------------------------------

    def run(self, commands: Sequence[Command], budget: ReplyBudget | None = None) -> Outcome:
        """Run commands in order (not atomically); each reply or ErrorReply in its slot."""
        budget = budget or ReplyBudget(1 << 62)
        plans = [self._translate(args) for args in commands]
        counted = self._counted_calls()
        if self.kind == "fakeredis":
            replies = [self._admit(plan, self._run_in_process(plan[0]), budget) for plan in plans]
            return self._outcome(replies, counted)
        with self._connection() as conn, self._guard(plans):
            conn.send_packed_command(conn.pack_commands([args for args, _ in plans]))
            replies = self._read_all(conn, plans, budget)
        return self._outcome(replies, counted)

    def _counted_calls(self) -> int:
        return int(self._runtime.counter.calls) if self._runtime is not None else 0

    def _outcome(self, replies: list[tuple[Reply, int]], counted_before: int) -> Outcome:
        calls = sum(inner for _, inner in replies)
        if self._runtime is not None:
            calls += int(self._runtime.counter.calls) - counted_before
        return Outcome([reply for reply, _ in replies], calls)

    @staticmethod
    def _admit(plan: Plan, reply: Reply, budget: ReplyBudget) -> tuple[Reply, int]:
        _, fix = plan
        inner = 0
        if fix is not None:
            reply, inner = fix(reply)
        return budget.admit(reply), inner

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

    def transaction(
        self, commands: Sequence[Command], budget: ReplyBudget | None = None
    ) -> Outcome:
        """Run commands in MULTI/EXEC; raises TransactionDiscarded when Redis aborts it."""
        budget = budget or ReplyBudget(1 << 62)
        plans = [self._translate(args) for args in commands]
        counted = self._counted_calls()
        try:
            with self._connection() as conn, self._guard(plans):
                packed = [(b"MULTI",), *[args for args, _ in plans], (b"EXEC",)]
                conn.send_packed_command(conn.pack_commands(packed))
                replies = [self._read(conn) for _ in packed]
        except RedisError:
            raise
        except RecursionError:
            raise TransactionDiscarded(TOO_DEEP) from None
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
        admitted = [self._admit(plan, r, budget) for plan, r in zip(plans, result, strict=True)]
        return self._outcome(admitted, counted)

    def flush(self) -> None:
        """Empty the database this emulator serves (other databases and scripts stay)."""
        self.run([(b"FLUSHDB",)])

    def pubsub(self) -> Any:
        """A redis-py PubSub on this backend (for the SSE endpoints)."""
        listeners: Any = self._listeners  # typed in some redis-py releases, not in others
        return listeners.pubsub(ignore_subscribe_messages=False)

    def _read_all(
        self, conn: Any, plans: list[Plan], budget: ReplyBudget
    ) -> list[tuple[Reply, int]]:
        """A reply per plan, in order, each admitted as it is read. redis-py parses nested
        replies recursively, so one nested thousands deep (a script can build it) cannot be
        read; it and the replies behind it on that connection become errors and the
        connection is dropped."""
        out: list[tuple[Reply, int]] = []
        for plan in plans:
            try:
                out.append(self._admit(plan, self._read(conn), budget))
            except RecursionError:
                conn.disconnect()
                out.append((ErrorReply(TOO_DEEP), 0))
                lost = ErrorReply("ERR reply lost: an earlier reply in this batch was too deep")
                out.extend((lost, 0) for _ in range(len(plans) - len(out)))
                break
        return out

    @staticmethod
    def _read(conn: Any) -> Reply:
        try:
            return plain(conn.read_response(disable_decoding=True))
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
