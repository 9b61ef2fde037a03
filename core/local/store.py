"""An in-memory Redis with Redis's TTL semantics: the request-scoped fallback and local mode.

When Upstash cannot answer, a best-effort layer keeps working on a ``LocalCache`` that lives
for one request (or, in local mode, for the process). It answers the same commands with the
same replies and error texts as Redis, in the representation every backend shares
(``Reply``: bulk strings are ``bytes``, the status ``OK`` is ``str``), so code above it never
knows which backend served it.

Expiry is lazy (a key past its deadline vanishes when touched, and listing commands sweep)
and the store is bounded: at ``max_keys`` expired keys go first, then the oldest key.
``get``/``set`` are fast paths for the cache's hot loop; everything else goes through
``execute``. Lua cannot run here, so ``EVAL``/``EVALSHA`` run a Python twin registered for
the script's SHA-1 with ``register_local_script``.

    >>> store = LocalCache()
    >>> store.execute([["SET", "k", "v", "EX", 60], ["GET", "k"], ["TTL", "k"]])
    ['OK', b'v', 60]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeAlias

from continuum.errors import CommandError, TransactionAborted, ValidationError
from continuum.local.commands import COMMANDS, MAX_EXPIRE_MS, Handler
from continuum.local.keyspace import Keyspace
from continuum.local.values import WRONGTYPE, Arg, Reply, to_arg

__all__ = ["Arg", "Command", "LocalCache", "Reply", "register_local_script"]

Command: TypeAlias = Sequence[Arg]
ScriptFn: TypeAlias = Callable[["LocalCache", list[bytes], list[bytes]], Reply]

_scripts: dict[str, ScriptFn] = {}


def register_local_script(source: str, fn: ScriptFn) -> None:
    """Run ``fn(cache, keys, args)`` wherever Redis would run the Lua ``source``."""
    _scripts[hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()] = fn


_MAX_EXPIRE_AMOUNT = MAX_EXPIRE_MS // 1000
_SURROGATES = "keys and arguments must be valid Unicode text (no lone surrogates)"


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(_SURROGATES) from None


class LocalCache(Keyspace):
    """Redis in a dict. Thread-safe; one per request scope, or one per process in local mode."""

    def __repr__(self) -> str:
        return f"LocalCache(keys={len(self._data)}, max_keys={self.max_keys})"

    # -- fast paths -------------------------------------------------------------------------

    def get(self, key: str | bytes) -> bytes | None:
        """The string at ``key``, or None; raises ``CommandError`` (WRONGTYPE) for others."""
        if type(key) is str:
            try:  # _utf8, inline: the fallback's every read passes here
                k = key.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError(_SURROGATES) from None
        else:
            k = _utf8(key) if isinstance(key, str) else key
        # Lock-free read: single dict lookups are atomic, and only expiry mutates.
        value = self._data.get(k)
        if value is None:
            return None
        exp = self._expires.get(k)
        if exp is not None and exp <= self._clock():
            with self._lock:
                self._live(k)  # re-checks under the lock, then drops the expired key
            return None
        if type(value) is bytes:
            return value
        raise CommandError(WRONGTYPE, command="get")

    def set(self, key: str | bytes, value: bytes, ttl: float | None = None) -> None:
        """SET with an optional TTL in seconds (None: no expiry, like a plain SET)."""
        k: bytes = _utf8(key) if isinstance(key, str) else key
        if type(value) is not bytes:
            value = to_arg(value)
        with self._lock:
            if k not in self._data:
                self._create(k, "string")
            else:
                self._types[k] = "string"
            self._data[k] = value
            if ttl is not None:
                self._expires[k] = self._clock() + ttl
            else:
                self._expires.pop(k, None)

    def delete(self, *keys: str | bytes) -> int:
        """DEL: how many of ``keys`` existed (expired keys don't count)."""
        with self._lock:
            return sum(self._drop(k) for k in map(to_arg, keys) if self._live(k))

    def exists(self, *keys: str | bytes) -> int:
        """EXISTS: how many of ``keys`` exist (a key named twice counts twice)."""
        with self._lock:
            return sum(1 for k in map(to_arg, keys) if self._live(k))

    def expire(self, key: str | bytes, ttl: float) -> bool:
        """Give an existing key a TTL in seconds; False when it does not exist."""
        with self._lock:
            k = to_arg(key)
            if not self._live(k):
                return False
            if ttl <= 0:
                self._drop(k)
            else:
                self._expires[k] = self._clock() + ttl
            return True

    def ttl(self, key: str | bytes) -> float:
        """Seconds left (fractional); -1 without expiry, -2 when missing, like TTL."""
        with self._lock:
            k = to_arg(key)
            if not self._live(k):
                return -2
            exp = self._expires.get(k)
            return -1 if exp is None else max(0.0, exp - self._clock())

    def flush(self) -> None:
        """FLUSHDB."""
        with self._lock:
            for k in list(self._data):
                self._drop(k)

    # -- the general path -------------------------------------------------------------------

    def execute(
        self, commands: Sequence[Command], *, write: bool = False, transaction: bool = False
    ) -> list[Reply | CommandError]:
        """Run each command; a failing command's ``CommandError`` fills its own slot.

        ``transaction=True`` behaves like MULTI/EXEC: an unknown command or a wrong number
        of arguments anywhere discards the whole batch (``TransactionAborted``), and the
        batch runs without interleaving with other threads. ``write`` is accepted for the
        executor contract; it only matters to retry policies over a network.
        """
        del write
        if len(commands) == 1:  # the request-scope fallback's usual batch: no lists, no zip
            command = commands[0]
            if len(command) == 2 and command[0] == "GET" and type(command[1]) is str:
                try:
                    return [self.get(command[1])]
                except CommandError as exc:
                    return [exc]
            if len(command) == 5 and command[0] == "SET":
                done = self._set_for(command)
                if done is not None:
                    return [done]
            one = _argv(command)
            entry = _check(one)
            if not isinstance(entry, CommandError):
                with self._lock:
                    return [self._run(one, entry)]
        parsed: list[list[bytes]] = []
        checked: list[tuple[str, Handler] | CommandError] = []
        for command in commands:
            argv = _argv(command)
            parsed.append(argv)
            checked.append(_check(argv))
        if transaction:
            for problem in checked:
                if isinstance(problem, CommandError):
                    raise TransactionAborted(
                        "EXECABORT Transaction discarded because of previous errors: "
                        + problem.message,
                        command=problem.command,
                    )
        replies: list[Reply | CommandError] = []
        with self._lock:
            for argv, entry in zip(parsed, checked, strict=True):
                replies.append(self._run(argv, entry))
        return replies

    def _set_for(self, command: Command) -> Reply:
        """``SET key value EX|PX n`` as the cache sends it, without parsing arguments back
        from bytes; None for any other shape (the general path answers those, errors too).
        The expiry is computed exactly as ``cmd_set`` does."""
        _, key, value, option, amount = command
        if type(key) is not str or type(value) is not bytes or type(amount) is not int:
            return None
        if option == "EX":
            ms = amount * 1000
        elif option == "PX":
            ms = amount
        else:
            return None
        if not 0 < amount <= _MAX_EXPIRE_AMOUNT:
            return None
        self._set_px(key, value, ms)
        return "OK"

    def _set_px(self, key: str, value: bytes, ms: int) -> None:
        """``SET key value PX ms`` for a caller that checked its arguments already: a
        ``str`` key, ``bytes`` to store, ``0 < ms <= MAX_EXPIRE_MS``. The cache's writes
        come here without a command to parse; the expiry is computed as ``cmd_set`` does."""
        try:
            k = key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(_SURROGATES) from None
        with self._lock:  # Keyspace.now_ms and _store, inline
            expiry = int(self._clock() * 1000) + ms
            if k in self._data:
                self._types[k] = "string"
            else:
                self._create(k, "string")
            self._data[k] = value
            self._expires[k] = expiry / 1000

    def _run(
        self, argv: list[bytes], entry: tuple[str, Handler] | CommandError
    ) -> Reply | CommandError:
        if isinstance(entry, CommandError):
            return entry
        name, handler = entry
        try:
            return handler(self, argv[1:])
        except CommandError as exc:
            if exc.command is None:
                exc.command = name
            return exc

    def run_script(self, sha: str, keys: list[bytes], args: list[bytes]) -> Reply:
        fn = _scripts.get(sha)
        if fn is None:
            raise CommandError(
                "ERR this Lua script has no Python twin for the local store "
                "(continuum.local.store.register_local_script)"
            )
        self._loaded.add(sha)
        try:
            return fn(self, keys, args)
        except CommandError:
            raise
        except Exception as exc:
            raise CommandError(
                f"ERR local twin of script {sha[:12]} failed: {type(exc).__name__}"
            ) from exc


def _argv(command: Command) -> list[bytes]:
    try:
        return [
            a if type(a) is bytes else a.encode("utf-8") if type(a) is str else to_arg(a)
            for a in command
        ]
    except UnicodeEncodeError:
        raise ValidationError(_SURROGATES) from None


# Command names as callers spell them (b"GET", b"get") to their resolved entry: skips the
# lower-casing and decoding on every command of the fallback's hot path.
_RESOLVED: dict[bytes, tuple[str, Handler, int]] = {}
_MAX_RESOLVED = 1024


def _check(argv: list[bytes]) -> tuple[str, Handler] | CommandError:
    """The command's name and handler, or the error that would abort a transaction before
    it runs: an unknown command or a wrong number of arguments."""
    if not argv:
        return CommandError("ERR empty command")
    resolved = _RESOLVED.get(argv[0])
    if resolved is None:
        name = argv[0].lower().decode("utf-8", "replace")
        entry = COMMANDS.get(name)
        if entry is None:
            return CommandError(f"ERR unknown command '{name}'", command=name)
        resolved = (name, *entry)
        if len(_RESOLVED) < _MAX_RESOLVED:  # names come from callers: keep the memo bounded
            _RESOLVED[argv[0]] = resolved
    name, handler, arity = resolved
    if (arity >= 0 and len(argv) != arity) or (arity < 0 and len(argv) < -arity):
        return CommandError(f"ERR wrong number of arguments for '{name}' command", command=name)
    return name, handler
