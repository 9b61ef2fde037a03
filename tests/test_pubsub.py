"""Subscribing over server-sent events, against the emulator and against hostile streams."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis

from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    ResponseTooLarge,
    ServerError,
)
from continuum.pubsub import AsyncPubSub, Message, PubSub, SseParser, to_message
from continuum.sse import Lines


def publish(emulator: EmulatorHandle, channel: str, message: str) -> int:
    response = httpx.post(
        f"{emulator.url}/publish/{quote(channel, safe='')}/{quote(message, safe='')}",
        headers={"Authorization": f"Bearer {emulator.token}"},
    )
    response.raise_for_status()
    result = response.json()["result"]
    assert isinstance(result, int)
    return result


def wait_for(sub: PubSub, kind: str, timeout: float = 10.0) -> Message:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        message = sub.get_message(timeout=end - time.monotonic())
        if message is not None and message.type == kind:
            return message
    raise AssertionError(f"no {kind} message within {timeout}s")


def test_subscriber_receives_published_messages(emulator: EmulatorHandle) -> None:
    with PubSub(emulator.url, emulator.token) as sub:
        sub.subscribe("chat,room")  # a comma in the name must not split the payload
        confirm = wait_for(sub, "subscribe")
        assert confirm.channel == "chat,room" and confirm.data == "1"
        assert publish(emulator, "chat,room", "hi, there") == 1
        message = wait_for(sub, "message")
        assert message == Message("message", "chat,room", None, "hi, there")


def test_pattern_subscription_reports_pattern_and_channel(emulator: EmulatorHandle) -> None:
    with PubSub(emulator.url, emulator.token) as sub:
        sub.psubscribe("news.*")
        wait_for(sub, "psubscribe")
        publish(emulator, "news.sport", "goal")
        assert wait_for(sub, "pmessage") == Message("pmessage", "news.sport", "news.*", "goal")


def test_listen_yields_from_several_streams_until_closed(emulator: EmulatorHandle) -> None:
    sub = PubSub(emulator.url, emulator.token)
    sub.subscribe("a", "b")
    seen: list[Message] = []
    done = threading.Event()

    def consume() -> None:
        for message in sub.listen():
            seen.append(message)
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    end = time.monotonic() + 10
    while sum(m.type == "subscribe" for m in seen) < 2 and time.monotonic() < end:
        time.sleep(0.01)
    publish(emulator, "a", "1")
    publish(emulator, "b", "2")
    while sum(m.type == "message" for m in seen) < 2 and time.monotonic() < end:
        time.sleep(0.01)
    sub.close()  # wakes the blocked listener
    assert done.wait(10)
    thread.join(10)
    assert {(m.channel, m.data) for m in seen if m.type == "message"} == {("a", "1"), ("b", "2")}


def test_wrong_token_is_an_authentication_error_without_the_token(
    emulator: EmulatorHandle,
) -> None:
    with (
        PubSub(emulator.url, "wrong-secret-token") as sub,
        pytest.raises(AuthenticationFailed) as info,
    ):
        sub.subscribe("chat")
    assert "wrong-secret-token" not in str(info.value)
    assert "wrong-secret-token" not in repr(sub)


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        PubSub("http://example.upstash.io", "t")
    assert str(caught.value) == (
        "refusing plain http:// to example.upstash.io: the token would cross the network "
        "unencrypted; use https:// (http is allowed only for loopback, e.g. the local emulator)"
    )
    with pytest.raises(ConfigurationError) as caught:
        PubSub("https://example.upstash.io", "")
    assert str(caught.value) == "a REST token is needed to subscribe"


async def test_async_subscriber(emulator: EmulatorHandle) -> None:
    async with AsyncPubSub(emulator.url, emulator.token) as sub:
        await sub.subscribe("jobs")
        first = await sub.get_message(timeout=10)
        assert first is not None and first.type == "subscribe"
        await asyncio.to_thread(publish, emulator, "jobs", "run")
        message = await sub.get_message(timeout=10)
        assert message == Message("message", "jobs", None, "run")
        assert await sub.get_message(timeout=0.01) is None


# -- hostile or unusual streams, from a raw socket server --------------------------------


class RawServer:
    """An HTTP server that answers connection N with the bytes of ``replies[N]``, then
    closes its port once every reply is spent (later connects are refused)."""

    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with self.listener:
            for reply in self.replies:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                with conn:
                    self.requests.append(conn.recv(65536))
                    conn.sendall(reply)


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server  # the test queues its replies, then starts the thread
    server.listener.close()
    server.thread.join(10)


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def test_crlf_comments_and_multiline_data(raw_server: RawServer) -> None:
    raw_server.replies.append(
        SSE_HEAD
        + b": keepalive\r\n\r\n"
        + b"data: subscribe,ch,1\r\n\r\n"
        + b"data: message,ch,line one\r\ndata: line two\r\nid: 7\r\n\r\n"
    )
    raw_server.thread.start()
    with PubSub(raw_server.url, "t") as sub:
        sub.subscribe("ch")
        assert wait_for(sub, "subscribe").data == "1"
        assert wait_for(sub, "message").data == "line one\nline two"
        # the server closed the stream and then its port: said once reconnecting failed
        with pytest.raises(ConnectionFailed) as caught:
            sub.get_message(timeout=10)
        assert str(caught.value) == given_up(raw_server, "subscribe")


def html_page(status: bytes) -> bytes:
    body = b"<html>Bad gateway</html>"
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: text/html\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def test_html_error_page_is_a_server_error(raw_server: RawServer) -> None:
    raw_server.replies.append(html_page(b"502 Bad Gateway"))
    raw_server.thread.start()
    with PubSub(raw_server.url, "t") as sub, pytest.raises(ServerError) as info:
        sub.subscribe("ch")
    assert info.value.status == 502


def given_up(server: RawServer, kind: str) -> str:
    """What a reader meets once the server ended the stream and closed its port."""
    where = f"{kind} on {server.url.removeprefix('http://')}"
    return (
        f"the server ended the {where} stream; 3 reconnect attempt(s) failed, "
        f"the last: could not reach {where} (ConnectError)"
    )


def end_the_emulators_streams(redis_url: str) -> None:
    """Cut the emulator's subscriptions at redis-server, so it ends every open stream."""
    with redis.Redis.from_url(redis_url) as server:
        assert server.client_kill_filter(_type="pubsub") >= 1


def publish_until_heard(emulator: EmulatorHandle, channel: str, message: str) -> None:
    """Publish until a subscriber hears it (PUBLISH counts receivers); bounded."""
    end = time.monotonic() + 10
    while publish(emulator, channel, message) == 0:
        assert time.monotonic() < end, "the stream was not reopened within 10 s"
        time.sleep(0.02)  # polling a condition PUBLISH reports, with a bound


@pytest.mark.parametrize("emulator", ["redis"], indirect=True)
def test_a_stream_the_server_ends_is_reopened_and_resubscribed(
    emulator: EmulatorHandle, redis_url: str
) -> None:
    with PubSub(emulator.url, emulator.token) as sub:
        sub.subscribe("ch")
        assert wait_for(sub, "subscribe") == Message("subscribe", "ch", None, "1")
        assert publish(emulator, "ch", "one") == 1
        assert sub.get_message(timeout=10) == Message("message", "ch", None, "one")
        end_the_emulators_streams(redis_url)
        publish_until_heard(emulator, "ch", "two")
        # the resubscription's confirmation is not repeated: the next message is "two"
        assert sub.get_message(timeout=10) == Message("message", "ch", None, "two")


def test_a_failed_reconnect_attempt_is_followed_by_another(raw_server: RawServer) -> None:
    """The emulator cannot fail one attempt and then answer: a stand-in that speaks its
    stream format (see ``_event_line`` in the emulator) plays that part."""
    raw_server.replies += [
        SSE_HEAD + b"data: subscribe,ch,1\n\ndata: message,ch,one\n\n",
        html_page(b"502 Bad Gateway"),  # a failed attempt: the next one still comes
        SSE_HEAD + b"data: subscribe,ch,1\n\ndata: message,ch,two\n\n",
    ]
    raw_server.thread.start()
    with PubSub(raw_server.url, "t") as sub:
        sub.subscribe("ch")
        got = [sub.get_message(timeout=10) for _ in range(3)]
        assert got == [
            Message("subscribe", "ch", None, "1"),
            Message("message", "ch", None, "one"),
            Message("message", "ch", None, "two"),
        ]
        with pytest.raises(ConnectionFailed) as caught:
            sub.get_message(timeout=10)
        assert str(caught.value) == given_up(raw_server, "subscribe")
    assert [r.split(b"\r\n")[0] for r in raw_server.requests] == [
        b"POST /subscribe/ch HTTP/1.1"
    ] * 3


def test_a_refused_token_on_reconnect_is_not_retried(raw_server: RawServer) -> None:
    raw_server.replies += [
        SSE_HEAD + b"data: subscribe,ch,1\n\n",
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        b'Content-Length: 26\r\n\r\n{"error":"Unauthorized."}\n',
    ]
    raw_server.thread.start()
    with PubSub(raw_server.url, "t") as sub:
        sub.subscribe("ch")
        assert wait_for(sub, "subscribe").data == "1"
        with pytest.raises(AuthenticationFailed) as caught:
            sub.get_message(timeout=10)  # a retry would meet a closed port instead
        where = f"subscribe on {raw_server.url.removeprefix('http://')}"
        assert str(caught.value) == f"Upstash refused the token for {where} (HTTP 401)"
    assert len(raw_server.requests) == 2


def test_no_reconnect_when_asked_for_none(raw_server: RawServer) -> None:
    raw_server.replies.append(SSE_HEAD + b"data: subscribe,ch,1\n\n")
    raw_server.thread.start()
    with PubSub(raw_server.url, "t", reconnect_attempts=0) as sub:
        sub.subscribe("ch")
        assert wait_for(sub, "subscribe").data == "1"
        with pytest.raises(ConnectionFailed) as caught:
            sub.get_message(timeout=10)
        where = f"subscribe on {raw_server.url.removeprefix('http://')}"
        assert str(caught.value) == f"the server ended the {where} stream"
    with pytest.raises(ConfigurationError) as caught_config:
        PubSub(raw_server.url, "t", reconnect_attempts=-1)
    assert str(caught_config.value) == "reconnect_attempts cannot be negative"


@pytest.mark.parametrize("emulator", ["redis"], indirect=True)
async def test_async_stream_is_reopened_and_resubscribed(
    emulator: EmulatorHandle, redis_url: str
) -> None:
    async with AsyncPubSub(emulator.url, emulator.token) as sub:
        await sub.psubscribe("j.*")
        first = await sub.get_message(timeout=10)
        assert first == Message("psubscribe", "j.*", "j.*", "1")
        await asyncio.to_thread(publish, emulator, "j.a", "one")
        assert await sub.get_message(timeout=10) == Message("pmessage", "j.a", "j.*", "one")
        await asyncio.to_thread(end_the_emulators_streams, redis_url)
        await asyncio.to_thread(publish_until_heard, emulator, "j.b", "two")
        assert await sub.get_message(timeout=10) == Message("pmessage", "j.b", "j.*", "two")


def test_parser_rules() -> None:
    parser = SseParser()
    lines = ["\ufeffdata:a", "data:  b", "event: x", ":c", "", "", "data", ""]
    events = [parser.feed(line) for line in lines]
    assert events == [None, None, None, None, "a\n b", None, None, ""]
    assert to_message("subscribe,x,y,2", "x,y", False) == Message("subscribe", "x,y", None, "2")


async def test_async_listen_ends_when_closed(emulator: EmulatorHandle) -> None:
    sub = AsyncPubSub(emulator.url, emulator.token)
    await sub.psubscribe("jobs.*")
    seen: list[Message] = []

    async def consume() -> None:
        async for message in sub.listen():
            seen.append(message)

    task = asyncio.create_task(consume())
    await asyncio.to_thread(publish_when_subscribed, emulator, seen, "jobs.a", "go")
    await sub.close()
    await asyncio.wait_for(task, 10)
    assert Message("pmessage", "jobs.a", "jobs.*", "go") in seen


def publish_when_subscribed(
    emulator: EmulatorHandle, seen: list[Message], channel: str, data: str
) -> None:
    end = time.monotonic() + 10
    while not any(m.type == "psubscribe" for m in seen) and time.monotonic() < end:
        time.sleep(0.01)
    publish(emulator, channel, data)
    while not any(m.type == "pmessage" for m in seen) and time.monotonic() < end:
        time.sleep(0.01)


_SIGNAL_TO_STREAM_THREAD = """
import signal, sys, threading
from continuum.pubsub import PubSub

class Stop(Exception):
    pass

def on_signal(signum, frame):
    raise Stop

signal.signal(signal.SIGUSR1, on_signal)
sub = PubSub(sys.argv[1], sys.argv[2])
sub.subscribe("quiet")
assert sub.get_message(10).type == "subscribe"
stream = next(t for t in threading.enumerate() if t is not threading.main_thread())
# what the OS may do with a process-directed Ctrl-C: hand it to the stream thread
threading.Timer(0.2, signal.pthread_kill, (stream.ident, signal.SIGUSR1)).start()
try:
    for message in sub.listen():
        print("unexpected", message)
except Stop:
    print("interrupted")
finally:
    sub.close()
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX thread signals")
def test_a_signal_taken_by_a_stream_thread_still_interrupts_listen(
    emulator: EmulatorHandle,
) -> None:
    """Python runs handlers only in the main thread, and a lock wait there is woken only
    by a signal delivered to it: listen() must not block in one endless wait."""
    done = subprocess.run(
        [sys.executable, "-c", _SIGNAL_TO_STREAM_THREAD, emulator.url, emulator.token],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.stdout == "interrupted\n", done.stderr


def test_a_line_that_never_ends_closes_the_subscription_instead_of_filling_memory(
    raw_server: RawServer,
) -> None:
    raw_server.replies.append(
        SSE_HEAD + b"data: subscribe,ch,1\n\n" + b"data: message,ch," + b"x" * 300_000
    )
    raw_server.thread.start()
    with PubSub(raw_server.url, "t", max_event_size=100_000) as sub:
        sub.subscribe("ch")
        assert wait_for(sub, "subscribe").data == "1"
        with pytest.raises(ResponseTooLarge) as caught:
            sub.get_message(timeout=10)
    assert len(raw_server.requests) == 1  # not reopened: the server would do it again
    where = f"subscribe on {raw_server.url.removeprefix('http://')}"
    assert str(caught.value) == (
        f"the {where} stream sent an event over 100000 characters; the subscription was closed"
    )


async def test_an_event_of_endless_data_lines_is_refused_by_the_async_reader(
    raw_server: RawServer,
) -> None:
    raw_server.replies.append(
        SSE_HEAD + b"data: subscribe,ch,1\n\n" + b"data: message,ch,\n" + b"data: yyyy\n" * 50_000
    )
    raw_server.thread.start()
    async with AsyncPubSub(raw_server.url, "t", max_event_size=100_000) as sub:
        await sub.subscribe("ch")
        first = await sub.get_message(timeout=10)
        assert first is not None and first.type == "subscribe"
        with pytest.raises(ResponseTooLarge) as caught:
            await sub.get_message(timeout=10)
    where = f"subscribe on {raw_server.url.removeprefix('http://')}"
    assert str(caught.value) == (
        f"the {where} stream sent an event over 100000 characters; the subscription was closed"
    )


@pytest.mark.parametrize("split", range(1, 40))
def test_lines_split_anywhere_between_chunks_parse_the_same(split: int) -> None:
    """CRLF, CR and LF endings, a CRLF cut in two, and characters ``str.splitlines``
    would wrongly split on (form feed, U+2028) inside a message."""
    raw = "data: message,ch,a\x0cb\u2028c\r\n\r\ndata: message,ch,é\r\rdata: x\n\n".encode()
    lines = Lines(1000, "test")
    parser = SseParser()
    events = [
        data
        for chunk in (raw[:split], raw[split:])
        for line in lines.feed(chunk)
        if (data := parser.feed(line)) is not None
    ]
    assert events == ["message,ch,a\x0cb\u2028c", "message,ch,é", "x"]
