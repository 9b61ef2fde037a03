"""``continuum migrate`` when something is wrong: each gets one clear line on stderr, no
traceback, the right exit code, and never a password or a token."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuum.cli.main import main
from continuum.emulator.pytest_plugin import EmulatorHandle
from tests.migrate.conftest import RedisProcess, RedisServers


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("UPSTASH_", "CONTINUUM_", "REDIS_URL")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["migrate", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name the Redis to copy from: continuum migrate redis://..."),
        (["https://eu1-x.upstash.io"], "https:// is not a Redis URL (that is an Upstash REST "
         "URL: it goes in UPSTASH_REDIS_REST_URL); expected redis://host:port/db or rediss:// "
         "for TLS"),
        (["redis://:hunter2-secret@10.0.0.5:6379/0"], "redis://:****@10.0.0.5:6379/0 is plain "
         "TCP to another machine: the password and every value would travel unencrypted. Use "
         "rediss:// (TLS), or allow it explicitly (allow_insecure=True, or --allow-insecure on "
         "the command line) for a private network."),
        (["redis://localhost/0", "--request-size", "1000"],
         "--request-size must be from 65,536 to 8,388,608 bytes"),
        (["redis://localhost/0", "--verify-sample", "0"], "--verify-sample must be at least 1"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(
    clean: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = migrate(capsys, *args)
    assert (code, out, err) == (2, "", f"continuum migrate: {message}\n")
    assert "hunter2" not in err


def test_no_upstash_database_configured(
    clean: None, source: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = migrate(capsys, source.url)
    assert (code, err) == (
        2,
        "continuum migrate: no Upstash database configured: set UPSTASH_REDIS_REST_URL and "
        "UPSTASH_REDIS_REST_TOKEN (the database to copy into)\n",
    )


def test_a_dead_source(
    clean: None, target: EmulatorHandle, dead_port: int, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    target.apply_env(monkeypatch)
    code, _, err = migrate(capsys, f"redis://:pw-secret@127.0.0.1:{dead_port}/0")
    assert (code, err) == (
        1,
        f"continuum migrate: cannot read the source: the source Redis at "
        f"redis://:****@127.0.0.1:{dead_port}/0 is unreachable: Error 111 connecting to "
        f"127.0.0.1:{dead_port}. Connection refused.\n",
    )
    assert target.billed() == 0


def test_a_wrong_source_password(
    clean: None, target: EmulatorHandle, redis_server_factory: RedisServers,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    server = redis_server_factory.start("--requirepass", "the-right-one")
    target.apply_env(monkeypatch)
    try:
        code, _, err = migrate(capsys, f"redis://:a-wrong-one@127.0.0.1:{server.port}/0")
    finally:
        server.stop()
    assert (code, err) == (
        1,
        f"continuum migrate: cannot read the source: the source Redis at "
        f"redis://:****@127.0.0.1:{server.port}/0 refused the credentials in its URL\n",
    )


def test_a_wrong_token_is_named_but_never_printed(
    clean: None, source: RedisProcess, target: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    source.client().set("k", "v")
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", target.url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "not-the-token-AbCdEfGh1234")
    code, out, err = migrate(capsys, source.url)
    assert (code, out, err) == (
        1,
        "",
        "continuum migrate: Upstash refused the token (HTTP 401); check UPSTASH_REDIS_REST_TOKEN\n",
    )
    assert target.redis.dbsize() == 0


def test_a_read_only_token(
    clean: None, source: RedisProcess, target: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    source.client().set("k", "v")
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", target.url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", target.readonly_token)
    code, _, err = migrate(capsys, source.url)
    assert (code, err) == (
        1,
        "continuum migrate: the Upstash token is read-only; use the database's standard REST "
        "token.\n",
    )
    assert target.redis.dbsize() == 0


def test_upstash_going_away_mid_run_says_how_to_resume(
    clean: None, source: RedisProcess, dead_port: int, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    source.client().set("k", "v")
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", f"http://127.0.0.1:{dead_port}")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "a-token-for-nobody-0000")
    code, _, err = migrate(capsys, source.url, "--timeout", "0.5")
    assert code == 1
    assert err.startswith("continuum migrate: stopped: ")
    assert err.endswith(
        ". Everything copied so far is recorded: rerun the same command to resume "
        f"(checkpoint: {next(Path('.continuum-migrate').glob('*.json'))}).\n"
    )
    assert "a-token-for-nobody" not in err


def test_a_second_run_of_the_same_migration_is_refused_while_one_works(
    clean: None, source: RedisProcess, target: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    source.client().set("k", "v")
    target.apply_env(monkeypatch)
    checkpoint = Path("run.json")
    holder = subprocess.Popen(  # another process, holding the run's lock
        [sys.executable, "-c", "import sys; from filelock import FileLock\n"
         "lock = FileLock('run.lock'); lock.acquire(); print('held', flush=True)\n"
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, _, err = migrate(capsys, source.url, "--checkpoint", str(checkpoint))
    finally:
        holder.communicate("")
    assert (code, err) == (
        1,
        "continuum migrate: another run of this migration is in progress (its checkpoint "
        "is run.json)\n",
    )
    assert target.billed() == 0
    code, _, err = migrate(capsys, source.url, "--checkpoint", str(checkpoint))
    assert code == 0, err
    assert target.redis.get("k") == b"v"
    assert sorted(os.listdir(".")) == []
