"""``continuum invalidate`` against the emulator: what is deleted, what is kept, progress,
dry runs, and the confirmation that guards broad patterns (at a real pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from continuum.cli.main import main
from continuum.config import UpstashConfig
from continuum.rest.executor import RestExecutor


@pytest.fixture
def db(upstash_emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RestExecutor]:
    for name in list(os.environ):
        if name.startswith(("UPSTASH_", "CONTINUUM_")):
            monkeypatch.delenv(name)
    upstash_emulator.apply_env(monkeypatch)
    config = UpstashConfig.from_env()
    executor = RestExecutor(config.database(), config)
    yield executor
    executor.close()


def seed(db: RestExecutor, *keys: str) -> None:
    db.execute([["SET", k, "v"] for k in keys], write=True)


def keys(db: RestExecutor) -> set[str]:
    reply = db.execute([["KEYS", "*"]], write=False)[0]
    assert isinstance(reply, list)
    return {k.decode() for k in reply if isinstance(k, bytes)}


def invalidate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["invalidate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_deletes_only_the_matching_keys_and_reports_progress(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, *[f"user:1:{i}" for i in range(60)], "user:2:a", "user:10", "session:1")
    code, out, err = invalidate(capsys, "user:1:*", "--count", "7")
    assert code == 0, err
    assert keys(db) == {"user:2:a", "user:10", "session:1"}
    assert "deleted 60 keys matching 'user:1:*'" in out
    assert "[########################] 100% scanned ~63/63 keys, matched 60, deleted 60" in err


def test_dry_run_lists_matches_and_deletes_nothing(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "query:a", "query:b", "other")
    code, out, err = invalidate(capsys, "query:*", "--dry-run")
    assert code == 0
    assert sorted(out.split()) == ["query:a", "query:b"]
    assert "would delete 2 keys" in err
    assert keys(db) == {"query:a", "query:b", "other"}


def test_prefix_is_literal_so_glob_characters_match_themselves(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "a*b:1", "a*b:2", "axb:1", "a[b]:1")
    assert invalidate(capsys, "--prefix", "a*b:")[0] == 0
    assert keys(db) == {"axb:1", "a[b]:1"}
    assert invalidate(capsys, "--prefix", "a[b]")[0] == 0
    assert keys(db) == {"axb:1"}


def test_broad_pattern_without_a_terminal_is_refused(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "k1", "k2", "session:u1")
    for pattern in ("*", "?1", "[a-z]*", "[^!]*", "*1"):
        code, _, err = invalidate(capsys, pattern)
        assert (code, err) == (
            2,
            f"continuum invalidate: {pattern!r} can match every key in the database; refusing "
            "without confirmation (stdin is not a terminal). Re-run with --yes, or --dry-run "
            "to see what matches.\n",
        )
    code, _, err = invalidate(capsys, "--layer", "sessions", "*")
    assert (code, err) == (
        2,
        "continuum invalidate: '*' can match every key in the 'sessions' layer; refusing "
        "without confirmation (stdin is not a terminal). Re-run with --yes, or --dry-run "
        "to see what matches.\n",
    )
    assert keys(db) == {"k1", "k2", "session:u1"}
    assert invalidate(capsys, "k*")[0] == 0, "a literal start is not broad"
    assert keys(db) == {"session:u1"}


def test_broad_pattern_with_yes_deletes(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "k1", "k2", "x")
    code, out, _ = invalidate(capsys, "*", "--yes")
    assert code == 0 and "deleted 3 keys" in out
    assert keys(db) == set()


def test_broad_dry_run_needs_no_confirmation(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "k1")
    code, out, _ = invalidate(capsys, "*", "--dry-run")
    assert code == 0 and out.split() == ["k1"]


def run_at_terminal(env: dict[str, str], answer: str, *args: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, answer its prompt, return (code, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum.cli.main", "invalidate", *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    assert proc.stderr is not None
    prompt = b""
    deadline = time.monotonic() + 30
    while b"Type" not in prompt and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            prompt += chunk
    assert b'Type "yes"' in prompt, prompt
    os.write(master, answer.encode() + b"\n")
    _, rest = proc.communicate(timeout=30)
    os.close(master)
    return proc.returncode, (prompt + rest).decode()


def test_confirmation_prompt_at_a_terminal(db: RestExecutor) -> None:
    seed(db, "k1", "k2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    code, err = run_at_terminal(env, "no", "*")
    assert code == 1 and err.endswith("Nothing deleted.\n"), err
    assert keys(db) == {"k1", "k2"}
    code, err = run_at_terminal(env, "yes", "*")
    assert code == 0, err
    assert keys(db) == set()


def test_read_only_token_is_explained(
    db: RestExecutor,
    upstash_emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(db, "user:1:a")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", upstash_emulator.readonly_token)
    code, _, err = invalidate(capsys, "user:1:*")
    assert code == 1
    assert "read-only" in err and upstash_emulator.readonly_token not in err
    assert keys(db) == {"user:1:a"}


def test_without_upstash_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("UPSTASH_", "CONTINUUM_")):
            monkeypatch.delenv(name)
    code, _, err = invalidate(capsys, "user:*")
    assert code == 2 and "no Upstash database configured" in err


def test_unreachable_database_stops_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "some-token-value-1234")
    code, _, err = invalidate(capsys, "user:*")
    assert code == 1 and "ConnectionFailed" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [[""], ["user:*", "--count", "0"]])
def test_bad_input(db: RestExecutor, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = invalidate(capsys, *args)
    assert code == 2 and err.startswith("continuum invalidate: ")


def test_layer_scopes_the_pattern_to_its_prefix(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "query:u1:a", "query:u1:b", "query:u2:a", "memory:u1:a", "u1:a")
    code, out, _ = invalidate(capsys, "--layer", "query", "u1:*")
    assert code == 0 and "deleted 2 keys matching 'query:u1:*'" in out
    assert keys(db) == {"query:u2:a", "memory:u1:a", "u1:a"}


def test_a_whole_layer_needs_yes_and_an_unknown_layer_is_refused(
    db: RestExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, "ws:1", "ws:2", "query:1")
    assert invalidate(capsys, "--layer", "websocket", "*")[0] == 2
    assert keys(db) == {"ws:1", "ws:2", "query:1"}
    assert invalidate(capsys, "--layer", "websocket", "*", "--yes")[0] == 0
    assert keys(db) == {"query:1"}
    code, _, err = invalidate(capsys, "--layer", "nosuch", "*")
    assert (code, err) == (
        2,
        "continuum invalidate: unknown cache layer 'nosuch'; expected one of sessions, query, "
        "memory, ratelimit, federation, websocket\n",
    )
