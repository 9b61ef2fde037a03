"""RateLimiter against the official ``upstash-ratelimit``, on the same workload in one run.

Both talk to the local Upstash emulator in front of a throwaway redis-server, over HTTP,
exactly as they would talk to Upstash. ``upstash-ratelimit`` runs as its README shows:
``Ratelimit(redis=upstash_redis.Redis(url, token), limiter=SlidingWindow(...))`` (and
``FixedWindow``).

- Commands billed per check, as Upstash bills them (each EVAL/EVALSHA counts 1 plus every
  ``redis.call`` inside it), read from redis-server's ``INFO commandstats``: admitted,
  first refusal, and repeat refusals of an identifier already over its limit.
- HTTP round trips per check, from the emulator's request counter, and bytes on the
  wire per check (both directions, what Upstash bills as bandwidth), counted by a TCP
  relay between each client and the emulator.
- Requests let through over the limit when two instances' clocks are 30 s apart (one
  +30 s, one -30 s): both alternate requests for one identifier at a steady pace; the
  figure is the worst excess over the limit in any window-long interval, measured on the
  real clock the server shares.

    python -m bench.bench_ratelimit          # or: python -m bench.run --only ratelimit
"""

from __future__ import annotations

import bisect
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bench.report import Figure

REPRODUCE = "python -m bench.run --only ratelimit"
SKEW = 30.0  # seconds: instance A runs this far ahead, instance B this far behind
_real_time = time.time


@dataclass
class Servers:
    redis: Any  # redis.Redis on the backing redis-server (for commandstats)
    emulator: Any  # emulator.EmulatorServer
    relay: ByteCounter  # where the clients connect

    @property
    def url(self) -> str:
        return str(self.emulator.url)

    @property
    def token(self) -> str:
        return str(self.emulator.token)


class ByteCounter:
    """A TCP relay in front of the emulator that counts the bytes crossing it."""

    def __init__(self, target_url: str) -> None:
        host, port = target_url.removeprefix("http://").rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.bytes = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                with self._lock:
                    self.bytes += len(chunk)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """A private redis-server and the emulator in front of it."""
    import redis

    from continuum.emulator import EmulatorServer

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("bench_ratelimit needs redis-server on PATH (apt install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", workdir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port, protocol=2)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            server = EmulatorServer(f"redis://127.0.0.1:{port}/0", token="bench-token-000000")
            server.start()
            relay = ByteCounter(server.url)
            try:
                yield Servers(client, server, relay)
            finally:
                relay.close()
                server.stop()
        finally:
            client.close()
            process.terminate()
            process.wait(timeout=10)


def billed_commands(client: Any) -> int:
    """Commands run since the last reset, scripts' inner calls included."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if not k.startswith("cmdstat_config"))


@dataclass
class Cost:
    billed: float  # per check
    round_trips: float  # per check
    wire_bytes: float  # per check


def measure(servers: Servers, check: Callable[[], object], n: int) -> Cost:
    servers.redis.config_resetstat()
    servers.emulator.reset_billing()
    before = servers.relay.bytes
    for _ in range(n):
        check()
    wire = servers.relay.bytes - before
    return Cost(billed_commands(servers.redis) / n, servers.emulator.requests / n, wire / n)


def ours(servers: Servers, algorithm: str) -> Any:
    from continuum.cache import UpstashCache
    from continuum.ratelimit import BlockedCache, RateLimiter

    cache = UpstashCache(rest_url=servers.relay.url, rest_token=servers.token)
    return RateLimiter(cache, algorithm=algorithm, blocked=BlockedCache())


def theirs(servers: Servers, kind: str, limit: int, window: int) -> Any:
    from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow
    from upstash_redis import Redis

    limiter = SlidingWindow if kind == "sliding" else FixedWindow
    redis = Redis(servers.relay.url, servers.token, allow_telemetry=False)
    return Ratelimit(redis=redis, limiter=limiter(max_requests=limit, window=window, unit="s"))


def costs(servers: Servers, n: int) -> dict[str, dict[str, Cost]]:
    """Per check: admitted, first refusal, repeat refusals, for each limiter."""
    out: dict[str, dict[str, Cost]] = {}
    subjects: dict[str, tuple[Callable[[str, int], object], Callable[[str, int], object]]] = {}
    for algorithm in ("sliding_log", "sliding_window", "fixed_window"):
        limiter = ours(servers, algorithm)
        subjects[f"ours:{algorithm}"] = (
            lambda ident, limit, lim=limiter: lim.limit(ident, limit=limit, window_seconds=3600),
            lambda ident, limit, lim=limiter: lim.limit(ident, limit=limit, window_seconds=3600),
        )
    for kind in ("sliding", "fixed"):
        big, small = theirs(servers, kind, 10 * n, 3600), theirs(servers, kind, 1, 3600)
        subjects[f"theirs:{kind}"] = (
            lambda ident, limit, rl=big: rl.limit(ident),
            lambda ident, limit, rl=small: rl.limit(ident),
        )
    for name, (admit, refuse) in subjects.items():
        admit(f"warm-{name}", 10 * n)  # scripts loaded, connections open
        out[name] = {
            "admitted": measure(servers, lambda a=admit, s=name: a(f"a-{s}", 10 * n), n),
        }
        refuse(f"r-{name}", 1)  # the one admitted request
        out[name]["first refusal"] = measure(servers, lambda r=refuse, s=name: r(f"r-{s}", 1), 1)
        out[name]["repeat refusal"] = measure(servers, lambda r=refuse, s=name: r(f"r-{s}", 1), n)
    return out


@contextlib.contextmanager
def clock_offset(seconds: float) -> Iterator[None]:
    """This instance's wall clock is ``seconds`` off (both libraries read ``time.time``)."""
    time.time = lambda: _real_time() + seconds
    try:
        yield
    finally:
        time.time = _real_time


def busiest_excess(admitted: list[float], limit: int, window: float) -> int:
    admitted.sort()
    most = 0
    for t in admitted:
        most = max(
            most, bisect.bisect_right(admitted, t) - bisect.bisect_left(admitted, t - window)
        )
    return max(0, most - limit)


def over_limit_under_skew(
    instances: list[Callable[[], bool]], *, limit: int, window: float, seconds: float
) -> tuple[int, int]:
    """Two skewed instances alternate at a steady pace; (worst excess, total admitted)."""
    admitted: list[float] = []
    pace = window / (limit * 4)  # four times the allowed rate across both instances
    start = time.perf_counter()
    for tick in range(int(seconds / pace)):
        delay = start + tick * pace - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # a steady offered load, not synchronisation
        offset = SKEW if tick % 2 == 0 else -SKEW
        with clock_offset(offset):
            allowed = instances[tick % 2]()
        if allowed:
            admitted.append(_real_time())
    # an admission is stamped when its answer arrives; allow one window-long interval
    # slightly wider than the server saw (the latency), the same for both libraries
    return busiest_excess(admitted, limit, window * 0.98), len(admitted)


def skew_figures(servers: Servers, quick: bool) -> dict[str, tuple[int, int]]:
    limit, window = 10, 2
    seconds = 4.0 if quick else 10.0
    out: dict[str, tuple[int, int]] = {}
    ours_a, ours_b = ours(servers, "sliding_log"), ours(servers, "sliding_log")
    out["ours"] = over_limit_under_skew(
        [
            lambda: bool(ours_a.limit("skew-ours", limit=limit, window_seconds=window).allowed),
            lambda: bool(ours_b.limit("skew-ours", limit=limit, window_seconds=window).allowed),
        ],
        limit=limit, window=window, seconds=seconds,
    )  # fmt: skip
    for kind in ("sliding", "fixed"):
        rl_a, rl_b = theirs(servers, kind, limit, window), theirs(servers, kind, limit, window)
        out[kind] = over_limit_under_skew(
            [
                lambda rl=rl_a, k=kind: bool(rl.limit(f"skew-{k}").allowed),
                lambda rl=rl_b, k=kind: bool(rl.limit(f"skew-{k}").allowed),
            ],
            limit=limit, window=window, seconds=seconds,
        )  # fmt: skip
    return out


def run(quick: bool = False) -> list[Figure]:
    n = 30 if quick else 200
    with servers() as srv:
        cost = costs(srv, n)
        skew = skew_figures(srv, quick)
    figures: list[Figure] = []
    server_clock = "ours adds TIME (the server's clock)"
    pairs = [
        ("sliding_log", "sliding", "RateLimiter sliding log (exact)", "ratio <= 1.5",
         f"{server_clock} and one member per request"),
        ("sliding_window", "sliding", "RateLimiter sliding window", "<= baseline",
         f"{server_clock}; one key instead of two"),
        ("fixed_window", "fixed", "RateLimiter fixed window", "ratio <= 2",
         f"{server_clock}; theirs is a bare INCRBY that also counts refused requests"),
    ]  # fmt: skip
    for algorithm, kind, label, target, note in pairs:
        mine, base = cost[f"ours:{algorithm}"]["admitted"], cost[f"theirs:{kind}"]["admitted"]
        met = mine.billed <= base.billed * (1.5 if "1.5" in target else 2 if "2" in target else 1)
        figures.append(Figure(
            name=f"billed commands per admitted check: {label}",
            value=round(mine.billed, 2), unit="commands",
            baseline_name=f"upstash-ratelimit {kind.title()}Window",
            baseline=round(base.billed, 2), target=target, met=met, reproduce=REPRODUCE,
            note=f"Upstash bills EVAL 1 + each redis.call; {note}",
        ))  # fmt: skip
    for case in ("first refusal", "repeat refusal"):
        mine, base = cost["ours:sliding_log"][case], cost["theirs:sliding"][case]
        figures.append(Figure(
            name=f"billed commands per {case}: RateLimiter sliding log",
            value=round(mine.billed, 2), unit="commands",
            baseline_name="upstash-ratelimit SlidingWindow", baseline=round(base.billed, 2),
            target="== 0" if case == "repeat refusal" else "informational",
            met=(mine.billed == 0) if case == "repeat refusal" else None, reproduce=REPRODUCE,
            note="repeat offenders are answered from the blocked-identifier cache"
            if case == "repeat refusal" else "",
        ))  # fmt: skip
    mine_rt = cost["ours:sliding_log"]["admitted"].round_trips
    figures.append(Figure(
        name="HTTP round trips per check: RateLimiter", value=round(mine_rt, 2),
        unit="round trips", baseline_name="upstash-ratelimit SlidingWindow",
        baseline=round(cost["theirs:sliding"]["admitted"].round_trips, 2), target="== 1",
        met=mine_rt == 1, reproduce=REPRODUCE,
        note="EVALSHA (EVAL only on NOSCRIPT); upstash-ratelimit sends the whole script each time",
    ))  # fmt: skip
    mine_bytes = cost["ours:sliding_log"]["admitted"].wire_bytes
    base_bytes = cost["theirs:sliding"]["admitted"].wire_bytes
    figures.append(Figure(
        name="bytes on the wire per check (both directions): RateLimiter",
        value=round(mine_bytes), unit="bytes", baseline_name="upstash-ratelimit SlidingWindow",
        baseline=round(base_bytes), target="< baseline", met=mine_bytes < base_bytes,
        reproduce=REPRODUCE, note="Upstash bills bandwidth; HTTP headers included",
    ))  # fmt: skip
    for kind in ("sliding", "fixed"):
        excess, total = skew["ours"]
        base_excess, base_total = skew[kind]
        figures.append(Figure(
            name=f"requests over the limit in a window, clocks {SKEW:+.0f}/-{SKEW:.0f} s apart",
            value=excess, unit="requests", baseline_name=f"upstash-ratelimit {kind.title()}Window",
            baseline=base_excess, target="== 0", met=excess == 0, reproduce=REPRODUCE,
            note=f"limit 10 per 2 s, two instances at 4x the rate; admitted in total: "
            f"ours {total}, theirs {base_total}",
        ))  # fmt: skip
    return figures


if __name__ == "__main__":
    for figure in run(quick=True):
        print(figure)
