"""Throughput of the local Upstash emulator over loopback, against redis-py on the same Redis.

The emulator runs as users run it (``continuum emulator`` in its own process, so server
and client do not share a GIL) in front of fakeredis and in front of a redis-server.
A few client threads, each with a keep-alive connection, send for a fixed time (single
commands on a minimal socket client as thin as redis-py, pipelines with ``httpx``):

- single commands (``POST /`` with ``["SET", k, v]``): requests per second;
- 100-command pipelines (``POST /pipeline``): requests per second (x100 commands).

The baseline for both is redis-py talking RESP straight to the same redis-server with
the same number of threads (single commands, then 100-command pipelines). The ratio says
what the REST layer costs (target: single commands over fakeredis at least 0.4x of
redis-py). Then the server under load, on ``continuum dev`` as a newcomer runs it: 200
clients at once (target: no failed request) and a kept-alive request against the first
on its connection (target: at most 1.5x; Nagle plus delayed ACK made it 9x). And the
billing counter: commands billed over commands sent (target 1).

    python -m bench.bench_emulator           # or: python -m bench.run --only emulator
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent
REPRODUCE = "python -m bench.run --only emulator"
THREADS = 4
TOKEN = "bench-emulator-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """The suite's redis-server if ``CONTINUUM_TEST_REDIS_URL`` is set, else a throwaway one."""
    url = os.environ.get("CONTINUUM_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def emulator_process(backend: str) -> Iterator[str]:
    """``continuum emulator`` in a subprocess; yields its URL."""
    args = [sys.executable, "-m", "continuum.cli.main", "emulator", "--port", "0", "--token", TOKEN]
    if backend != "fakeredis":
        args += ["--redis-url", backend]
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        url = None
        for line in process.stdout:
            if line.startswith("UPSTASH_REDIS_REST_URL="):
                url = line.strip().split("=", 1)[1]
                break
        if url is None:
            raise RuntimeError("continuum emulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def dev_process() -> Iterator[tuple[str, str]]:
    """``continuum dev`` in a subprocess (its embedded emulator on fakeredis); yields its
    URL and API key."""
    process = subprocess.Popen(
        [sys.executable, "-m", "continuum.cli.main", "dev", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # A limit no benchmark reaches: the API's own rate limit is not what is measured.
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "CONTINUUM_API_KEYS": DEV_KEY,
            "CONTINUUM_RATE_LIMIT": "1000000",
        },
    )
    try:
        assert process.stdout is not None
        url = None
        for line in process.stdout:
            if line.startswith("continuum dev: the reference API on "):
                url = line.strip().rsplit(" ", 1)[1]
                break
        if url is None:
            raise RuntimeError("continuum dev did not start")
        # the banner is printed before serving; drain it so the process never blocks
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield url, DEV_KEY
    finally:
        process.terminate()
        process.wait(10)


DEV_KEY = "bench-dev-key"
CONCURRENT = 200


def concurrent_errors(url: str, key: str) -> tuple[int, int, str]:
    """200 clients at once, each on its own connection: a PUT, a GET of what it put and
    /health. Returns (failed requests, requests, what failed): a transport error, a 5xx,
    or any other error status (a GET that misses what its PUT stored counts too)."""
    import asyncio
    import collections

    kinds: collections.Counter[str] = collections.Counter()

    async def client(i: int) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        failed = 0
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            calls = (
                lambda: http.put(f"/v1/cache/query/k{i}", json={"value": i, "ttl": 60}),
                lambda: http.get(f"/v1/cache/query/k{i}"),
                lambda: http.get("/health"),
            )
            for call in calls:
                try:
                    response = await call()
                    if response.status_code >= 400:
                        failed += 1
                        kinds[str(response.status_code)] += 1
                except httpx.HTTPError as error:
                    failed += 1
                    kinds[type(error).__name__] += 1
        return failed

    async def everyone() -> list[int]:
        return await asyncio.gather(*(client(i) for i in range(CONCURRENT)))

    failed = sum(asyncio.run(everyone()))
    what = ", ".join(f"{count} x {kind}" for kind, count in kinds.most_common())
    return failed, CONCURRENT * 3, what


def keepalive_cost(url: str, path: str, headers: dict[str, str]) -> tuple[float, float]:
    """Median seconds of a request on a fresh connection (connect included) and of one on
    a kept-alive connection, each over 30 samples."""
    import statistics

    first: list[float] = []
    kept: list[float] = []
    for _ in range(30):
        with httpx.Client(base_url=url, headers=headers) as http:
            start = time.perf_counter()
            http.get(path).raise_for_status()
            first.append(time.perf_counter() - start)
            for _ in range(5):
                start = time.perf_counter()
                http.get(path).raise_for_status()
                kept.append(time.perf_counter() - start)
    return statistics.median(first), statistics.median(kept)


def rate(worker: Callable[[Callable[[], bool]], int], seconds: float) -> float:
    """Operations per second of ``THREADS`` copies of ``worker`` running for ``seconds``."""
    counts: list[int] = []
    start_barrier = threading.Barrier(THREADS + 1)
    stop_at = [0.0]

    def body() -> None:
        start_barrier.wait()
        counts.append(worker(lambda: time.perf_counter() < stop_at[0]))

    threads = [threading.Thread(target=body) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    begin = time.perf_counter()
    start_barrier.wait()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - begin)


class KeepAlive:
    """A minimal HTTP/1.1 keep-alive client on one socket: as thin as redis-py is over
    RESP, so the ratio to redis-py measures the REST layer, not the HTTP client library."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self._sock = socket.create_connection((host, int(port)))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def post(self, body: bytes) -> bytes:
        head = (
            b"POST / HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        )  # fmt: skip
        self._sock.sendall(head + body)
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._sock.recv(65536)
        headers, _, rest = self._buffer.partition(b"\r\n\r\n")
        if not headers.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(headers.split(b"\r\n", 1)[0].decode())
        length = int(headers.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        while len(rest) < length:
            rest += self._sock.recv(65536)
        self._buffer = rest[length:]
        return rest[:length]

    def close(self) -> None:
        self._sock.close()


def rest_single(url: str) -> Callable[[Callable[[], bool]], int]:
    def worker(go: Callable[[], bool]) -> int:
        done = 0
        client = KeepAlive(url)
        try:
            while go():
                client.post(b'["SET","k%d","value"]' % (done % 100))
                done += 1
        finally:
            client.close()
        return done

    return worker


PIPELINE = [["SET", f"p{i}", "value"] for i in range(100)]


def rest_pipeline(url: str) -> Callable[[Callable[[], bool]], int]:
    def worker(go: Callable[[], bool]) -> int:
        done = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            while go():
                http.post("/pipeline", json=PIPELINE).raise_for_status()
                done += 1
        return done

    return worker


def direct_single(url: str) -> Callable[[Callable[[], bool]], int]:
    client = redis.Redis.from_url(url, protocol=2)

    def worker(go: Callable[[], bool]) -> int:
        done = 0
        while go():
            client.set(f"k{done % 100}", "value")
            done += 1
        return done

    return worker


def direct_pipeline(url: str) -> Callable[[Callable[[], bool]], int]:
    client = redis.Redis.from_url(url, protocol=2)

    def worker(go: Callable[[], bool]) -> int:
        done = 0
        while go():
            pipe = client.pipeline(transaction=False)
            for _, key, value in PIPELINE:
                pipe.set(key, value)
            pipe.execute()
            done += 1
        return done

    return worker


def billed_ratio(url: str) -> float:
    """Billed commands over commands sent, for a known mix."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers) as http:
        http.post("/__emulator/reset").raise_for_status()
        http.post("/", json=["MSET", "a", "1", "b", "2"])
        http.post("/pipeline", json=PIPELINE[:10])
        http.post("/multi-exec", json=PIPELINE[:5])
        http.get("/get/a")
        billed = http.get("/__emulator/stats").json()["billed_commands"]
    return float(billed) / (1 + 10 + 5 + 1)


def run(quick: bool = False) -> list[Figure]:
    seconds = 1.0 if quick else 3.0
    figures: list[Figure] = []
    with redis_server() as url:
        baseline_single = rate(direct_single(url), seconds)
        baseline_pipeline = rate(direct_pipeline(url), seconds)
        for backend, label in (("fakeredis", "fakeredis"), (url, "redis-server")):
            with emulator_process(backend) as emulator_url:
                single = rate(rest_single(emulator_url), seconds)
                pipeline = rate(rest_pipeline(emulator_url), seconds)
                billing = billed_ratio(emulator_url) if backend == "fakeredis" else None
                kept = None
                if backend == "fakeredis":
                    headers = {"Authorization": f"Bearer {TOKEN}"}
                    kept = keepalive_cost(emulator_url, "/get/k", headers)
            figures.append(
                Figure(
                    name=f"emulator over {label}: single commands, {THREADS} keep-alive clients",
                    value=round(single),
                    unit="req/s",
                    baseline_name=f"redis-py SET direct to redis-server, {THREADS} threads",
                    baseline=round(baseline_single),
                    target="ratio >= 0.4" if backend == "fakeredis" else "informational",
                    met=single >= 0.4 * baseline_single if backend == "fakeredis" else None,
                    reproduce=REPRODUCE,
                )
            )
            figures.append(
                Figure(
                    name=f"emulator over {label}: 100-command pipelines, {THREADS} clients",
                    value=round(pipeline, 1),
                    unit="req/s",
                    baseline_name="redis-py 100-command pipeline direct to redis-server",
                    baseline=round(baseline_pipeline, 1),
                    target="informational",
                    met=None,
                    reproduce=REPRODUCE,
                    note=f"{round(pipeline * 100)} commands/s",
                )
            )
            if kept is not None:
                figures.append(_keepalive_figure("emulator (GET /get/k)", *kept))
            if billing is not None:
                figures.append(
                    Figure(
                        name="emulator billing: billed / commands sent (MSET, pipeline, tx, GET)",
                        value=billing,
                        unit="ratio",
                        baseline_name="Upstash's rule: 1 per command",
                        baseline=1.0,
                        target="== 1",
                        met=billing == 1.0,
                        reproduce=REPRODUCE,
                    )
                )
    with dev_process() as (dev_url, key):
        failed, sent, what = concurrent_errors(dev_url, key)
        figures.append(
            Figure(
                name=f"continuum dev: {CONCURRENT} concurrent clients (PUT, GET, /health each)",
                value=failed,
                unit="failed requests",
                baseline_name=f"requests sent: {sent}",
                baseline=None,
                target="== 0",
                met=failed == 0,
                reproduce=REPRODUCE,
                note=what,
            )
        )
        figures.append(
            _keepalive_figure(
                "continuum dev (GET /health)", *keepalive_cost(dev_url, "/health", {})
            )
        )
    return figures


def _keepalive_figure(what: str, first: float, kept: float) -> Figure:
    return Figure(
        name=f"{what}: a kept-alive request vs the first on a connection",
        value=round(kept * 1e6),
        unit="us",
        baseline_name="the first request, connect included",
        baseline=round(first * 1e6),
        target="ratio <= 1.5",
        met=kept <= 1.5 * first,
        reproduce=REPRODUCE,
        note="medians of 30 connections x 5 kept-alive requests",
    )


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(figure)
