"""The cache's operations, written once as generators for the sync and async clients.

Each function here validates its input before anything is sent (keys over 32 KB, values
over the configured maximum), yields the commands it needs (see :mod:`continuum.cache.drive`) and
turns the replies into Python values. The clients in :mod:`continuum.cache.client` only choose where
the commands run.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

from continuum.cache.drive import Batch, Call, Operation, Pause, Replies
from continuum.cache.guard import check_pattern, check_prefix, scope_of
from continuum.codec import Codec
from continuum.errors import (
    CacheTimeout,
    CommandError,
    KeyTooLarge,
    ServerError,
    ValidationError,
    ValueTooLarge,
)
from continuum.namespace import DEFAULT_LAYER, LayerSpec
from continuum.rest import Command, Reply

__all__ = ["MAX_KEY_BYTES", "Operations", "check_key", "escape_glob", "ttl_args"]

#: Upstash refuses keys over 32 KB; we refuse them before sending.
MAX_KEY_BYTES = 32 * 1024
_GLOB_SPECIALS = frozenset("*?[]\\")
_OK = ("OK", b"OK")


def check_key(key: object) -> str:
    if type(key) is str and key.isascii() and len(key) <= MAX_KEY_BYTES:
        return key  # ASCII: one byte per character, and no lone surrogate to refuse
    if not isinstance(key, str):
        raise ValidationError(f"cache keys are str, got {type(key).__name__}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError("keys must be valid Unicode (no lone surrogates)") from None
    if size > MAX_KEY_BYTES:
        raise KeyTooLarge(f"key of {size} bytes is over the 32 KB limit")
    return key


def escape_glob(text: str) -> str:
    """Escape Redis glob characters so user input matches only itself."""
    return "".join("\\" + c if c in _GLOB_SPECIALS else c for c in text)


def ttl_args(ttl: float | None) -> list[str | int]:
    """``EX``/``PX`` arguments for a TTL in seconds (None: no expiry)."""
    if ttl is None:
        return []
    if type(ttl) is int and ttl > 0:
        return ["EX", ttl]
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
        raise ValidationError(f"ttl must be a number of seconds, got {ttl!r}")
    if ttl <= 0:
        raise ValidationError(f"ttl must be positive, got {ttl!r} (use None for no expiry)")
    if isinstance(ttl, int) or float(ttl).is_integer():
        return ["EX", int(ttl)]
    return ["PX", max(1, round(ttl * 1000))]


def _one(replies: Replies) -> Reply:
    """The single reply of a one-command batch; a command error is raised."""
    reply = replies[0]
    if isinstance(reply, CommandError):
        raise reply
    return reply


def _int(reply: Reply) -> int:
    if isinstance(reply, int):
        return reply
    if isinstance(reply, bytes | str):
        try:
            return int(reply)
        except ValueError:
            pass
    raise ServerError(f"expected an integer reply, got {type(reply).__name__}")


def _unlink_commands(keys: list[Reply]) -> list[Command]:
    """UNLINK for a page of scanned keys: one command for the text keys, and one per key
    that is not UTF-8 (written by another client), since REST carries only one binary
    argument per request (the raw body)."""
    text: list[str | bytes] = []
    binary: list[Command] = []
    for key in keys:
        if isinstance(key, bytes):
            try:
                key.decode("utf-8")
            except UnicodeDecodeError:
                binary.append(("UNLINK", key))
                continue
            text.append(key)
        else:
            text.append(str(key))
    return ([("UNLINK", *text)] if text else []) + binary


def _timed(compute: Callable[[], Any], observe: Callable[[float], None] | None) -> Operation[Any]:
    """Call ``compute`` (awaited by the async driver), telling ``observe`` how long it took."""
    started = time.perf_counter()
    try:
        return (yield Call(compute))
    finally:
        if observe is not None:
            observe(time.perf_counter() - started)


class Operations:
    """Operations bound to one codec and one value-size limit."""

    def __init__(self, codec: Codec, *, max_value_size: int) -> None:
        self.codec = codec
        self.max_value_size = max_value_size

    # -- values ------------------------------------------------------------------------

    def encode(self, value: object) -> bytes:
        data = self.codec.encode(value)
        if len(data) > self.max_value_size:
            raise ValueTooLarge(
                f"encoded value is {len(data)} bytes, over the {self.max_value_size}-byte limit"
            )
        return data

    def decode(self, reply: Reply) -> object:
        if type(reply) is bytes:
            return self.codec.decode(reply)
        if reply is None:
            return None
        if isinstance(reply, str):
            reply = reply.encode("utf-8")
        if not isinstance(reply, bytes):
            raise ServerError(f"expected a string value, got {type(reply).__name__}")
        return self.codec.decode(reply)

    # -- single-key operations ---------------------------------------------------------

    # ``get``/``set`` are also offered as their one batch and what makes the result of its
    # replies: a client runs that batch as a one-step operation (see continuum.sansio.run),
    # the cheapest form for the commonest calls.

    def get_batch(self, key: str) -> Batch:
        return Batch([("GET", check_key(key))], False)

    def read(self, replies: Replies) -> object:
        """The value a GET batch answered."""
        reply = replies[0]
        if type(reply) is bytes:  # a stored value: two calls fewer than the general path
            return self.codec.decode(reply)
        return self.decode(_one(replies))

    def get(self, key: str) -> Operation[object]:
        return self.read((yield self.get_batch(key)))

    def set_command(
        self, key: str, value: object, ttl: float | None, *, nx: bool = False, xx: bool = False
    ) -> Command:
        if nx and xx:
            raise ValidationError("nx and xx are mutually exclusive")
        command: list[str | bytes | int] = ["SET", check_key(key), self.encode(value)]
        command += ttl_args(ttl)
        if nx:
            command.append("NX")
        if xx:
            command.append("XX")
        return command

    def set_batch(self, key: str, value: object, ttl: float | None) -> Batch:
        return self.encoded_set_batch(check_key(key), self.encode(value), ttl)

    @staticmethod
    def encoded_set_batch(key: str, data: bytes, ttl: float | None) -> Batch:
        """``set_batch`` for a key already checked and a value already encoded."""
        return Batch([["SET", key, data, *ttl_args(ttl)]], True, touches=[key])

    @staticmethod
    def stored(replies: Replies) -> bool:
        """Whether a SET batch stored its value (False: NX/XX refused it)."""
        return _one(replies) in _OK

    def set(
        self, key: str, value: object, ttl: float | None, *, nx: bool = False, xx: bool = False
    ) -> Operation[bool]:
        command = self.set_command(key, value, ttl, nx=nx, xx=xx)
        return self.stored((yield Batch([command], write=True, touches=[key])))

    def delete(self, keys: tuple[str, ...]) -> Operation[int]:
        if not keys:
            return 0
        checked = [check_key(k) for k in keys]
        replies = yield Batch([("DEL", *checked)], write=True, touches=checked)
        return _int(_one(replies))

    def exists(self, keys: tuple[str, ...]) -> Operation[int]:
        checked = [check_key(k) for k in keys]
        if not checked:
            raise ValidationError("exists() needs at least one key")
        replies = yield Batch([("EXISTS", *checked)], write=False)
        return _int(_one(replies))

    def expire(self, key: str, ttl: float) -> Operation[bool]:
        args = ttl_args(ttl)
        command = ("EXPIRE" if args[0] == "EX" else "PEXPIRE", check_key(key), args[1])
        replies = yield Batch([command], write=True, touches=[key])
        return _int(_one(replies)) == 1

    def ttl(self, key: str) -> Operation[int]:
        replies = yield Batch([("TTL", check_key(key))], write=False)
        return _int(_one(replies))

    def increment(self, key: str, amount: int | float) -> Operation[int | float]:
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise ValidationError(f"amount must be a number, got {amount!r}")
        if isinstance(amount, int):
            replies = yield Batch([("INCRBY", check_key(key), amount)], write=True, touches=[key])
            return _int(_one(replies))
        if not math.isfinite(amount):
            raise ValidationError("amount must be finite")
        command = ("INCRBYFLOAT", check_key(key), repr(amount))
        replies = yield Batch([command], write=True, touches=[key])
        reply = _one(replies)
        if not isinstance(reply, bytes | str):
            raise ServerError("INCRBYFLOAT answered a non-string")
        return float(reply)

    def publish(self, channel: str, message: object) -> Operation[int]:
        if isinstance(message, str | bytes):
            payload: str | bytes = message
        else:
            payload = self.codec.encode(message)
        replies = yield Batch([("PUBLISH", check_key(channel), payload)], write=True, touches=[])
        return _int(_one(replies))

    def ping(self) -> Operation[bool]:
        replies = yield Batch([("PING",)], write=False)
        return _one(replies) in ("PONG", b"PONG")

    def dbsize(self) -> Operation[int]:
        replies = yield Batch([("DBSIZE",)], write=False)
        return _int(_one(replies))

    def flush(self) -> Operation[bool]:
        replies = yield Batch([("FLUSHDB",)], write=True, touches=None)
        return _one(replies) in _OK

    # -- many keys ---------------------------------------------------------------------

    def delete_pattern(
        self, pattern: str, *, allow_all: object, count: int, layer: LayerSpec = DEFAULT_LAYER
    ) -> Operation[int]:
        """Delete ``layer``'s keys matching ``pattern`` (relative to the layer's prefix):
        SCAN MATCH/COUNT, UNLINK each page: bounded work per command, never KEYS.

        Every deletion by pattern or prefix comes here, so the one rule of
        :mod:`continuum.cache.guard` is checked once, on the pattern as the caller gave it.
        A page's UNLINK travels with the next SCAN (one round trip per page, not two);
        the count is what UNLINK reports, so keys seen twice or gone meanwhile count once.
        """
        how = "pass allow_all=True or call clear()" if layer.prefix else "pass allow_all=True"
        check_pattern(pattern, allow_all=allow_all, scope=scope_of(layer), how=how)
        pattern = check_key(escape_glob(layer.prefix) + pattern)
        deleted = 0
        cursor: Reply = "0"
        unlinks: list[Command] = []
        names: list[str] = []
        while True:
            scan = ("SCAN", cursor if isinstance(cursor, str | bytes) else str(cursor),
                    "MATCH", pattern, "COUNT", count)  # fmt: skip
            replies = yield Batch([*unlinks, scan], write=bool(unlinks), touches=names)
            deleted += sum(_int(_one([reply])) for reply in replies[:-1])
            page = _one(replies[-1:])
            if not isinstance(page, list) or len(page) != 2 or not isinstance(page[1], list):
                raise ServerError("SCAN answered an unexpected shape")
            cursor, keys = page[0], page[1]
            assert isinstance(keys, list)
            names = [k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else str(k)
                     for k in keys]  # fmt: skip
            unlinks = _unlink_commands(keys) if keys else []
            if cursor in ("0", b"0", 0):
                if unlinks:
                    replies = yield Batch(unlinks, write=True, touches=names)
                    deleted += sum(_int(_one([reply])) for reply in replies)
                return deleted

    def delete_prefix(
        self, prefix: str, *, count: int, layer: LayerSpec = DEFAULT_LAYER
    ) -> Operation[int]:
        """Delete ``layer``'s keys starting with ``prefix``, taken literally; never empty."""
        how = "call clear()" if layer.prefix else "use delete_pattern('*', allow_all=True)"
        check_prefix(prefix, scope=scope_of(layer), how=how)
        pattern = escape_glob(prefix) + "*"
        return (yield from self.delete_pattern(pattern, allow_all=False, count=count, layer=layer))

    # -- read-through with stampede protection ------------------------------------------

    def get_or_set(
        self,
        key: str,
        compute: Callable[[], Any],
        ttl: float | None,
        *,
        expected_compute: float,
        lock_timeout: float,
        beta: float = 1.0,
        observe: Callable[[float], None] | None = None,
    ) -> Operation[Any]:
        """Read ``key``; on a miss one caller computes while the others wait for its value.

        Single flight: the caller that wins ``SET <key>:lock NX PX`` computes; the others
        poll for the value (bounded by ``lock_timeout``, then compute themselves). Early
        refresh (XFetch): a hit is refreshed ahead of expiry with a probability that grows
        as the remaining TTL approaches ``expected_compute * beta``, so a hot key is
        recomputed by one caller before it expires instead of by all callers after.
        ``observe``, if given, is told how many seconds each computation took (awaiting
        it included), so the caller can predict the next one.
        """
        check_key(key)
        ttl_args(ttl)  # validate now, not after computing
        replies = yield Batch([("GET", key), ("PTTL", key)], write=False)
        raw, pttl = _one(replies), replies[1]
        stale: tuple[object] | None = None
        if raw is not None:
            value = self.decode(raw)
            left = pttl / 1000.0 if isinstance(pttl, int) and pttl > 0 else math.inf
            if (
                left == math.inf
                or -expected_compute * beta * math.log(random.random() or 1e-12) < left
            ):
                return value
            stale = (value,)
        lock_key = f"{key}:lock"
        owner = secrets.token_hex(8)
        lock_ms = max(1, round(lock_timeout * 1000))
        # Read the key again with the lock attempt: a holder may have stored the value
        # and released the lock between our first read and now.
        acquire = [("SET", lock_key, owner, "NX", "PX", lock_ms), ("GET", key)]
        replies = yield Batch(acquire, write=True)
        won, latest = _one(replies), replies[1]
        if stale is None and latest is not None and not isinstance(latest, CommandError):
            if won is not None:
                yield Batch([("DEL", lock_key)], write=True)
            return self.decode(latest)
        if won is None:
            if stale is not None:
                return stale[0]  # someone else is refreshing; the current value is fine
            found = yield from self._await_value(key, lock_timeout)
            if found is not None:
                return found[0]
        try:
            value = yield from _timed(compute, observe)
        except Exception:
            if won is not None:
                yield Batch([("DEL", lock_key)], write=True)
            raise
        store: list[Command] = [self.set_command(key, value, ttl)]
        if won is not None:
            store.append(("DEL", lock_key))
        replies = yield Batch(store, write=True, touches=[key])
        _one(replies)
        return value

    def _await_value(self, key: str, limit: float) -> Operation[tuple[object] | None]:
        """Poll for the lock holder's value with growing pauses, at most ``limit`` seconds."""
        waited, step = 0.0, 0.02
        started = time.monotonic()
        while waited < limit:
            try:
                yield Pause(step)
            except CacheTimeout:
                return None
            reply = _one((yield Batch([("GET", key)], write=False, fresh=True)))
            if reply is not None:
                return (self.decode(reply),)
            step = min(step * 2, 0.25)
            waited = time.monotonic() - started
        return None
