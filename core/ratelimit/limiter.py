"""``RateLimiter`` and ``AsyncRateLimiter``: one script run per check, written once.

Each public method is written once (:class:`~continuum.sansio.twin`) as a sans-I/O
operation: a generator that runs one script through the cache, as a
:class:`~continuum.sansio.Call` step the sync driver calls and the async one awaits, and
receives its reply (or has the backend's exception thrown into it), then returns the
answer. So no algorithm, policy or parsing is written twice, and
``UpstashCache.run_script`` (EVAL on a script's first use per database, EVALSHA after
it, no fallback store), a bare
executor (``execute``) and a bare ``LocalCache`` (the Python twins) can all serve it.

    limiter = RateLimiter(cache)                       # exact sliding log, fail-open
    result = limiter.limit(user_id, limit=100, window_seconds=60)
    if not result.allowed:
        return 429, result.headers()

Scripts are writes that must not run twice, so they are never retried once they may have
reached the server; ``EVAL`` follows ``EVALSHA`` only on NOSCRIPT, when nothing ran.
When the backend cannot answer, the outage policy decides: fail-open admits (reason
``unavailable``), fail-closed refuses; no exception escapes a check.
"""

from __future__ import annotations

import inspect
import logging
import math
import secrets
from collections.abc import Callable, Generator
from functools import partial
from typing import Any, TypeVar, cast

from continuum.errors import (
    CacheUnavailable,
    CommandError,
    NoScriptError,
    ServerError,
    ValidationError,
)
from continuum.gate import REFUSED, Failed, Join
from continuum.local import LocalCache, Reply
from continuum.ratelimit.algorithms import ALGORITHMS, RESET, Algorithm, LimiterScript
from continuum.ratelimit.blocked import BlockedCache, blocked_identifiers
from continuum.ratelimit.keys import DEFAULT_PREFIX, Identifier, check_prefix, limiter_key
from continuum.ratelimit.result import RateLimitResult, Reason
from continuum.rest import Command, Script
from continuum.sansio import Awaiting, Blocking, Call, Plan, arun, run, twin
from continuum.scope import Meter

__all__ = ["AsyncRateLimiter", "RateLimiter", "ScriptCall"]

log = logging.getLogger("continuum.ratelimit")

T = TypeVar("T")

MAX_WINDOW_SECONDS = 10 * 366 * 86400  # keeps every script's microsecond arithmetic exact
MAX_LIMIT = 1_000_000_000
MAX_LOG_COST = 100_000  # the sliding log stores one member per unit of cost


class ScriptCall:
    """Run ``script`` with ``keys`` and ``args``: the only thing an operation needs.
    (Not a dataclass, to keep cold starts short: see :class:`continuum.sansio.Pause`.)"""

    __slots__ = ("args", "inner_calls", "keys", "script")

    def __init__(
        self,
        script: Script,
        keys: list[str],
        args: list[str],
        inner_calls: Callable[[Reply], int],  # the redis.calls the reply says were made
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.inner_calls = inner_calls


Operation = Generator[Call, Any, T]


class _Limiter:
    """Validation, keys, operations and the outage policy shared by both limiters."""

    def __init__(
        self,
        cache: object,
        *,
        algorithm: Algorithm | str = Algorithm.SLIDING_LOG,
        fail_open: bool = True,
        prefix: str = DEFAULT_PREFIX,
        limit: int = 100,
        blocked: BlockedCache | None = None,
    ) -> None:
        try:
            self.algorithm = Algorithm(algorithm)
        except ValueError:
            choices = ", ".join(a.value for a in Algorithm)
            raise ValidationError(
                f"unknown rate-limit algorithm {algorithm!r}; choose one of: {choices}"
            ) from None
        prefix = check_prefix(prefix)
        self._check_flavour(cache)
        self.cache = cache
        self.fail_open = bool(fail_open)
        self.prefix = prefix
        self.default_limit = _check_limit(limit)
        self._algorithm: LimiterScript = ALGORITHMS[self.algorithm]
        self._blocked = blocked_identifiers if blocked is None else blocked
        self._namespace = _namespace(cache)

    def __repr__(self) -> str:
        policy = "open" if self.fail_open else "closed"
        return f"{type(self).__name__}(algorithm={self.algorithm.value!r}, fail_{policy})"

    def _check_flavour(self, cache: object) -> None:
        """Refuse a sync limiter over an async cache and the reverse.

        The mismatch would otherwise surface only at the first check, as a garbled reply
        that the outage policy then answers: a fail-open limiter admitting everything.
        """
        if isinstance(cache, LocalCache):
            return  # runs the twins in-process: fine for both
        runner = getattr(cache, "run_script", None) or getattr(cache, "execute", None)
        if runner is None:
            raise ValidationError(f"{type(cache).__name__} can run neither scripts nor commands")
        awaiting = isinstance(self, Awaiting)
        if inspect.iscoroutinefunction(runner) != awaiting:
            wanted = "AsyncRateLimiter" if not awaiting else "RateLimiter"
            raise ValidationError(
                f"{type(cache).__name__} is {'async' if not awaiting else 'sync'}: "
                f"use {wanted} with it"
            )

    # -- the public methods ------------------------------------------------------------------

    @twin
    def limit(
        self,
        identifier: Identifier,
        *,
        limit: int | None = None,
        window_seconds: float = 60,
        cost: int = 1,
    ) -> Plan[None, RateLimitResult]:
        """Count a request of weight ``cost`` and say whether it is admitted.

        At most ``limit`` units per ``window_seconds`` (the limiter's default limit when
        None). ``cost=0`` counts nothing and is always admitted: a peek at ``remaining``.
        Never raises for an outage: the limiter's policy answers, reason ``unavailable``.
        Raises ``ValidationError`` for bad arguments (a cost over the limit is one: no
        window could ever admit it).
        """
        return Plan(self._limit_op(identifier, limit, window_seconds, cost), None)

    @twin
    def check_rate_limit(
        self, identifier: Identifier, window_seconds: float = 60, max_requests: int | None = None
    ) -> Plan[None, bool]:
        """True when the request is admitted (the seed's API).

        ``max_requests`` defaults to the limiter's ``limit`` (100 unless configured).
        """
        return Plan(self._limit_op(identifier, max_requests, window_seconds, 1), None, _allowed)

    @twin
    def get_usage(
        self, identifier: Identifier, window_seconds: float = 60, max_requests: int | None = None
    ) -> Plan[None, dict[str, Any]]:
        """``current``, ``limit``, ``remaining`` and ``reset`` (epoch s), without counting."""
        return Plan(self._usage_op(identifier, window_seconds, max_requests), None)

    @twin
    def reset(self, identifier: Identifier, window_seconds: float = 60) -> Plan[None, bool]:
        """Forget the identifier's usage; True when there was some. Raises when unavailable."""
        return Plan(self._reset_op(identifier, window_seconds), None)

    @twin
    def _limit_joined(
        self,
        identifier: Identifier,
        plan: Plan[Any, Any],
        *,
        limit: int | None = None,
        window_seconds: float = 60,
        cost: int = 1,
    ) -> Plan[None, tuple[RateLimitResult, Any]]:
        """``limit``, and the cache ``plan`` only when admitted, in one round trip.

        The plan's result comes back as ``REFUSED`` when the check refused (nothing of
        it ran, or its read was dropped), or as ``Failed`` when it raised. Over a cache
        that cannot join them (local mode, a bare store) the check runs first, then the
        plan. See :mod:`continuum.cache.joined`.
        """
        return Plan(self._joined_op(identifier, plan, limit, window_seconds, cost), None)

    # -- operations ------------------------------------------------------------------------

    def _script(self, call: ScriptCall) -> Operation[Reply]:
        """Run one script on the cache: ``run_script`` (EVAL or EVALSHA), or the
        same over ``execute``, or the Python twin on a bare ``LocalCache``. Each cache call
        is a :class:`~continuum.sansio.Call` step, awaited by the async driver."""
        cache = self.cache
        if isinstance(cache, LocalCache):
            return _on_local(cache, call)
        runner = getattr(cache, "run_script", None)
        if runner is not None:
            reply = cast(Reply, (yield Call(partial(runner, call.script, call.keys, call.args))))
        else:
            execute = getattr(cache, "execute", None)
            if execute is None:
                raise ValidationError(
                    f"{type(cache).__name__} can run neither scripts nor commands"
                )
            replies = yield Call(partial(execute, [_evalsha(call)], write=True))
            if _is_noscript(replies[0]):
                replies = yield Call(partial(execute, [_eval(call)], write=True))
            reply = _unwrap(replies[0])
        _bill_script_calls(cache, call, reply)
        return reply

    def _limit_op(
        self, identifier: Identifier, limit: int | None, window_seconds: float, cost: int
    ) -> Operation[RateLimitResult]:
        limit, window_us, cost, key, memo = self._check(identifier, limit, window_seconds, cost)
        cached = self._blocked.answer(memo, limit, cost)
        if cached is not None:
            return cached
        args = self._args(window_us, limit, cost)
        sent = self._blocked.now()
        try:
            call = ScriptCall(self._algorithm.script, [key], args, self._algorithm.inner_calls)
            result = _parse((yield from self._script(call)), limit)
        except CacheUnavailable as exc:
            return self._outage(limit, exc)
        self._blocked.remember(memo, limit, cost, result, sent=sent)
        return result

    def _joined_op(
        self,
        identifier: Identifier,
        plan: Plan[Any, Any],
        limit: int | None,
        window_seconds: float,
        cost: int,
    ) -> Operation[tuple[RateLimitResult, Any]]:
        cache = self.cache
        joined = getattr(cache, "_joined", None)
        if joined is None or getattr(cache, "is_local", True):
            result = yield from self._limit_op(identifier, limit, window_seconds, cost)
            if not result.allowed:
                return result, REFUSED
            try:
                value = yield Call(partial(cast(Any, cache)._run, plan))
            except Exception as exc:
                return result, Failed(exc)
            return result, value
        limit, window_us, cost, key, memo = self._check(identifier, limit, window_seconds, cost)
        cached = self._blocked.answer(memo, limit, cost)
        if cached is not None:  # a known repeat offender: no round trip at all
            return cached, REFUSED
        call = ScriptCall(
            self._algorithm.script, [key], self._args(window_us, limit, cost),
            self._algorithm.inner_calls,
        )  # fmt: skip
        join = Join(
            _evalsha(call),
            partial(self._gate, call),
            _split,
            partial(self._admits, limit),
            partial(cast(Any, cache).run_script, call.script, call.keys, call.args),
        )
        sent = self._blocked.now()
        reply, value = yield Call(partial(joined, join, plan))
        if isinstance(reply, CacheUnavailable):
            return self._outage(limit, reply), value
        try:
            result = _parse(_unwrap(reply), limit)
        except CacheUnavailable as exc:
            return self._outage(limit, exc), value
        _bill_script_calls(cache, call, cast(Reply, reply))
        self._blocked.remember(memo, limit, cost, result, sent=sent)
        return result, value

    def _check(
        self, identifier: Identifier, limit: int | None, window_seconds: float, cost: int
    ) -> tuple[int, int, int, str, str]:
        """A check's validated limit, window (us) and cost, its key, and its memo name."""
        limit = self.default_limit if limit is None else _check_limit(limit)
        window_us = _window_us(window_seconds)
        cost = self._check_cost(cost, limit)
        key = limiter_key(self.prefix, self.algorithm.value, window_us, identifier)
        return limit, window_us, cost, key, self._namespace + key

    def _args(self, window_us: int, limit: int, cost: int) -> list[str]:
        args = [str(window_us), str(limit), str(cost)]
        if self.algorithm is Algorithm.SLIDING_LOG:
            args.append(secrets.token_hex(8))
        return args

    def _gate(self, call: ScriptCall, command: Command) -> Command | None:
        """The gated script carrying ``command``, or None for one it cannot carry."""
        gated = self._algorithm.gated
        name = command[0]
        if gated is None or not isinstance(name, str) or name.upper() not in _GATEABLE:
            return None
        keys = command[1:] if name.upper() in _MULTI_KEY else command[1:2]
        rest = list(command[1 + len(keys) :])
        if not keys or not all(isinstance(k, str) for k in keys):
            return None
        at = 0
        for i, arg in enumerate(rest):
            if isinstance(arg, bytes) and not _is_text(arg):
                if at:
                    return None  # the gate decodes one binary argument
                at = 2 + len(keys) + i  # its place in the command, counted from 1
                rest[i] = arg.hex()
        return [
            "EVALSHA", gated.sha1, 1 + len(keys), *call.keys, *cast(list[str], keys),
            *call.args, name, at, *rest,
        ]  # fmt: skip

    def _admits(self, limit: int, reply: object) -> bool:
        if isinstance(reply, CacheUnavailable):
            return self.fail_open
        if isinstance(reply, CommandError):
            return False
        try:
            return bool(_values(cast(Reply, reply))[0])
        except CacheUnavailable:
            return self.fail_open

    def _usage_op(
        self, identifier: Identifier, window_seconds: float, limit: int | None
    ) -> Operation[dict[str, Any]]:
        limit = self.default_limit if limit is None else _check_limit(limit)
        window_us = _window_us(window_seconds)
        key = limiter_key(self.prefix, self.algorithm.value, window_us, identifier)
        args = [str(window_us), str(limit), "0"]
        if self.algorithm is Algorithm.SLIDING_LOG:
            args.append("-")
        try:
            call = ScriptCall(self._algorithm.script, [key], args, self._algorithm.inner_calls)
            values = _values((yield from self._script(call)))
        except CacheUnavailable as exc:
            log.warning("rate-limit usage unavailable: %s", type(exc).__name__)
            return {
                "current": 0,
                "limit": limit,
                "remaining": limit,
                "reset": 0.0,
                "reason": Reason.UNAVAILABLE.value,
            }
        _, remaining, reset_us, _, _, used = values
        return {
            "current": used,
            "limit": limit,
            "remaining": remaining,
            "reset": reset_us / 1e6,
            "reason": Reason.ALLOWED.value,
        }

    def _reset_op(self, identifier: Identifier, window_seconds: float) -> Operation[bool]:
        window_us = _window_us(window_seconds)
        key = limiter_key(self.prefix, self.algorithm.value, window_us, identifier)
        self._blocked.forget(self._namespace + key)
        reply = yield from self._script(ScriptCall(RESET.script, [key], [], RESET.inner_calls))
        return bool(reply)

    # -- policy and validation --------------------------------------------------------------

    def _outage(self, limit: int, exc: BaseException) -> RateLimitResult:
        log.warning(
            "rate limiter backend unavailable (%s); failing %s",
            type(exc).__name__,
            "open" if self.fail_open else "closed",
        )
        if self.fail_open:
            return RateLimitResult(True, limit, limit, 0.0, 0.0, Reason.UNAVAILABLE.value)
        return RateLimitResult(False, limit, 0, 0.0, 1.0, Reason.UNAVAILABLE.value, 1.0)

    def _check_cost(self, cost: int, limit: int) -> int:
        """A weight from 0 (a peek: counts nothing, always fits) up to the limit."""
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ValidationError(f"cost must be a non-negative integer, not {cost!r}")
        if cost > limit:
            raise ValidationError(
                f"cost {cost} exceeds the limit {limit}: such a request could never be admitted"
            )
        if self.algorithm is Algorithm.SLIDING_LOG and cost > MAX_LOG_COST:
            raise ValidationError(
                f"cost {cost} is over {MAX_LOG_COST}, the most the sliding log stores per "
                "request; use algorithm='sliding_window' or 'token_bucket' for heavy weights"
            )
        return cost


class RateLimiter(_Limiter, Blocking):
    """Limits requests per identifier over an ``UpstashCache`` (or a ``LocalCache``).

    ``algorithm``: ``"sliding_log"`` (exact, default), ``"sliding_window"``,
    ``"fixed_window"`` or ``"token_bucket"``. ``fail_open``: admit (True, default) or
    refuse (False) when the backend is unavailable. ``prefix``: where the windows are kept
    (under ``continuum:``, out of every cache layer's reach, by default).
    ``limit``: the limit ``limit()`` and ``get_usage()`` use when none is given (100).
    """

    def _run(self, plan: Plan[None, T]) -> T:
        result = run(plan.op, _no_other_step)
        return result if plan.finish is None else plan.finish(result, None)


class AsyncRateLimiter(_Limiter, Awaiting):
    """The async twin of ``RateLimiter``, over an ``AsyncUpstashCache`` (or a ``LocalCache``)."""

    async def _run(self, plan: Plan[None, T]) -> T:
        result = await arun(plan.op, _no_other_step)
        return result if plan.finish is None else plan.finish(result, None)


def _no_other_step(step: object) -> Any:
    raise TypeError(f"a rate-limit operation yields only calls, not {step!r}")


def _allowed(result: RateLimitResult, _: object) -> bool:
    return result.allowed


# -- running a script on a bare store or executor -------------------------------------------


def _on_local(store: LocalCache, call: ScriptCall) -> Reply:
    keys = [k.encode("utf-8") for k in call.keys]
    args = [a.encode("utf-8") for a in call.args]
    return store.run_script(call.script.sha1, keys, args)


def _bill_script_calls(cache: object, call: ScriptCall, reply: Reply) -> None:
    """Add the redis.call()s a script made on Upstash to the meter: Upstash bills an EVAL
    as 1 plus each of them, and the meter could only count the EVAL it sent (each script
    says how many from its reply: ``LimiterScript.inner_calls``). Nothing is added in
    local mode, where nothing is billed."""
    meter = getattr(cache, "meter", None)
    if not getattr(cache, "is_local", True) and isinstance(meter, Meter):
        meter.add_script_calls(call.inner_calls(reply))


def _evalsha(call: ScriptCall) -> list[str | int]:
    return ["EVALSHA", call.script.sha1, len(call.keys), *call.keys, *call.args]


def _eval(call: ScriptCall) -> list[str | int]:
    return ["EVAL", call.script.source, len(call.keys), *call.keys, *call.args]


#: Writes the gated scripts can carry: their keys lead (all of their arguments for DEL and
#: UNLINK, the first otherwise), and none answers an array, so a gated reply (a list)
#: never passes for the command's own.
_GATEABLE = frozenset(
    {"SET", "DEL", "UNLINK", "EXPIRE", "PEXPIRE", "INCRBY", "INCRBYFLOAT", "PUBLISH"}
)
_MULTI_KEY = frozenset({"DEL", "UNLINK"})


def _is_text(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _split(reply: Reply) -> tuple[Reply, Reply | None]:
    """A gated script's reply: the check's own seven values, and the command's reply
    (None when it did not run)."""
    if isinstance(reply, list) and len(reply) == 8:
        return reply[:7], reply[7]
    return reply, None


def _is_noscript(reply: object) -> bool:
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, CommandError) and reply.message.startswith("NOSCRIPT")
    )


def _unwrap(reply: object) -> Reply:
    if isinstance(reply, Exception):
        raise reply
    return cast(Reply, reply)


# -- replies and arguments ---------------------------------------------------------------------


def _values(reply: Reply) -> tuple[int, int, int, int, int, int]:
    """The script's six integers (a seventh, its call count, is for billing), or
    ServerError: a garbled reply is an unavailable backend."""
    if (
        not isinstance(reply, list)
        or len(reply) not in (6, 7)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in reply)
    ):
        raise ServerError(f"the rate-limit script answered {str(reply)[:80]!r}")
    allowed, remaining, reset_us, retry_us, now_us, used = cast(list[int], reply)[:6]
    return allowed, remaining, reset_us, retry_us, now_us, used


def _parse(reply: Reply, limit: int) -> RateLimitResult:
    allowed, remaining, reset_us, retry_us, now_us, _ = _values(reply)
    retry_after = 0.0 if allowed else max(0.0, (retry_us - now_us) / 1e6)
    return RateLimitResult(
        allowed=bool(allowed),
        limit=limit,
        remaining=max(0, remaining),
        reset=reset_us / 1e6,
        retry_after=retry_after,
        reason=(Reason.ALLOWED if allowed else Reason.LIMITED).value,
        reset_after=max(0.0, (reset_us - now_us) / 1e6),
    )


def _namespace(cache: object) -> str:
    """What tells one database's blocked identifiers from another's in the shared memory.

    Limiters over the same Upstash database share entries (a refusal one limiter saw holds
    for the other); a local store is its own database.
    """
    config = getattr(cache, "config", None)
    if config is not None and not getattr(cache, "is_local", True):
        return f"{config.database('primary').url}|"
    return f"local:{id(cache):x}|"


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def _window_us(window_seconds: float) -> int:
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int | float):
        raise ValidationError(f"window_seconds must be a number, not {window_seconds!r}")
    if not math.isfinite(window_seconds) or not 0.001 <= window_seconds <= MAX_WINDOW_SECONDS:
        raise ValidationError(
            f"window_seconds must be between 0.001 and {MAX_WINDOW_SECONDS}, not {window_seconds!r}"
        )
    return round(window_seconds * 1_000_000)
