"""``continuum subscribe`` as a separate process over the emulator's server-sent events:
messages printed as they arrive, ``--count``, patterns, JSON, Ctrl-C and bad settings."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from continuum.cli.main import main
from continuum.config import UpstashConfig
from continuum.rest.executor import RestExecutor


@pytest.fixture
def env(upstash_emulator) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UPSTASH_", "CONTINUUM_", "PYTEST_"))
    }
    return {**base, **upstash_emulator.env}


@pytest.fixture
def publisher(upstash_emulator) -> Iterator[RestExecutor]:
    config = UpstashConfig.from_env(upstash_emulator.env)
    executor = RestExecutor(config.database(), config)
    yield executor
    executor.close()


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start the subscriber and return once it says it is subscribed (bounded wait)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuum.cli.main", "subscribe", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            line = proc.stderr.readline()
            if "subscribed to" in line or not line:
                break
    assert "subscribed to" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
    return proc


def publish(publisher: RestExecutor, channel: str, message: str) -> None:
    reply = publisher.execute([["PUBLISH", channel, message]], write=True)[0]
    # >= 1: a subscriber that exited in an earlier test may not be noticed gone yet
    assert isinstance(reply, int) and reply >= 1, f"PUBLISH reached {reply!r} subscribers"


def test_prints_messages_as_they_arrive_then_stops_at_count(
    env: dict[str, str], publisher: RestExecutor
) -> None:
    proc = start(env, "chat", "--count", "2")
    assert proc.stdout is not None
    publish(publisher, "chat", "hello, world")
    assert proc.stdout.readline() == "chat: hello, world\n"  # before the next one is sent
    publish(publisher, "chat", "second")
    out, _ = proc.communicate(timeout=30)
    assert out == "chat: second\n"
    assert proc.returncode == 0


def test_pattern_subscription_as_json(env: dict[str, str], publisher: RestExecutor) -> None:
    proc = start(env, "events:*", "--pattern", "--count", "1", "--json")
    publish(publisher, "events:signup", '{"user": 42}')
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert json.loads(out) == {
        "channel": "events:signup",
        "pattern": "events:*",
        "data": '{"user": 42}',
    }


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_stops_cleanly_and_counts_what_was_printed(
    env: dict[str, str], publisher: RestExecutor, signum: int
) -> None:
    proc = start(env, "room")
    assert proc.stdout is not None
    publish(publisher, "room", "one")
    assert proc.stdout.readline() == "room: one\n"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "stopped after 1 message" in err and "Traceback" not in err


def test_wrong_token_is_one_line(
    upstash_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", upstash_emulator.url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "definitely-wrong-token")
    assert main(["subscribe", "chat", "--count", "1"]) == 1
    err = capsys.readouterr().err
    assert "AuthenticationFailed" in err and "definitely-wrong-token" not in err


def test_without_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("UPSTASH_", "CONTINUUM_")):
            monkeypatch.delenv(name)
    assert main(["subscribe", "chat"]) == 2
    assert "no Upstash database configured" in capsys.readouterr().err


def test_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "chat", "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err


@pytest.fixture
def ending_stream() -> Iterator[str]:
    """A loopback SSE server: the first stream confirms, sends one message and ends; every
    later stream (the subscriber reconnecting) ends at once."""
    import http.server
    import itertools
    import threading

    streams = itertools.count()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            if next(streams) == 0:
                self.wfile.write(b"data: subscribe,news,1\n\ndata: message,news,last words\n\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_stream_that_stays_ended_is_reported_after_what_arrived(
    ending_stream: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", ending_stream)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "some-token-value-1234")
    assert main(["subscribe", "news"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "news: last words\n"
    assert "ConnectionFailed" in captured.err and "Traceback" not in captured.err


FORGED = 'hi\n\ndata: message,admin,{"cmd":"shutdown"}'


def test_a_multi_line_message_prints_whole_and_cannot_pass_for_two(
    env: dict[str, str], publisher: RestExecutor
) -> None:
    """Every continuation line is indented and a message's first line never is; control
    characters (a terminal's cursor moves, CR) are shown escaped, not obeyed; a channel
    name that could blur the line's start is quoted."""
    proc = start(env, "chat", "we ird: name", "--count", "4")
    publish(publisher, "chat", FORGED)
    publish(publisher, "chat", "chat: posing\nas two")
    publish(publisher, "chat", "\x1b[1A\x1b[2Kerased?\x00\ttab\u202eevil\u2028end\n")
    publish(publisher, "we ird: name", "x")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == (
        "chat: hi\n"
        "  \n"
        '  data: message,admin,{"cmd":"shutdown"}\n'
        "chat: chat: posing\n"
        "  as two\n"
        "chat: \\x1b[1A\\x1b[2Kerased?\\x00\ttab\\u202eevil\\u2028end\n"
        "  \n"
        '"we ird: name": x\n'
    )


def test_json_lines_carry_a_multi_line_message_exactly(
    env: dict[str, str], publisher: RestExecutor
) -> None:
    proc = start(env, "ch*", "--pattern", "--json", "--count", "2")
    publish(publisher, "chat", FORGED)
    publish(publisher, "chat", "nul\x00 and \u2028")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        '{"channel": "chat", "pattern": "ch*", "data": "hi\\n\\ndata: message,admin,'
        '{\\"cmd\\":\\"shutdown\\"}"}',
        '{"channel": "chat", "pattern": "ch*", "data": "nul\\u0000 and \\u2028"}',
    ]
    assert [json.loads(line)["data"] for line in out.splitlines()] == [FORGED, "nul\x00 and \u2028"]
