"""AsyncUpstashCache on every backend, and auto-pipelining over the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from continuum import AsyncUpstashCache, CacheBackend, CommandError, ValidationError
from continuum.scope import current_scope
from tests.cache.conftest import Backend

NOT_AN_INTEGER = "ERR value is not an integer or out of range"


async def test_async_round_trip_of_every_kind(acache: AsyncUpstashCache) -> None:
    assert await acache.set("d", {"a": [1, 2]})
    assert await acache.get("d") == {"a": [1, 2]}
    assert await acache.set("b", b"\xff\x00")
    assert await acache.get("b") == b"\xff\x00"
    assert await acache.exists("d")
    assert await acache.increment("n", 3) == 3
    assert 290 <= await acache.ttl("d") <= 300
    assert await acache.expire("d", 50)
    assert await acache.delete("d", "b") == 2
    assert await acache.get("d") is None
    assert await acache.ping()


async def test_async_pattern_and_prefix_deletes(acache: AsyncUpstashCache) -> None:
    for i in range(30):
        await acache.set(f"q:{i}", i)
    await acache.set("q*x", 1)
    assert await acache.delete_prefix("q*") == 1
    assert await acache.delete_pattern("q:*") == 30
    with pytest.raises(ValidationError) as caught:
        await acache.delete_pattern("*")
    assert str(caught.value) == (
        "pattern '*' can match every key in the database (it does not start with a literal "
        "character); pass allow_all=True to mean it"
    )


async def test_async_pipeline_keeps_every_result(acache: AsyncUpstashCache) -> None:
    async with acache.pipeline() as pipe:
        pipe.set("t", "text")
        pipe.increment("t")
        pipe.get("t")
    assert pipe.results is not None
    assert pipe.results[0] is True
    assert isinstance(pipe.results[1], CommandError)
    assert str(pipe.results[1]) == NOT_AN_INTEGER
    assert pipe.results[2] == "text"


async def test_async_layers_and_get_or_set(acache: AsyncUpstashCache) -> None:
    sessions = acache.layer("sessions")
    assert await sessions.set("u", {"id": 1})
    assert await acache.get("session:u") == {"id": 1}
    assert 3590 <= await sessions.ttl("u") <= 3600
    calls: list[int] = []

    async def compute() -> int:
        calls.append(1)
        await asyncio.sleep(0)
        return 7

    assert await acache.get_or_set("g", compute, ttl=30) == 7
    assert await acache.get_or_set("g", compute, ttl=30) == 7
    assert calls == [1]


async def test_concurrent_commands_share_one_round_trip(backend: Backend) -> None:
    if backend.is_local:
        pytest.skip("round trips exist only over REST")
    cache = backend.aio()
    await cache.set("session:1", {"user": 1})
    await cache.set("query:1", [1, 2])
    backend.emulator.reset_billing()  # type: ignore[union-attr]
    async with cache.request(deadline=5) as scope:
        session, count, query = await asyncio.gather(
            cache.get("session:1"), cache.increment("ratelimit:1"), cache.get("query:1")
        )
    assert (session, count, query) == ({"user": 1}, 1, [1, 2])
    assert scope.meter.round_trips == 1
    assert backend.emulator.requests() == 1  # type: ignore[union-attr]
    await cache.aclose()


async def test_each_caller_gets_its_own_error_in_a_shared_pipeline(backend: Backend) -> None:
    cache = backend.aio()
    await cache.set("text", "abc")
    results = await asyncio.gather(
        cache.increment("text"), cache.get("text"), return_exceptions=True
    )
    assert isinstance(results[0], CommandError) and str(results[0]) == NOT_AN_INTEGER
    assert results[1] == "abc"
    await cache.aclose()


async def test_a_command_refused_before_sending_fails_only_its_own_caller(
    backend: Backend,
) -> None:
    # Two non-UTF-8 arguments cannot be sent over REST; planning refuses them. The
    # other commands issued in the same tick must still run, together.
    if backend.is_local:
        pytest.skip("the REST planner exists only over REST")
    cache = backend.aio()
    await cache.set("k1", "v1")
    backend.emulator.reset_billing()  # type: ignore[union-attr]
    async with cache.request(deadline=5) as scope:
        got, bad, stored = await asyncio.gather(
            cache.get("k1"),
            cache.execute([("SET", "x", b"\xff", b"\xfe")]),
            cache.set("k2", "v2"),
            return_exceptions=True,
        )
    assert got == "v1"
    assert isinstance(bad, ValidationError)
    assert str(bad) == "SET: a binary value must be followed only by option/value pairs (EX 60)"
    assert stored and not stored.degraded  # type: ignore[union-attr]
    assert scope.meter.round_trips == 1
    assert await cache.get("k2") == "v2"
    await cache.aclose()


async def test_scopes_are_isolated_between_concurrent_requests(backend: Backend) -> None:
    cache = backend.aio()
    await cache.set("k", 1)

    async def handler(n: int) -> Any:
        async with cache.request(deadline=5):
            scope = current_scope()
            await cache.get("k")
            await cache.get("k")
            return scope

    first, second = await asyncio.gather(handler(1), handler(2))
    assert first is not second
    assert first.meter.hits == 2 and second.meter.hits == 2
    assert current_scope() is None
    await cache.aclose()


async def test_async_backend_is_reported(backend: Backend) -> None:
    cache = backend.aio()
    expected = CacheBackend.LOCAL if backend.is_local else CacheBackend.UPSTASH
    assert cache.current_backend is expected
    result = await cache.set("x", 1)
    assert result.backend is expected and not result.degraded
    info = await cache.info()
    assert info["backend"] == expected.value
    await cache.aclose()


async def test_async_get_or_set_single_flight_across_tasks(backend: Backend) -> None:
    cache = backend.aio()
    calls: list[int] = []
    gate = asyncio.Event()

    async def compute() -> str:
        calls.append(1)
        await gate.wait()
        return "value"

    tasks = [asyncio.ensure_future(cache.get_or_set("hot", compute, ttl=60)) for _ in range(5)]
    deadline = asyncio.get_running_loop().time() + 5
    while not calls and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert calls == [1]  # one caller computes; the others are waiting, not computing
    gate.set()
    assert await asyncio.gather(*tasks) == ["value"] * 5
    assert calls == [1]
    await cache.aclose()


async def test_async_get_or_set_single_flight_across_request_scopes(backend: Backend) -> None:
    # One invocation per scope: a waiting caller's polls must reach the server, not be
    # answered by its scope's read memo (which would keep saying "missing").
    if backend.is_local:
        pytest.skip("the read memo fronts REST reads only")
    cache = backend.aio()
    calls: list[int] = []
    gate = asyncio.Event()
    scopes: list[Any] = []

    async def compute() -> str:
        calls.append(1)
        await gate.wait()
        return "value"

    async def invocation() -> Any:
        async with cache.request(deadline=8) as scoped:
            scopes.append(scoped)
            return await cache.get_or_set("hot", compute, ttl=60)

    tasks = [asyncio.ensure_future(invocation()) for _ in range(5)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5

    def followers_have_polled() -> bool:  # read, lost the lock, then asked again
        return len(scopes) == 5 and sum(s.meter.round_trips >= 3 for s in scopes) >= 4

    while not (calls and followers_have_polled()) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert calls == [1] and followers_have_polled()  # what the rest of the test relies on
    gate.set()
    assert await asyncio.gather(*tasks) == ["value"] * 5
    assert calls == [1]
    await cache.aclose()


async def test_async_sync_compute_is_accepted(acache: AsyncUpstashCache) -> None:
    assert await acache.get_or_set("s", lambda: {"sync": True}) == {"sync": True}


def test_one_client_serves_successive_event_loops(backend: Backend) -> None:
    """A module-level client used by ``asyncio.run`` per invocation (Lambda, Mangum)."""
    cache = backend.aio()

    async def invocation(n: int) -> Any:
        async with cache.request(deadline=5):
            await cache.set("n", n)
            return await cache.get("n")

    assert [asyncio.run(invocation(n)) for n in range(3)] == [0, 1, 2]


async def test_concurrent_reads_of_one_key_in_a_scope_cost_one_command(backend: Backend) -> None:
    if backend.is_local:
        pytest.skip("commands are counted over REST")
    cache = backend.aio()
    await cache.set("same", {"v": 1})
    async with cache.request(deadline=5) as scope:
        values = await asyncio.gather(*(cache.get("same") for _ in range(4)))
    assert values == [{"v": 1}] * 4
    assert scope.meter.commands == 1
    await cache.aclose()
