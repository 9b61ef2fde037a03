"""One worker process of the exactness test: several threads hammering one identifier.

It runs in a fresh (spawned) process, optionally with ``time.time`` skewed by whole
seconds, as a serverless instance with a wrong clock would be. Admission instants come
from the server: the sliding log's ``reset`` is the server's admission time plus the
window, to the microsecond.
"""

from __future__ import annotations

import threading
import time
from typing import Any


def hammer(
    url: str,
    token: str,
    identifier: str,
    *,
    limit: int,
    window_seconds: float,
    seconds: float,
    threads: int,
    skew: float,
    remember_refusals: bool,
    start: Any,
) -> dict[str, object]:
    if skew:
        real_time = time.time
        time.time = lambda: real_time() + skew  # this instance's clock is wrong

    from continuum.cache import UpstashCache
    from continuum.ratelimit import BlockedCache, RateLimiter

    window_us = round(window_seconds * 1_000_000)
    cache = UpstashCache(rest_url=url, rest_token=token, timeout=10.0, budget=20.0)
    blocked = None if remember_refusals else BlockedCache(0)
    limiter = RateLimiter(cache, fail_open=False, blocked=blocked)
    admitted: list[int] = []
    counts = {"limited": 0, "blocked_cache": 0, "unavailable": 0}
    lock = threading.Lock()
    # warm up (imports, connection, the script loaded), then start with every process
    limiter.get_usage(identifier, window_seconds, limit)
    start.wait(timeout=120)
    stop = time.monotonic() + seconds

    def run() -> None:
        while time.monotonic() < stop:
            result = limiter.limit(identifier, limit=limit, window_seconds=window_seconds)
            with lock:
                if result.allowed:
                    assert result.reason == "allowed"
                    admitted.append(round(result.reset * 1_000_000) - window_us)
                else:
                    counts[result.reason] += 1
            if not result.allowed:
                time.sleep(0.002)  # a refused client backs off briefly, as real ones do

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cache.close()
    return {"admitted": admitted, **counts}
