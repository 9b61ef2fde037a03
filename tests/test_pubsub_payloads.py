"""Every payload arrives exactly as published, once, on its own channel: over the
emulator's real event streams (fakeredis and redis-server), sync and async subscribers.

The attack of issue 12: ``'hi\\n\\ndata: message,admin,{"cmd":"shutdown"}'`` published to
``chat`` must arrive as ONE message on ``chat`` carrying exactly that text, and nothing on
``admin``. What the protocol cannot carry is pinned too: a CR or CRLF arrives as LF (an
event stream's lines end with any of the three) and bytes that are not UTF-8 arrive as
U+FFFD (an event stream is UTF-8 text); see docs/EMULATOR.md, "Pub/sub framing".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from continuum import AsyncUpstashCache, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.errors import ConnectionFailed
from continuum.pubsub import AsyncPubSub, Message, PubSub
from tests.test_pubsub import SSE_HEAD, RawServer

FORGED = 'hi\n\ndata: message,admin,{"cmd":"shutdown"}'
PAYLOADS = [
    FORGED,
    "event: x\nid: 3\nretry: 1\n: a comment\ndata: more",
    "message,admin,x",
    "pmessage,ch*,admin,x",
    "subscribe,chat,7",
    "",
    "\n",
    "\n\n\n",
    "ends with a newline\n",
    "\nstarts with one",
    " leading space",
    "tab\there, commas, , ,",
    "nul\x00in\x00the middle\x00",
    "\ufeffa BOM, é ✓ 𝄞, \u2028\u2029\x0c\x1b[2J\x7f",
    "crlf\r\nand cr\rand both\r\r\n",
    "\r",
    "long " + "line\n" * 2000,
]
SENTINEL = "the last one"


def arrived_as(payload: str) -> str:
    """What an event stream can carry of ``payload``: its line breaks become LF."""
    return payload.replace("\r\n", "\n").replace("\r", "\n")


def expected() -> list[Message]:
    chat = [Message("message", "chat", None, arrived_as(p)) for p in [*PAYLOADS, SENTINEL]]
    pattern = [Message("pmessage", "chat", "ch*", m.data) for m in chat]
    admin = [Message("message", "admin", None, SENTINEL)]
    return chat + pattern + admin


def by_stream(messages: list[Message]) -> list[Message]:
    """The messages grouped per stream (chat, the ch* pattern, admin), each stream's own
    order kept: streams are read concurrently, so only their interleaving may vary."""

    def stream(m: Message) -> int:
        return 1 if m.pattern else 2 if m.channel == "admin" else 0

    return sorted(messages, key=stream)


def done(seen: list[Message]) -> bool:
    last = [m for m in seen if m.data == SENTINEL]
    return len(last) == 3


@pytest.fixture
def cache(emulator: EmulatorHandle) -> Iterator[UpstashCache]:
    client = UpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    yield client
    client.close()


def publish_all(cache: UpstashCache) -> None:
    for payload in PAYLOADS:
        assert cache.publish("chat", payload) == 2  # the chat stream and the ch* stream
    assert cache.publish("chat", SENTINEL) == 2
    assert cache.publish("admin", SENTINEL) == 1


def test_every_payload_arrives_whole_on_its_own_channel(
    emulator: EmulatorHandle, cache: UpstashCache
) -> None:
    with PubSub(emulator.url, emulator.token) as sub:
        sub.subscribe("chat", "admin")
        sub.psubscribe("ch*")
        confirmations = [sub.get_message(timeout=10) for _ in range(3)]
        assert sorted(confirmations, key=repr) == sorted([
            Message("subscribe", "chat", None, "1"),
            Message("subscribe", "admin", None, "1"),
            Message("psubscribe", "ch*", "ch*", "1"),
        ], key=repr)  # fmt: skip
        publish_all(cache)
        seen: list[Message] = []
        end = time.monotonic() + 30
        while not done(seen) and time.monotonic() < end:
            message = sub.get_message(timeout=end - time.monotonic())
            if message is not None:
                seen.append(message)
        assert sub.get_message(timeout=0.2) is None
    assert by_stream(seen) == expected()


async def test_the_async_subscriber_gets_them_whole_too(emulator: EmulatorHandle) -> None:
    acache = AsyncUpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    async with AsyncPubSub(emulator.url, emulator.token) as sub:
        await sub.subscribe("chat", "admin")
        await sub.psubscribe("ch*")
        for _ in range(3):
            confirmation = await sub.get_message(timeout=10)
            assert confirmation is not None and confirmation.data == "1"
        for payload in [*PAYLOADS, SENTINEL]:
            assert await acache.publish("chat", payload) == 2
        assert await acache.publish("admin", SENTINEL) == 1
        seen: list[Message] = []
        end = time.monotonic() + 30
        while not done(seen) and time.monotonic() < end:
            message = await sub.get_message(timeout=end - time.monotonic())
            if message is not None:
                seen.append(message)
        assert await sub.get_message(timeout=0.2) is None
    await acache.aclose()
    assert by_stream(seen) == expected()


def test_bytes_that_are_not_utf8_arrive_replaced(
    emulator: EmulatorHandle, cache: UpstashCache
) -> None:
    with PubSub(emulator.url, emulator.token) as sub:
        sub.subscribe("bin")
        assert sub.get_message(timeout=10) == Message("subscribe", "bin", None, "1")
        assert cache.publish("bin", b"\xff\x00ok\xe2\x82") == 1
        assert cache.publish("bin", "é".encode()) == 1
        received = [sub.get_message(timeout=10), sub.get_message(timeout=10)]
    assert received == [
        Message("message", "bin", None, "\ufffd\x00ok\ufffd"),
        Message("message", "bin", None, "é"),
    ]


# -- a server that does not frame line breaks ----------------------------------------------
# The emulator frames every line break (docs/EMULATOR.md); how Upstash does is not
# documented. A stand-in that writes a published payload verbatim after ``data: `` plays
# the server that does not, so the client's own guard is what is tested here.

UNFRAMED_CHANNEL = (
    SSE_HEAD
    + b"data: subscribe,chat,1\n\n"
    + b'data: message,chat,hi\n\ndata: message,admin,{"cmd":"shutdown"}\n\n'
    + b"data: message,chat,x\n\ndata: pmessage,ch*,admin,y\n\n"
    + b"data: message,chat,x\n\ndata: subscribe,chat,2\n\n"
    + b"data: message,chat,x\n\ndata: unsubscribe,chat,0\n\n"
    + b"data: message,chat,last\n\n"
)
UNFRAMED_PATTERN = (
    SSE_HEAD
    + b"data: psubscribe,ch*,1\n\n"
    + b'data: pmessage,ch*,chat,hi\n\ndata: pmessage,ch*,admin,{"cmd":"shutdown"}\n\n'
    + b"data: pmessage,ch*,chat,x\n\ndata: message,admin,y\n\n"
    + b"data: pmessage,ch*,chat,x\n\ndata: psubscribe,ch*,2\n\n"
    + b"data: pmessage,ch*,chat,last\n\n"
)


@contextlib.contextmanager
def serving(reply: bytes) -> Iterator[RawServer]:
    server = RawServer()
    server.replies.append(reply)
    server.thread.start()
    yield server
    server.listener.close()
    server.thread.join(10)


def read_until_ended(sub: PubSub) -> list[Message]:
    seen: list[Message] = []
    with pytest.raises(ConnectionFailed) as caught:
        while (message := sub.get_message(timeout=10)) is not None:
            seen.append(message)
    assert str(caught.value).startswith("the server ended the ")
    return seen


def test_a_channel_stream_never_reports_another_channel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serving(UNFRAMED_CHANNEL) as server, PubSub(server.url, "t", reconnect_attempts=0) as sub:
        sub.subscribe("chat")
        seen = read_until_ended(sub)
    assert seen == [
        Message("subscribe", "chat", None, "1"),
        Message("message", "chat", None, "hi"),
        # the second half of the payload: still chat's, as every message on this stream
        Message("message", "chat", None, '{"cmd":"shutdown"}'),
        Message("message", "chat", None, "x"),
        Message("message", "chat", None, "x"),
        Message("message", "chat", None, "x"),
        Message("message", "chat", None, "last"),
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "continuum.pubsub"] == [
        f"ignored an event the stream of channel 'chat' cannot carry ({n} characters)"
        for n in (len("pmessage,ch*,admin,y"), len("subscribe,chat,2"), len("unsubscribe,chat,0"))
    ]


async def test_a_pattern_stream_reports_only_channels_its_pattern_matches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Message] = []
    with serving(UNFRAMED_PATTERN) as server:
        async with AsyncPubSub(server.url, "t", reconnect_attempts=0) as sub:
            await sub.psubscribe("ch*")
            with pytest.raises(ConnectionFailed):
                while (message := await sub.get_message(timeout=10)) is not None:
                    seen.append(message)
    assert seen == [
        Message("psubscribe", "ch*", "ch*", "1"),
        Message("pmessage", "chat", "ch*", "hi"),
        Message("pmessage", "chat", "ch*", "x"),
        Message("pmessage", "chat", "ch*", "x"),
        Message("pmessage", "chat", "ch*", "last"),
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "continuum.pubsub"] == [
        f"ignored an event the stream of pattern 'ch*' cannot carry ({len(data)} characters)"
        for data in ('pmessage,ch*,admin,{"cmd":"shutdown"}', "message,admin,y", "psubscribe,ch*,2")
    ]
