"""What the request scope saves and what an outage costs.

- Round trips for one async request that reads a session, checks a rate limit and reads a
  cached query concurrently (auto-pipelined: target 1), against the same three issued one
  by one (3), on the emulator, counted by the scope's meter.
- ``LocalCache`` fast-path get and set per operation (target at most 2 us), against a
  plain ``dict`` as the floor; and the same through ``LocalCache.execute`` with one
  command, which is what the request scope's fallback actually runs.
- ``UpstashCache.get``/``set`` per operation while Upstash is down and the circuit is open
  (the port refuses connections), against the same client in local mode, which must cost
  the same or less (issue 14). What the outage adds is the breaker's check and the
  fallback's bookkeeping, about 0.4 us: a ratio of 1.25 held while both paths built a
  plan (2.5 us and more); both now answer at once, so the same 0.4 us reads as ~1.4x.
- The same four calls (get/set, circuit open and local mode) against ``dict.get`` timed in
  the same run, the floor any cache lookup stands on: a get within 3 us, a set within 5 us.

    python -m bench.bench_resilience         # or: python -m bench.run --only resilience
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any

from bench.report import Figure, per_op_seconds

REPRODUCE = "python -m bench.run --only resilience"


def _round_trips(quick: bool) -> list[Figure]:
    from continuum import AsyncUpstashCache
    from continuum.emulator import EmulatorServer
    from continuum.ratelimit.limiter import AsyncRateLimiter

    server = EmulatorServer("fakeredis", token="bench-token", readonly_token="bench-ro")
    server.start()
    try:
        return asyncio.run(_measure_round_trips(AsyncUpstashCache, AsyncRateLimiter, server.url))
    finally:
        server.stop()


async def _measure_round_trips(cache_cls: Any, limiter_cls: Any, url: str) -> list[Figure]:
    cache = cache_cls(rest_url=url, rest_token="bench-token")
    limiter = limiter_cls(cache)
    sessions, queries = cache.layer("sessions"), cache.layer("query")
    try:
        await sessions.set("abc", {"user": 7})
        await queries.set("top", [1, 2, 3])
        await limiter.limit("1.2.3.4", limit=1000)  # loads the script: steady state after

        async with cache.request() as scope:
            await asyncio.gather(
                sessions.get("abc"), limiter.limit("1.2.3.4", limit=1000), queries.get("top")
            )
            together = scope.meter.round_trips
        async with cache.request() as scope:
            await sessions.get("abc")
            await limiter.limit("1.2.3.4", limit=1000)
            await queries.get("top")
            one_by_one = scope.meter.round_trips
    finally:
        await cache.aclose()
    return [
        Figure(
            name="round trips: session + rate limit + cached query, concurrent in one request",
            value=together,
            unit="round trips",
            baseline_name="the same three awaited one by one",
            baseline=one_by_one,
            target="== 1",
            met=together == 1,
            reproduce=REPRODUCE,
        )
    ]


def _local_fast_paths(quick: bool) -> list[Figure]:
    from continuum.local.store import LocalCache

    number = 20_000 if quick else 200_000
    store = LocalCache()
    floor: dict[str, bytes] = {}
    value = b'{"user":7,"roles":["a","b"]}'
    for i in range(1000):
        store.set(f"k{i}", value, ttl=300)
        floor[f"k{i}"] = value
    get_cmd, set_cmd = [("GET", "k500")], [("SET", "k500", value, "PX", 300_000)]
    get_s, set_s, dict_get, dict_set, exec_get, exec_set = _interleaved(
        [
            lambda: store.get("k500"),
            lambda: store.set("k500", value, 300),
            lambda: floor.get("k500"),
            lambda: floor.__setitem__("k500", value),
            lambda: store.execute(get_cmd),
            lambda: store.execute(set_cmd, write=True),
        ],
        number=number,
    )
    return [
        Figure(
            name="local fallback get (LocalCache.get, key with a TTL)",
            value=get_s * 1e6,
            unit="us/op",
            baseline_name="dict.get (the floor)",
            baseline=dict_get * 1e6,
            target="<= 2 us",
            met=get_s <= 2e-6,
            reproduce=REPRODUCE,
        ),
        Figure(
            name="local fallback set (LocalCache.set with a TTL)",
            value=set_s * 1e6,
            unit="us/op",
            baseline_name="dict item assignment (the floor)",
            baseline=dict_set * 1e6,
            target="<= 2 us",
            met=set_s <= 2e-6,
            reproduce=REPRODUCE,
        ),
        Figure(
            name="fallback store GET as the scope runs it (LocalCache.execute, one command)",
            value=exec_get * 1e6,
            unit="us/op",
            baseline_name="LocalCache.get (the fast path)",
            baseline=get_s * 1e6,
            target="<= 2 us",
            met=exec_get <= 2e-6,
            reproduce=REPRODUCE,
        ),
        Figure(
            name="fallback store SET PX as the scope runs it (LocalCache.execute, one command)",
            value=exec_set * 1e6,
            unit="us/op",
            baseline_name="LocalCache.set (the fast path)",
            baseline=set_s * 1e6,
            target="<= 2 us",
            met=exec_set <= 2e-6,
            reproduce=REPRODUCE,
        ),
    ]


def _interleaved(fns: list[Callable[[], object]], *, number: int, rounds: int = 7) -> list[float]:
    """Best-of-``rounds`` seconds per call for each function, alternating between them so
    a noisy neighbour slows both sides of a comparison alike."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], per_op_seconds(fn, repeat=1, number=number))
    return best


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _outage_overhead(quick: bool) -> list[Figure]:
    from continuum import UpstashCache
    from continuum.rest.breaker import CircuitState, breaker_for

    number = 2_000 if quick else 20_000
    down = UpstashCache(
        rest_url=f"http://127.0.0.1:{_closed_port()}",
        rest_token="bench-token",
        failure_threshold=1,
        probe_interval=3600.0,
    )
    local = UpstashCache(mode="local")
    floor = {"session:abc": b'{"user":7}'}
    figures: list[Figure] = []
    try:
        down.set("warm", 1)  # refused: the circuit opens and stays open for the run
        assert breaker_for(down.config.database("primary").breaker_key).state is CircuitState.OPEN
        for label, op, limit in (
            ("get", lambda c: c.get("session:abc"), 3.0),
            ("set", lambda c: c.set("session:abc", {"user": 7}, ttl=60), 5.0),
        ):
            # One scope for both clients; its read memo is cleared before every call so
            # each get really reaches the fallback store instead of the memo.
            with down.request(deadline=600) as scope:
                memo = scope.memo
                op(down)
                op(local)
                outage, pure, dict_get = _interleaved(
                    [
                        lambda op=op, memo=memo: (memo.clear(), op(down)),
                        lambda op=op, memo=memo: (memo.clear(), op(local)),
                        lambda: floor.get("session:abc"),
                    ],
                    number=number,
                )
            for where, seconds in (
                ("while Upstash is down (circuit open, request scope fallback)", outage),
                ("in local mode", pure),
            ):
                figures.append(
                    Figure(
                        name=f"{label} {where}, against dict.get",
                        value=seconds * 1e6,
                        unit="us/op",
                        baseline_name="dict.get in the same run (the floor)",
                        baseline=dict_get * 1e6,
                        target=f"<= {limit:g} us",
                        met=seconds * 1e6 <= limit,
                        reproduce=REPRODUCE,
                    )
                )
            figures.append(
                Figure(
                    name=f"{label} while Upstash is down (circuit open, request scope fallback)",
                    value=outage * 1e6,
                    unit="us/op",
                    baseline_name=f"{label} in local mode (a pure local cache)",
                    baseline=pure * 1e6,
                    target="local mode the same or less (ratio >= 1.0)",
                    met=outage >= pure,
                    reproduce=REPRODUCE,
                    note="nothing is sent while the circuit is open",
                )
            )
    finally:
        down.close()
        local.close()
    return figures


def run(quick: bool = False) -> list[Figure]:
    return _round_trips(quick) + _local_fast_paths(quick) + _outage_overhead(quick)


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        ratio = f" ({figure.ratio:.2f}x)" if figure.ratio is not None else ""
        print(
            f"{figure.name}: {figure.value:.3g} {figure.unit} vs {figure.baseline_name} "
            f"{figure.baseline}{ratio}; target {figure.target}: {figure.met}"
        )
