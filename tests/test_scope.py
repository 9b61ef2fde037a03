"""Request scopes: deadlines, meters, and isolation between concurrent requests."""

from __future__ import annotations

import asyncio
import math
import re
import threading

import pytest

from continuum.errors import ValidationError
from continuum.scope import (
    Deadline,
    Meter,
    RequestScope,
    current_scope,
    enter_scope,
    exit_scope,
)
from tests.tooling import ManualClock as Clock


def test_deadline_counts_down_and_never_goes_negative() -> None:
    clock = Clock(50.0)
    deadline = Deadline.after(2.0, clock=clock)
    assert deadline.remaining() == 2.0 and not deadline.expired
    assert deadline.cap(5.0) == 2.0 and deadline.cap(0.5) == 0.5
    clock.now += 2.5
    assert deadline.remaining() == 0.0 and deadline.expired
    assert deadline.cap(5.0) == 0.0


def test_deadline_from_platform_time_keeps_a_margin() -> None:
    deadline = Deadline.from_remaining_ms(3000, margin=0.5)
    assert 2.0 < deadline.remaining() <= 2.5
    assert Deadline.from_remaining_ms(100, margin=0.5).expired
    assert Deadline.never().remaining() == float("inf")
    with pytest.raises(ValidationError) as caught:
        Deadline.after(float("nan"))
    assert str(caught.value) == "a deadline needs a number of seconds, not nan"


def test_server_timing_is_valid_header_syntax() -> None:
    meter = Meter()
    meter.add_round_trip(commands=3, sent=120, received=40, seconds=0.0123)
    meter.add_round_trip(commands=2, seconds=0.001)
    header = meter.server_timing()
    assert header == 'cache;dur=13.3, cache-rt;desc="2", cache-cmd;desc="5"'
    metric = r'[!#$%&\'*+\-.^_`|~0-9A-Za-z]+(;(dur=[0-9.]+|desc="[^"]*"))*'
    assert re.fullmatch(rf"{metric}(, {metric})*", header)
    meter.fallback_ops += 4
    assert meter.server_timing().endswith('cache-fallback;desc="4"')


def test_meter_as_dict_has_per_layer_hits() -> None:
    meter = Meter()
    meter.hit("sessions")
    meter.hit("sessions")
    meter.miss("query")
    meter.miss()
    figures = meter.as_dict()
    assert figures["hits"] == 2 and figures["misses"] == 2
    assert figures["layer_hits"] == {"sessions": 2}
    assert figures["layer_misses"] == {"query": 1}


def test_scope_is_current_inside_and_restored_after() -> None:
    assert current_scope() is None
    with RequestScope() as outer:
        assert current_scope() is outer
        inner = RequestScope()
        token = enter_scope(inner)
        assert current_scope() is inner
        exit_scope(token)
        assert current_scope() is outer
    assert current_scope() is None


def test_fallback_store_is_per_scope_and_lazy() -> None:
    a, b = RequestScope(), RequestScope()
    assert a._local is None  # nothing allocated until the fallback is needed
    a.local.set("k", b"v")
    assert a.local.get("k") == b"v"
    assert b.local.get("k") is None


def test_budget_or_deadline_not_both() -> None:
    assert 0 < RequestScope(budget=1.0).deadline.remaining() <= 1.0
    with pytest.raises(ValidationError) as caught:
        RequestScope(budget=1.0, deadline=Deadline.after(1.0))
    assert str(caught.value) == "give a deadline or a budget, not both"


def test_a_deadline_in_seconds_is_taken_as_cache_request_takes_it() -> None:
    assert 0 < RequestScope(deadline=0.5).deadline.remaining() <= 0.5
    assert RequestScope(deadline=math.inf).deadline.remaining() == math.inf


@pytest.mark.parametrize("bad", ["1", None, True, float("nan"), [1]])
def test_a_deadline_that_is_not_a_number_is_refused_clearly(bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Deadline.after(bad)  # type: ignore[arg-type]
    assert str(caught.value) == f"a deadline needs a number of seconds, not {bad!r}"
    with pytest.raises(ValidationError) as caught:
        Deadline.from_remaining_ms(bad)  # type: ignore[arg-type]
    assert str(caught.value) == f"remaining_ms needs a number of milliseconds, not {bad!r}"
    if bad is not None:
        with pytest.raises(ValidationError) as caught:
            RequestScope(budget=bad)  # type: ignore[arg-type]
        assert str(caught.value) == f"a deadline needs a number of seconds, not {bad!r}"


async def test_concurrent_tasks_each_see_their_own_scope() -> None:
    seen: dict[int, RequestScope | None] = {}

    async def handle(n: int) -> None:
        async with RequestScope() as scope:
            await asyncio.sleep(0)
            seen[n] = current_scope()
            assert seen[n] is scope

    await asyncio.gather(*(handle(n) for n in range(10)))
    assert len({id(s) for s in seen.values()}) == 10
    assert current_scope() is None


def test_threads_do_not_share_scopes() -> None:
    seen: list[RequestScope | None] = []
    with RequestScope():
        thread = threading.Thread(target=lambda: seen.append(current_scope()))
        thread.start()
        thread.join()
    assert seen == [None]
