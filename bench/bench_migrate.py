"""Keys per second copied by ``continuum migrate``, against a plain redis-py copy.

Three private redis-servers: the source, the one behind the emulator (``continuum
emulator --redis-url``, in its own process as users run it) and the baseline's target.
The source holds a mix of keys (strings of 200 bytes, small hashes and lists, one key in
seven binary). Each copy starts from an empty target:

- **ours:** the migration engine (what ``continuum migrate`` runs), source -> Upstash REST:
  SCAN, the existence check, then transactions of up to 8 MiB with their progress markers
  and checkpoint writes;
- **baseline:** redis-py straight from one redis-server to another over TCP: SCAN, then
  DUMP + PTTL and RESTORE ... REPLACE in pipelines of 500 keys (no checkpoint, no check,
  nothing billed).

The ratio is what going through Upstash's REST API and keeping the copy resumable costs.
A second figure is the bill: commands billed per key copied (ideal: 1, one write each).

    python -m bench.bench_migrate         # or: python -m bench.run --only migrate
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from bench.bench_emulator import TOKEN, _free_port, emulator_process
from bench.report import Figure

REPRODUCE = "python -m bench.run --only migrate"
_BATCH = 500


@contextmanager
def private_redis() -> Iterator[redis.Redis]:
    """A redis-server of our own (nothing on disk), and a client on it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("bench_migrate needs redis-server on PATH (apt install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port, protocol=2)
        try:
            deadline = time.monotonic() + 10
            while True:  # redis-server has no readiness signal but answering
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield client
        finally:
            client.close()
            process.terminate()
            process.wait(10)


def fill(client: redis.Redis, keys: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        if i % 20 == 0:
            pipe.hset(f"h:{i}", mapping={f"f{j}": f"value-{j}" for j in range(20)})
        elif i % 20 == 1:
            pipe.rpush(f"l:{i}", *[f"item-{j}" for j in range(20)])
        elif i % 7 == 0:
            pipe.set(f"b:{i}", os.urandom(200), ex=3600)
        else:
            pipe.set(f"s:{i}", f"{i:08d}" + "x" * 192, ex=3600 if i % 3 else None)
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()


def copy_ours(source: redis.Redis, url: str) -> tuple[float, int]:
    """Seconds the engine takes, and the commands it billed."""
    from continuum.cache import UpstashCache
    from continuum.migrate.connection import RedisConnection
    from continuum.migrate.copier import Migration

    port = source.connection_pool.connection_kwargs["port"]
    target = UpstashCache(mode="rest", rest_url=url, rest_token=TOKEN, fallback=False,
                          timeout=60, budget=240)  # fmt: skip
    conn = RedisConnection(f"redis://127.0.0.1:{port}/0")
    with tempfile.TemporaryDirectory() as folder:  # the checkpoint writes are part of the cost
        checkpoint = Path(folder) / "checkpoint.json"
        migration = Migration(conn, target, target=url, checkpoint=checkpoint)
        started = time.perf_counter()
        migration.run(migration.open())
        seconds = time.perf_counter() - started
    conn.close()
    target.close()
    return seconds, migration.billed


def copy_baseline(source: redis.Redis, target: redis.Redis) -> float:
    """Seconds for SCAN + DUMP/PTTL + RESTORE REPLACE, 500 keys per pipeline."""
    started = time.perf_counter()
    cursor = 0
    while True:
        cursor, keys = source.scan(cursor, count=1000)
        for at in range(0, len(keys), _BATCH):
            batch = keys[at : at + _BATCH]
            read = source.pipeline(transaction=False)
            for key in batch:
                read.dump(key)
                read.pttl(key)
            replies = read.execute()
            write = target.pipeline(transaction=False)
            for key, payload, pttl in zip(batch, replies[::2], replies[1::2], strict=True):
                if payload is not None:
                    write.restore(key, max(pttl, 0), payload, replace=True)
            write.execute()
        if cursor == 0:
            return time.perf_counter() - started


def run(quick: bool = False) -> list[Figure]:
    keys = 5_000 if quick else 50_000
    with private_redis() as source, private_redis() as behind, private_redis() as baseline:
        fill(source, keys)
        port = behind.connection_pool.connection_kwargs["port"]
        with emulator_process(f"redis://127.0.0.1:{port}/0") as url:
            ours, billed = copy_ours(source, url)
            copied = behind.dbsize()
        theirs = copy_baseline(source, baseline)
        if copied != keys or baseline.dbsize() != keys:
            raise RuntimeError(f"copied {copied} and {baseline.dbsize()} of {keys} keys")
    note = (
        f"{keys:,} keys (90% strings of 200 bytes, one in seven binary; 5% hashes and 5% lists "
        "of 20 items), loopback; ours goes through the emulator's REST API in its own process"
    )
    return [
        Figure(
            name="continuum migrate: keys copied per second",
            value=keys / ours,
            unit="keys/s",
            baseline_name="redis-py SCAN + DUMP/RESTORE between two redis-servers",
            baseline=keys / theirs,
            target="informational: REST and a resumable copy cost, measured",
            met=None,
            reproduce=REPRODUCE,
            note=note,
        ),
        Figure(
            name="continuum migrate: commands billed per key copied",
            value=billed / keys,
            unit="commands/key",
            baseline_name="one write per key",
            baseline=1.0,
            target="<= 1.2 (binary values bill 2: EVAL and its call)",
            met=billed / keys <= 1.2,
            reproduce=REPRODUCE,
            note=note,
        ),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure)
