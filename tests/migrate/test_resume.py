"""A migration killed halfway (SIGKILL of the CLI process) and run again: nothing lost,
nothing repeated. "Repeated" is measured on the emulator's billed counter: the killed run
and the resumed one together are billed exactly what one uninterrupted run is, plus the
one GET that reads the progress marker back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.migrate.checkpoint import Checkpoint
from tests.migrate.conftest import RedisProcess
from tests.migrate.test_copy import assert_same, snapshot

KEYS = 30_000


def fill_many(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(KEYS):
        value = os.urandom(150) if i % 7 == 0 else f"value-{i}-" + "x" * 150
        pipe.set(f"key:{i:05d}", value, ex=3600 if i % 3 == 0 else None)
    for n in range(4):  # each spans several 64 KiB requests
        pipe.hset(f"hash:{n}", mapping={f"f{i}": "v" * 200 for i in range(1500)})
        pipe.rpush(f"list:{n}", *[os.urandom(64) for _ in range(2000)])
    pipe.execute()


def flush_behind_the_dead_run(target: EmulatorHandle) -> None:
    """Empty the target after every request of a killed run has been carried out.

    The killed run may have left one batch in flight, which the server still carries out
    (and with it the batch's progress marker); a flush that overtakes it leaves a marker
    behind. The run sends one request at a time, so once two reads through the server
    in a row find the database empty after a flush, nothing of the run is left to land.
    """
    empty_reads = 0
    for _ in range(20):
        target.flush()
        empty_reads = 0
        for _ in range(2):
            reply = httpx.post(
                target.url, json=["DBSIZE"], headers={"Authorization": f"Bearer {target.token}"}
            )
            empty_reads += reply.json() == {"result": 0}
        if empty_reads == 2:
            return
    raise AssertionError("the killed run's last request kept landing after the flush")


def command(source: RedisProcess) -> list[str]:
    return [sys.executable, "-m", "continuum.cli.main", "migrate", source.url,
            "--request-size", str(64 * 1024), "--progress", "never"]  # fmt: skip


def environment(target: EmulatorHandle) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    return {**clean, **target.env}


def position(folder: Path) -> int:
    """How many keys the checkpoint says are copied (-1 before it exists)."""
    for path in folder.glob(".continuum-migrate/*.json"):
        return int(json.loads(path.read_text())["position"][0])
    return -1


@pytest.mark.slow
def test_killed_halfway_and_resumed_loses_nothing_and_repeats_nothing(
    source: RedisProcess, target: EmulatorHandle, tmp_path: Path
) -> None:
    fill_many(source.client())
    env = environment(target)

    whole = tmp_path / "uninterrupted"
    whole.mkdir()
    done = subprocess.run(command(source), cwd=whole, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    uninterrupted = target.billed()
    target.fresh()

    folder = tmp_path / "interrupted"
    folder.mkdir()
    proc = subprocess.Popen(command(source), cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while position(folder) < KEYS // 3:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.005)  # watching a file another process writes: nothing to wait on
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert 0 < target.redis.dbsize() < KEYS, "the kill did not land halfway"
    assert target.redis.keys("continuum:migrate:*"), "the progress marker is in place"
    killed = target.billed()

    resumed = subprocess.run(command(source), cwd=folder, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.startswith("resuming the run of .continuum-migrate/")
    assert target.billed() == uninterrupted + 1  # + the GET of the progress marker
    assert killed < uninterrupted
    assert_same(snapshot(source.client()), snapshot(target.redis))
    assert not list(folder.glob(".continuum-migrate/*"))


def test_a_lost_marker_is_reported_instead_of_guessing(
    source: RedisProcess, target: EmulatorHandle, tmp_path: Path
) -> None:
    fill_many(source.client())
    env = environment(target)
    proc = subprocess.Popen(command(source), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while position(tmp_path) < 1000:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    flush_behind_the_dead_run(target)  # as if the database had been emptied meanwhile
    again = subprocess.run(command(source), cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert again.returncode == 1
    assert again.stderr == (
        "continuum migrate: the target no longer holds this run's progress marker (it "
        "expires after 7 days, or the database was flushed): the copy cannot resume exactly. "
        "Pass --restart (with --replace) to copy again.\n"
    )


def test_a_write_cut_short_by_a_kill_leaves_nothing_behind_the_finished_run(
    tmp_path: Path,
) -> None:
    checkpoint = Checkpoint.create(
        tmp_path / "run.json", source="redis://s", target="https://t", match="*", keys=[b"k"]
    )
    # what _atomic_write leaves when the process dies between writing and renaming
    (tmp_path / "run.json.k2j4h1.tmp").write_text("{")
    (tmp_path / "run.keys.x9a8b7.tmp").write_bytes(b"")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run.json", "run.json.k2j4h1.tmp", "run.keys", "run.keys.x9a8b7.tmp",
    ]  # fmt: skip
    checkpoint.remove()
    assert list(tmp_path.iterdir()) == []
