"""Exactness under load: 8 processes x 4 threads on one identifier, over real redis-server.

Admission instants are the server's (from each script's result). In no sliding window
does the number admitted exceed the limit, and skewing the client processes' clocks by
up to 30 s either way changes nothing, because no decision reads a client clock.
"""

from __future__ import annotations

import bisect
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

from .load_worker import hammer

PROCESSES = 8
THREADS = 4
LIMIT = 25
WINDOW = 1.0  # seconds: several windows pass in each run, so edges are crossed often
SECONDS = 4.0


def run_load(emulator: EmulatorHandle, identifier: str, skews: list[float]) -> dict[str, object]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        start = manager.Barrier(PROCESSES)  # every worker warmed up: hammer together
        futures = [
            pool.submit(
                hammer, emulator.url, emulator.token, identifier, limit=LIMIT,
                window_seconds=WINDOW, seconds=SECONDS, threads=THREADS, skew=skew,
                remember_refusals=index % 2 == 0, start=start,
            )
            for index, skew in enumerate(skews)
        ]  # fmt: skip
        results = [future.result(timeout=180) for future in futures]
    admitted = sorted(t for r in results for t in r["admitted"])  # type: ignore[attr-defined]
    refused = sum(int(r["limited"]) + int(r["blocked_cache"]) for r in results)  # type: ignore[call-overload]
    return {"admitted": admitted, "refused": refused}


def busiest_window(admitted: list[int], window_us: int) -> int:
    """The most admissions in any interval (t - window, t]: what the limit bounds."""
    most = 0
    for t in admitted:
        inside = bisect.bisect_right(admitted, t) - bisect.bisect_right(admitted, t - window_us)
        most = max(most, inside)
    return most


@pytest.mark.slow
@pytest.mark.redis_server
@pytest.mark.parametrize("emulator", ["redis"], indirect=True)
def test_no_window_admits_more_than_the_limit_even_with_skewed_clients(
    emulator: EmulatorHandle,
) -> None:
    window_us = round(WINDOW * 1_000_000)
    honest = run_load(emulator, "hot", [0.0] * PROCESSES)
    skewed = run_load(emulator, "hot-skewed", [30.0, -30.0, 17.5, -12.0, 0.0, 29.9, -29.9, 5.0])
    for run in (honest, skewed):
        admitted = run["admitted"]
        assert isinstance(admitted, list)
        # the load is real: the limit was reached many times and many requests refused
        assert len(admitted) >= 2 * LIMIT and run["refused"] > len(admitted)
        assert busiest_window(admitted, window_us) == LIMIT
        span = admitted[-1] - admitted[0]
        # never more than the limit per window over the whole run either
        assert len(admitted) <= LIMIT * (span // window_us + 1)
