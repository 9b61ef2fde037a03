"""Throughput of the local Upstash emulator over loopback, against redis-py on the same Redis.

The emulator runs as users run it (``continuum emulator`` in its own process, so server
and client do not share a GIL) in front of fakeredis and in front of a redis-server.
A few client threads, each with a keep-alive ``httpx.Client``, send for a fixed time:

- single commands (``POST /`` with ``["SET", k, v]``): requests per second;
- 100-command pipelines (``POST /pipeline``): requests per second (x100 commands).

The baseline for both is redis-py talking RESP straight to the same redis-server with
the same number of threads (single commands, then 100-command pipelines). The ratio says
what the REST layer costs; it is informational, since Upstash's own REST hop is what a
function pays in production. Two more figures: the emulator's keep-alive server against
werkzeug's development server running the same app (why ``emulator/serving.py`` exists),
and the billing counter: commands billed over commands sent (target 1).

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


# The same app under werkzeug's development server (what the CLI used before: it closes
# every connection and waits 10 ms for stray input), to show what the own server buys.
_WERKZEUG = (
    "import sys\n"
    "from werkzeug.serving import make_server\n"
    "from continuum.emulator.app import EmulatorApp\n"
    "from continuum.emulator.backend import Backend\n"
    "server = make_server('127.0.0.1', 0, EmulatorApp(Backend('fakeredis'), token=sys.argv[1]),"
    " threaded=True)\n"
    "print(f'UPSTASH_REDIS_REST_URL=http://127.0.0.1:{server.server_port}', flush=True)\n"
    "server.serve_forever()\n"
)


@contextmanager
def emulator_process(backend: str, *, werkzeug: bool = False) -> Iterator[str]:
    """``continuum emulator`` in a subprocess; yields its URL."""
    args = [sys.executable, "-m", "continuum.cli.main", "emulator", "--port", "0", "--token", TOKEN]
    if werkzeug:
        args = [sys.executable, "-c", _WERKZEUG, TOKEN]
    elif backend != "fakeredis":
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


def rest_single(url: str) -> Callable[[Callable[[], bool]], int]:
    def worker(go: Callable[[], bool]) -> int:
        done = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            while go():
                http.post("/", json=["SET", f"k{done % 100}", "value"]).raise_for_status()
                done += 1
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
            figures.append(
                Figure(
                    name=f"emulator over {label}: single commands, {THREADS} keep-alive clients",
                    value=round(single),
                    unit="req/s",
                    baseline_name=f"redis-py SET direct to redis-server, {THREADS} threads",
                    baseline=round(baseline_single),
                    target="informational",
                    met=None,
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
            if backend == "fakeredis":
                with emulator_process(backend, werkzeug=True) as werkzeug_url:
                    werkzeug_single = rate(rest_single(werkzeug_url), seconds)
                figures.append(
                    Figure(
                        name="emulator server vs werkzeug dev server: single commands (fakeredis)",
                        value=round(single),
                        unit="req/s",
                        baseline_name=(
                            "the same app under werkzeug.serving (closes every connection)"
                        ),
                        baseline=round(werkzeug_single),
                        target=">= baseline",
                        met=single >= werkzeug_single,
                        reproduce=REPRODUCE,
                    )
                )
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
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(figure)
