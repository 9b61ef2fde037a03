"""What an outage costs a caller with the default settings, against the fault proxy.

The reference API (sync, over ``UpstashCache``) and a bare ``cache.get`` talk to the
emulator through the fault proxy of the test suite, which plays an Upstash that hangs
(accepts, never answers), one whose port drops every SYN (black-holed) and one that
answers 503 after 0.3 s. Each figure has its bound from the issue and a same-run
baseline: the same call through the same proxy with no fault.

- the slowest of the first API requests, from a closed circuit until it opens (bound
  1.5 s), for each fault;
- the slowest of many API requests once the circuit is open (bound 10 ms);
- a bare ``cache.get`` outside any request scope, Upstash hanging (bound 1.5 s).

Modules are imported and the clients warmed on a healthy Upstash before anything is
timed: what is measured is the outage, not a cold start.

    python -m bench.bench_outage         # or: python -m bench.run --only outage
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.report import Figure

REPRODUCE = "python -m bench.run --only outage"
KEY = "bench-outage-key"
FIRST_BOUND_MS = 1500.0
OPEN_BOUND_MS = 10.0


class Rig:
    """The emulator behind the fault proxy, and clients built fresh for each measurement."""

    def __init__(self, proxy: Any, token: str) -> None:
        self.proxy = proxy
        self.token = token

    def inject(self, fault: str) -> None:
        from tests.resilience.fault_proxy import Fault

        if fault == "hang":
            self.proxy.set_fault(Fault.HANG)
        elif fault == "blackhole":
            self.proxy.set_fault(Fault.BLACKHOLE)
        elif fault == "slow 503":
            self.proxy.set_fault(Fault.STATUS, status=503, body=b"<html>503</html>", delay=0.3)
        else:
            self.proxy.clear()

    @contextmanager
    def clients(self) -> Iterator[tuple[Any, Any]]:
        """A fresh cache and API with the default settings, a closed circuit, warmed up."""
        from continuum import UpstashCache
        from continuum.app import Api, ApiSettings
        from continuum.rest.breaker import reset_breakers

        self.proxy.clear()
        reset_breakers()
        cache = UpstashCache(rest_url=self.proxy.url, rest_token=self.token)
        # Every other setting is the default; the key's limit is raised so that hundreds
        # of samples are not answered "429" from the limiter's memory without a command.
        settings = ApiSettings(api_keys=(KEY,), rate_limit=10**6)
        api = Api(settings, cache=cache, sink=lambda line: None)
        try:
            put(api)  # imports, the limiter's script, a pooled connection: all warm
            cache.get("warm")
            yield api, cache
        finally:
            cache.close()

    def circuit_open(self, cache: Any) -> bool:
        from continuum.rest.breaker import CircuitState, breaker_for

        key = cache.config.database().breaker_key
        return breaker_for(key).state is CircuitState.OPEN


def put(api: Any) -> Any:
    from continuum.app import Request

    request = Request.build(
        "PUT",
        "/v1/cache/query/bench",
        headers={"authorization": f"Bearer {KEY}"},
        body=b'{"value":[1,2,3]}',
    )
    reply = api.handle(request)
    if reply.status != 200:  # a refusal would be timed instead of the work
        raise RuntimeError(f"the API answered {reply.status}: {reply.body[:200]!r}")
    return reply


def timed_ms(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000.0


def _healthy_request_ms(rig: Rig, samples: int) -> float:
    with rig.clients() as (api, _):
        return statistics.median(timed_ms(lambda: put(api)) for _ in range(samples))


def _first_requests_ms(rig: Rig, fault: str, rounds: int) -> tuple[float, int]:
    """The slowest request from a closed circuit until it opened, over ``rounds`` fresh
    starts, and the most requests it took to open."""
    worst, most = 0.0, 0
    for _ in range(rounds):
        with rig.clients() as (api, cache):
            rig.inject(fault)
            requests = 0
            while not rig.circuit_open(cache) and requests < 10:
                worst = max(worst, timed_ms(lambda api=api: put(api)))
                requests += 1
            most = max(most, requests)
    return worst, most


def _open_request_ms(rig: Rig, samples: int) -> tuple[float, float]:
    """The slowest and the median request once the circuit is open."""
    with rig.clients() as (api, cache):
        rig.inject("hang")
        while not rig.circuit_open(cache):
            put(api)
        times = [timed_ms(lambda: put(api)) for _ in range(samples)]
        return max(times), statistics.median(times)


def _bare_get_ms(rig: Rig, fault: str, rounds: int) -> float:
    worst = 0.0
    for _ in range(rounds):
        with rig.clients() as (_, cache):
            rig.inject(fault)
            worst = max(worst, timed_ms(lambda cache=cache: cache.get("absent")))
    return worst


def _healthy_get_ms(rig: Rig, samples: int) -> float:
    with rig.clients() as (_, cache):
        return statistics.median(timed_ms(lambda: cache.get("absent")) for _ in range(samples))


def _figures(rig: Rig, quick: bool) -> list[Figure]:
    rounds = 1 if quick else 3
    samples = 50 if quick else 300
    healthy = _healthy_request_ms(rig, samples)
    figures = []
    for fault in ("hang", "blackhole", "slow 503"):
        worst, requests = _first_requests_ms(rig, fault, rounds)
        figures.append(
            Figure(
                name=f"slowest first API request until the circuit opens, Upstash {fault}",
                value=round(worst, 1),
                unit="ms",
                baseline_name="the same request, Upstash healthy (median)",
                baseline=round(healthy, 2),
                target=f"<= {FIRST_BOUND_MS:.0f} ms",
                met=worst <= FIRST_BOUND_MS,
                reproduce=REPRODUCE,
                note=f"default settings; the circuit opened within {requests} request(s); "
                f"worst of {rounds} fresh start(s)",
            )
        )
    opened, median = _open_request_ms(rig, samples)
    figures.append(
        Figure(
            name="slowest API request once the circuit is open (Upstash hanging)",
            value=round(opened, 3),
            unit="ms",
            baseline_name="the same request, Upstash healthy (median)",
            baseline=round(healthy, 2),
            target=f"<= {OPEN_BOUND_MS:.0f} ms",
            met=opened <= OPEN_BOUND_MS,
            reproduce=REPRODUCE,
            note=f"of {samples} (median {median:.3f} ms); nothing is sent, the request's "
            "fallback answers",
        )
    )
    bare = _bare_get_ms(rig, "hang", rounds)
    figures.append(
        Figure(
            name="bare cache.get outside a request scope, Upstash hanging",
            value=round(bare, 1),
            unit="ms",
            baseline_name="the same get, Upstash healthy (median)",
            baseline=round(_healthy_get_ms(rig, samples), 2),
            target=f"<= {FIRST_BOUND_MS:.0f} ms",
            met=bare <= FIRST_BOUND_MS,
            reproduce=REPRODUCE,
            note=f"default settings, closed circuit; worst of {rounds}",
        )
    )
    return figures


def run(quick: bool = False) -> list[Figure]:
    from continuum.emulator import EmulatorServer
    from tests.resilience.fault_proxy import FaultProxy

    server = EmulatorServer("fakeredis", token="bench-token")
    server.start()
    try:
        with FaultProxy.for_url(server.url) as proxy:
            return _figures(Rig(proxy, "bench-token"), quick)
    finally:
        server.stop()


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(
            f"{figure.name}: {figure.value} {figure.unit} vs {figure.baseline_name} "
            f"{figure.baseline}; target {figure.target}: {figure.met} ({figure.note})"
        )
