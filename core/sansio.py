"""Sync and async written once: logic as generators, two small drivers, twin methods.

Logic that needs I/O (send a request, sleep, read a chunk) is written once as a
generator: it yields a *step* saying what it needs and is sent the step's result, or has
the step's exception thrown into it (cancellation too) so it may recover or clean up.
:func:`run` carries the steps out with blocking calls, :func:`arun` awaiting them: they
do the two steps any logic may need (:class:`Pause`, :class:`Call`) themselves, and hand
every other step to the caller's handler, which knows its own I/O. Every decision
(retries, fallbacks, reconnects, outage policies) then lives in one place, and only the
lines that touch the network exist twice.

    def fetch(key):
        reply = yield Send(key)               # a step: what the logic needs
        return reply.upper()

    run(fetch("k"), send_blocking)            # the handler does the I/O
    await arun(fetch("k"), send_awaiting)

A public method of a sync class and of its async twin is written once with
:class:`twin`: it builds a :class:`Plan` (an operation, plus what the runner needs to
route and finish it), and the class's own ``_run(plan)`` carries the plan out (a method
that can often answer without any I/O adds a companion that does: :meth:`twin.at_once`). A class
that mixes in :class:`Blocking` gets a plain method returning the result; one that mixes
in :class:`Awaiting` gets a coroutine method. Both are ordinary functions installed on
the class when it is created, so calling one costs no more than a hand-written method.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from inspect import isawaitable
from types import GeneratorType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

__all__ = ["Awaiting", "Blocking", "Call", "Pause", "Plan", "arun", "resume", "run", "twin"]

T = TypeVar("T")
U = TypeVar("U")
R = TypeVar("R")
P = ParamSpec("P")


# The step and record classes on a handler's import path are plain slotted classes, not
# dataclasses: generating a dataclass's methods costs about 0.5 ms per class at import,
# which a cold start pays for every one of them (see bench_coldstart).


class Pause:
    """A step: wait this many seconds (a backoff; a lock holder may finish meanwhile)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Pause(seconds={self.seconds!r})"


class Call:
    """A step: call a user function (awaited by :func:`arun` if it returns an awaitable);
    its value is sent back."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return f"Call(fn={self.fn!r})"


def run(
    op: Generator[Any, Any, T],
    handle: Callable[[Any], Any],
    pause: Callable[[float], object] | None = None,
) -> T:
    """Run ``op`` to completion: :class:`Pause` (``pause``, by default ``time.sleep``)
    and :class:`Call` steps here, every other step with the blocking ``handle``.

    ``op`` may also be one step alone (typed as an operation of it): an operation whose
    result is the step's. A single cached read then costs no generator, no frame and no
    ``StopIteration``, a sixth of a fallback ``get`` while the circuit is open.
    """
    if pause is None:
        pause = time.sleep
    lone: Any = op
    if type(lone) is not GeneratorType:
        return run(_alone(lone), handle, pause) if type(lone) in _OWN else handle(lone)  # type: ignore[no-any-return]
    try:
        step = next(op)
        while True:
            try:
                kind = type(step)
                if kind is Pause:
                    result = pause(step.seconds)
                elif kind is Call:
                    result = step.fn()
                else:
                    result = handle(step)
            except BaseException as exc:  # handed to the logic: it may recover or clean up
                step = op.throw(exc)
            else:
                step = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def arun(
    op: Generator[Any, Any, T],
    handle: Callable[[Any], Awaitable[Any]],
    pause: Callable[[float], Awaitable[object]] | None = None,
) -> T:
    """Run ``op`` to completion, awaiting ``handle`` for its steps (and ``pause``, by
    default ``asyncio.sleep``, for its pauses); ``op`` may be one step alone, as for
    :func:`run`."""
    lone: Any = op
    if type(lone) is not GeneratorType:
        if type(lone) not in _OWN:
            return await handle(lone)  # type: ignore[no-any-return]
        op = _alone(lone)
    if pause is None:
        import asyncio  # only async code pays for importing asyncio

        pause = asyncio.sleep
    try:
        step = next(op)
        while True:
            try:
                if type(step) is Call:
                    result = step.fn()
                    if isawaitable(result):
                        result = await result
                elif type(step) is Pause:
                    result = await pause(step.seconds)
                else:
                    result = await handle(step)
            except BaseException as exc:
                step = op.throw(exc)
            else:
                step = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


#: The steps the drivers carry out themselves, whatever the handler.
_OWN = (Pause, Call)


def _alone(step: object) -> Generator[Any, Any, Any]:
    """A lone :class:`Pause` or :class:`Call` as the one-step operation it stands for."""
    return (yield step)


def resume(
    op: Generator[Any, Any, T],
    step: object = None,
    *,
    send: object = None,
    throw: BaseException | None = None,
) -> Generator[Any, Any, T]:
    """Drive an already started ``op`` on, as ``yield from`` would: from ``step`` (one it
    yielded that is still to be carried out), or else from the result ``send`` (or the
    error ``throw``) of the step it last yielded."""
    try:
        if step is None:
            step = op.throw(throw) if throw is not None else op.send(send)
        while True:
            try:
                result = yield step
            except BaseException as exc:
                step = op.throw(exc)
            else:
                step = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


class Plan(Generic[R, T]):
    """What a :class:`twin` method asks its class's runner to do.

    ``op`` is the operation (a generator of steps, or one step alone); ``route`` what the
    runner needs to carry its steps out (for the cache: the layer, hence the database and
    outage policy);
    ``finish``, if given, turns the operation's result into the method's, with the
    runner's per-call state (for the cache: where the call ran, for ``WriteResult``).
    """

    __slots__ = ("finish", "op", "route")

    @overload
    def __init__(self: Plan[R, T], op: Generator[Any, Any, T], route: R) -> None: ...
    @overload
    def __init__(
        self: Plan[R, T],
        op: Generator[Any, Any, U],
        route: R,
        finish: Callable[[U, Any], T],
    ) -> None: ...
    @overload
    def __init__(
        self: Plan[R, T], op: object, route: R, finish: Callable[[Any, Any], T]
    ) -> None: ...
    def __init__(
        self,
        op: Generator[Any, Any, Any] | object,
        route: R,
        finish: Callable[[Any, Any], T] | None = None,
    ) -> None:
        self.op: Any = op  # a generator, or one step alone
        self.route = route
        self.finish = finish


class Blocking:
    """Mixed into a sync class: each :class:`twin` method becomes a plain method."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install(cls, blocking=True)


class Awaiting:
    """Mixed into an async class: each :class:`twin` method becomes a coroutine method."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install(cls, blocking=False)


class twin(Generic[P, T]):  # lower case: a decorator, like property
    """A method written once for a sync class and its async twin.

    The decorated function takes the method's arguments and returns a :class:`Plan`;
    on a :class:`Blocking` class the method returns ``self._run(plan)``, on an
    :class:`Awaiting` class it returns ``await self._run(plan)``. Name, docstring and
    signature are the decorated function's.
    """

    def __init__(self, build: Callable[Concatenate[Any, P], Plan[Any, T]]) -> None:
        # What help() and inspect show for both methods: the plan's result, not the plan.
        returns = build.__annotations__.get("return")
        if isinstance(returns, str) and returns.endswith("]"):
            build.__annotations__["return"] = _last_argument(returns)
        self.build = build
        self.now: Callable[..., Any] | None = None
        self.__doc__ = build.__doc__

    def at_once(
        self, now: Callable[Concatenate[Any, P], Plan[Any, T] | T]
    ) -> Callable[Concatenate[Any, P], Plan[Any, T] | T]:
        """Decorator: a companion that answers without any I/O where it can.

        ``now`` takes the method's arguments and returns the method's result when it
        needs no I/O (a local store, a memo), else the plan ``build`` would make. Both
        methods call it instead of ``build``, the async one still as a coroutine; where
        the plan's machinery costs more than the answer (the cache's ``get``/``set`` in
        local mode or on an open circuit), that is most of a call. ``build`` alone still
        makes only the plan, for a caller that runs it itself (the reference API sends
        it with the key's rate limit, and must not have it answered first). ``now`` is
        named after the method, so a wrong argument is reported as the method's.
        """
        now.__name__ = self.build.__name__
        now.__qualname__ = self.build.__qualname__
        self.now = now
        return now

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> twin[P, T]: ...
    @overload
    def __get__(self, obj: Blocking, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Awaiting, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: object, owner: type[Any]) -> Any:
        if obj is None:
            return self
        raise TypeError(
            f"{type(obj).__name__} mixes in neither Blocking nor Awaiting, so it cannot "
            f"run {self.build.__name__}()"
        )

    def method(self, *, blocking: bool) -> Callable[..., Any]:
        """The plain (``blocking``) or coroutine method this twin stands for."""
        build = self.build
        first = self.now or build  # the companion answers, or hands back the plan
        if blocking:

            def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
                plan = first(self, *args, **kwargs)
                return self._run(plan) if type(plan) is Plan else plan

        else:

            async def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                plan = first(self, *args, **kwargs)
                return await self._run(plan) if type(plan) is Plan else plan

        return functools.update_wrapper(method, build)


def _install(cls: type, *, blocking: bool) -> None:
    """Give ``cls`` a real method for every twin it would otherwise inherit."""
    names = {n for klass in cls.__mro__ for n, v in vars(klass).items() if isinstance(v, twin)}
    for name in names:
        member = next(vars(k)[name] for k in cls.__mro__ if name in vars(k))
        if isinstance(member, twin):
            setattr(cls, name, member.method(blocking=blocking))


def _last_argument(annotation: str) -> str:
    """``"Plan[R, list[int]]"`` -> ``"list[int]"``: the last argument of a subscript."""
    depth, start = 0, annotation.index("[") + 1
    for i, char in enumerate(annotation[:-1]):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 1:
            start = i + 1
    return annotation[start:-1].strip()
