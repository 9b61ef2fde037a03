"""The sans-I/O drivers and twin methods every sync/async pair in the library is built on."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Generator
from typing import Any, cast

import pytest

from continuum.sansio import Awaiting, Blocking, Call, Pause, Plan, arun, run, twin


def _logic(log: list[str]) -> Generator[Any, Any, str]:
    """Asks for a step, recovers from its failure, pauses, calls back, cleans up."""
    try:
        first = yield "send:a"
        try:
            yield "send:boom"
        except LookupError as exc:
            log.append(f"recovered from {exc!r}")
        yield Pause(0.25)
        called = yield Call(lambda: "computed")
        return f"{first}+{called}"
    finally:
        log.append("cleaned up")


def _handle(step: str) -> str:
    if step == "send:boom":
        raise LookupError("no such key")
    return step.upper()


def test_run_hands_steps_to_the_handler_and_throws_its_errors_into_the_logic() -> None:
    log: list[str] = []
    paused: list[float] = []
    assert run(_logic(log), _handle, paused.append) == "SEND:A+computed"
    assert paused == [0.25]
    assert log == ["recovered from LookupError('no such key')", "cleaned up"]


def test_arun_awaits_the_handler_the_pause_and_an_awaitable_call() -> None:
    log: list[str] = []
    paused: list[float] = []

    async def handle(step: str) -> str:
        await asyncio.sleep(0)
        return _handle(step)

    async def pause(seconds: float) -> None:
        paused.append(seconds)

    def logic() -> Generator[Any, Any, tuple[str, str]]:
        result = yield from _logic(log)
        awaited = yield Call(lambda: asyncio.sleep(0, result="awaited"))
        return result, awaited

    assert asyncio.run(arun(logic(), handle, pause)) == ("SEND:A+computed", "awaited")
    assert paused == [0.25]
    assert log == ["recovered from LookupError('no such key')", "cleaned up"]


class Interrupt(BaseException):
    """Like KeyboardInterrupt: not an Exception."""


def test_an_interrupt_or_a_cancellation_is_thrown_into_the_logic_too() -> None:
    def stoppable() -> Generator[str, Any, str]:
        try:
            yield "wait"
        except (Interrupt, asyncio.CancelledError) as exc:
            return f"stopped by {type(exc).__name__}"
        return "not stopped"

    def interrupted(step: str) -> str:
        raise Interrupt

    async def cancelled(step: str) -> str:
        raise asyncio.CancelledError

    assert run(stoppable(), interrupted) == "stopped by Interrupt"
    assert asyncio.run(arun(stoppable(), cancelled)) == "stopped by CancelledError"


class _Shared:
    """Methods written once; ``_run`` says how a plan is carried out."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    @twin
    def fetch(self, key: str, *, twice: bool = False) -> Plan[None, str]:
        """Fetch ``key``."""
        return Plan(self._fetching(key), None, (lambda v, _: v * 2) if twice else None)

    def _fetching(self, key: str) -> Generator[str, str, str]:
        return (yield key)


class _Sync(_Shared, Blocking):
    def _run(self, plan: Plan[None, Any]) -> Any:
        value = run(plan.op, lambda step: f"<{step}>")
        return value if plan.finish is None else plan.finish(value, None)


class _Async(_Shared, Awaiting):
    async def _run(self, plan: Plan[None, Any]) -> Any:
        async def handle(step: str) -> str:
            return f"[{step}]"

        value = await arun(plan.op, handle)
        return value if plan.finish is None else plan.finish(value, None)


def test_a_twin_is_a_plain_method_on_a_blocking_class_and_a_coroutine_on_an_awaiting_one() -> None:
    assert _Sync().fetch("k") == "<k>"
    assert _Sync().fetch("k", twice=True) == "<k><k>"
    assert asyncio.run(_Async().fetch("k", twice=True)) == "[k][k]"
    assert not inspect.iscoroutinefunction(_Sync.fetch)
    assert inspect.iscoroutinefunction(_Async.fetch)
    for cls in (_Sync, _Async):
        assert (
            str(inspect.signature(cls.fetch))
            == "(self, key: 'str', *, twice: 'bool' = False) -> 'str'"
        )
        assert cls.fetch.__doc__ == "Fetch ``key``."


def test_a_subclass_keeps_its_own_override_of_a_twin() -> None:
    class Custom(_Sync):
        def fetch(self, key: str, *, twice: bool = False) -> str:
            return "mine"

    class Inheriting(_Sync):
        pass

    assert Custom().fetch("k") == "mine"
    assert Inheriting().fetch("k") == "<k>"


def test_a_class_that_is_neither_blocking_nor_awaiting_cannot_run_a_twin() -> None:
    with pytest.raises(TypeError) as caught:
        _Shared().fetch("k")
    assert str(caught.value) == (
        "_Shared mixes in neither Blocking nor Awaiting, so it cannot run fetch()"
    )


def test_a_lone_step_runs_as_the_one_step_operation_it_stands_for() -> None:
    # run/arun take one step in place of a generator (the cache's get and set do): the
    # result must be what a generator yielding that step and returning its result gives.
    def alone(step: object) -> Generator[Any, Any, Any]:
        return (yield step)

    async def ahandle(step: str) -> str:
        return _handle(step)

    async def apause(seconds: float) -> None:
        paused.append(seconds)

    steps: list[Any] = ["send:a", Pause(0.5), Call(lambda: "computed")]
    for step in steps:
        paused: list[float] = []
        results = [
            run(alone(step), _handle, paused.append),
            run(step, _handle, paused.append),
            asyncio.run(arun(alone(step), ahandle, apause)),
            asyncio.run(arun(step, ahandle, apause)),
        ]
        assert results == [results[0]] * 4
        assert paused == ([0.5] * 4 if isinstance(step, Pause) else [])
    for runner in (
        lambda: run(cast(Any, "send:boom"), _handle),
        lambda: asyncio.run(arun(cast(Any, "send:boom"), ahandle)),
    ):
        with pytest.raises(LookupError) as caught:
            runner()
        assert caught.value.args == ("no such key",)
