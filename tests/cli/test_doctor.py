"""``continuum doctor`` against the emulator (standard and read-only tokens), a dead port,
and the seed's configuration pitfalls. Every finding must say what to do, and the token
must never be printed."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest

from continuum.cli.main import main
from continuum.config import mask_token

TOKEN_VARS = ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("UPSTASH_", "CONTINUUM_")):
            monkeypatch.delenv(name)
    yield


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", "--pings", "3", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthy_emulator(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upstash_emulator.apply_env(monkeypatch)
    code, out = doctor(capsys)
    assert code == 0, out
    assert "standard (read-write): a test write succeeded" in out
    assert "3 PINGs: p50" in out and "p95" in out
    assert "closed" in out
    assert "Everything looks right." in out
    assert upstash_emulator.token not in out
    assert upstash_emulator.token[-4:] in out  # masked: the last four characters only


def test_doctor_write_leaves_nothing_behind_for_long(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upstash_emulator.apply_env(monkeypatch)
    assert doctor(capsys)[0] == 0
    from continuum.config import UpstashConfig
    from continuum.rest.executor import RestExecutor

    config = UpstashConfig.from_env()
    executor = RestExecutor(config.database(), config)
    keys = executor.execute([["KEYS", "continuum:doctor:*"]], write=False)[0]
    assert isinstance(keys, list) and len(keys) <= 1
    if keys:
        ttl = executor.execute([["PTTL", keys[0]]], write=False)[0]
        assert isinstance(ttl, int) and 0 < ttl <= 1000
    executor.close()


def test_read_only_token_is_recognised(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", upstash_emulator.url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", upstash_emulator.readonly_token)
    code, out = doctor(capsys)
    assert code == 0
    assert "read-only token" in out and "use the standard token" in out
    assert upstash_emulator.readonly_token not in out
    assert doctor(capsys, "--strict")[0] == 1


def test_wrong_token(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", upstash_emulator.url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "not-the-right-token-at-all")
    code, out = doctor(capsys)
    assert code == 1
    assert "AuthenticationFailed" in out and "the token was refused" in out
    assert "not-the-right-token-at-all" not in out


def test_dead_port_fails_with_what_to_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", f"http://127.0.0.1:{dead_port()}")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "some-token-value-1234")
    code, out = doctor(capsys, "--timeout", "1")
    assert code == 1
    assert "ConnectionFailed" in out and "check the URL's host and port" in out
    assert "1 problem" in out


def test_json_output(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upstash_emulator.apply_env(monkeypatch)
    code, out = doctor(capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"primary_first", "primary_p50", "primary_p95"} <= set(doc["latency_ms"])
    assert doc["latency_ms"]["primary_p50"] <= doc["latency_ms"]["primary_p95"]
    levels = {f["topic"]: f["level"] for f in doc["findings"]}
    assert levels["token primary"] == "ok" and levels["circuit primary"] == "ok"


@pytest.mark.parametrize(
    ("env", "expected", "fix"),
    [
        (
            {"UPSTASH_REDIS_URL": "rediss://default:secretpw@eu1-x.upstash.io:6379"},
            "only UPSTASH_REDIS_URL is set",
            "set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN",
        ),
        (
            {"CONTINUUM_CACHE_MODE": "redis"},
            "asks for the Redis protocol",
            "CONTINUUM_CACHE_MODE=rest",
        ),
        (
            {
                "UPSTASH_REDIS_REST_URL": "http://eu1-x.upstash.io",
                "UPSTASH_REDIS_REST_TOKEN": "AXxxSecretToken1234",
            },
            "plain http:// to eu1-x.upstash.io",
            "use https://eu1-x.upstash.io",
        ),
        (
            {
                "UPSTASH_REDIS_REST_URL": "https://eu1-x.upstash.io",
                "UPSTASH_REDIS_REST_TOKEN": '"AXxxSecretToken1234"',
            },
            "surrounding quotes or whitespace",
            "without quotes",
        ),
        (
            {
                "UPSTASH_REDIS_REST_URL": "https://eu1-x.upstash.io",
                "UPSTASH_REDIS_REST_TOKEN": "AXxxSecretToken1234\n",
            },
            "surrounding quotes or whitespace",
            "without quotes, spaces or a newline",
        ),
        (
            {
                "UPSTASH_REDIS_REST_URL": "https://eu1-x.upstash.io/get/foo",
                "UPSTASH_REDIS_REST_TOKEN": "AXxxSecretToken1234",
            },
            "carries a path or query (/get/foo)",
            "use only scheme and host: https://eu1-x.upstash.io",
        ),
        (
            {"UPSTASH_REDIS_REST_URL": "https://eu1-x.upstash.io"},
            "UPSTASH_REDIS_REST_TOKEN is missing",
            "set it",
        ),
        (
            {
                "UPSTASH_REDIS_REST_URL": "eu1-x.upstash.io",
                "UPSTASH_REDIS_REST_TOKEN": "AXxxSecretToken1234",
            },
            "is not an https:// URL",
            "add the scheme: https://eu1-x.upstash.io",
        ),
        (
            {
                "UPSTASH_REDIS_REST_URL": "rediss://eu1-x.upstash.io:6379",
                "UPSTASH_REDIS_REST_TOKEN": "AXxxSecretToken1234",
            },
            "is a Redis-protocol URL",
            "use the https:// REST URL",
        ),
    ],
)
def test_seed_pitfalls_fail_with_a_fix(
    env: dict[str, str],
    expected: str,
    fix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out = doctor(capsys)
    assert code == 1, out
    assert expected in out and fix in out
    assert "Traceback" not in out
    assert "SecretToken" not in out and "secretpw" not in out
    assert "not tried: fix the problems above first" in out


def test_disabled_fallback_is_a_warning(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upstash_emulator.apply_env(monkeypatch)
    monkeypatch.setenv("CONTINUUM_CACHE_FALLBACK", "false")
    code, out = doctor(capsys)
    assert code == 0
    assert "CONTINUUM_CACHE_FALLBACK is off" in out and "1 warning" in out
    assert doctor(capsys, "--strict")[0] == 1


def test_nothing_configured_warns_about_local_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor(capsys)
    assert code == 0
    assert "no Upstash database configured" in out and "UPSTASH_REDIS_REST_URL" in out


def test_config_file_is_read(
    upstash_emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: os.PathLike[str],
) -> None:
    path = os.path.join(tmp_path, "continuum.json")
    monkeypatch.setenv("MY_TOKEN", upstash_emulator.token)
    with open(path, "w") as fh:
        json.dump({"databases": {"primary": {"url": upstash_emulator.url,
                                             "token_env": "MY_TOKEN"}}}, fh)  # fmt: skip
    code, out = doctor(capsys, "--config", path)
    assert code == 0, out
    assert "standard (read-write)" in out
    assert upstash_emulator.token not in out


def test_unreadable_config_file(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    code, out = doctor(capsys, "--config", "/nonexistent/continuum.json")
    assert code == 1
    assert "cannot read config file" in out


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--pings", "0"]) == 2
    assert "--pings" in capsys.readouterr().err


def test_credentials_in_the_url_are_flagged_and_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "https://default:hunter2pw@eu1-x.upstash.io")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "AXxxSecretToken1234")
    code, out = doctor(capsys)
    assert code == 1
    assert "carries credentials" in out and "https://eu1-x.upstash.io" in out
    assert "hunter2pw" not in out


def test_every_named_database_is_checked(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upstash_emulator.apply_env(monkeypatch)
    monkeypatch.setenv("UPSTASH_SESSIONS_REST_URL", upstash_emulator.url)
    monkeypatch.setenv("UPSTASH_SESSIONS_REST_TOKEN", upstash_emulator.readonly_token)
    code, out = doctor(capsys, "--json")
    assert code == 0
    levels = {f["topic"]: f["level"] for f in json.loads(out)["findings"]}
    assert levels["token primary"] == "ok"
    assert levels["token sessions"] == "warn"  # the read-only token went to sessions
    assert levels["ping sessions"] == "ok"


def test_a_server_that_never_answers_is_reported_within_the_budget(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The port accepts connections (the kernel's backlog) but nothing ever answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("UPSTASH_REDIS_REST_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "some-token-value-1234")
        code, out = doctor(capsys, "--timeout", "0.3")
    assert code == 1
    assert "CacheTimeout" in out and "did not answer in time" in out


def test_local_mode_with_a_database_configured_is_a_warning(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upstash_emulator.apply_env(monkeypatch)
    monkeypatch.setenv("CONTINUUM_CACHE_MODE", "local")
    code, out = doctor(capsys)
    assert code == 0
    assert "the configured Upstash database is not used" in out and "1 warning" in out


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("CONTINUUM_TIMEOUT", "abc",
         "CONTINUUM_TIMEOUT must be a positive number of seconds, not 'abc'"),
        ("CONTINUUM_RATE_LIMIT", "-3", "CONTINUUM_RATE_LIMIT must be a positive integer, not '-3'"),
        ("CONTINUUM_MAX_BODY", "1MB", "CONTINUUM_MAX_BODY must be a positive integer, not '1MB'"),
    ],
)  # fmt: skip
def test_a_reference_api_setting_the_function_would_refuse_is_a_problem(
    upstash_emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    error: str,
) -> None:
    """The handler reads these at cold start and refuses to start: doctor must not call
    the same environment fine (it said "Everything looks right." before)."""
    upstash_emulator.apply_env(monkeypatch)
    monkeypatch.setenv(name, value)
    code, out = doctor(capsys)
    assert code == 1, out
    assert out.splitlines() == [
        "continuum doctor",
        f"  ok  token  present ({mask_token(upstash_emulator.token)})",
        f"FAIL  api    {error}",
        "             -> the reference API (Lambda, Vercel, Workers, continuum dev) refuses to"
        " start with it: fix or unset it",
        "1 problem, 0 warnings.",
    ]  # fmt: skip
