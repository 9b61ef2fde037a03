"""cache.publish() reaches a subscriber opened with cache.pubsub() (REST server-sent events)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from continuum import AsyncUpstashCache, ConfigurationError, UpstashCache
from continuum.pubsub import Message


def test_published_message_reaches_the_subscriber(emulator: Any) -> None:
    cache = UpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    with cache.pubsub() as sub:
        sub.subscribe("ws:room-1")
        confirm = sub.get_message(timeout=5)
        assert confirm == Message("subscribe", "ws:room-1", None, "1")
        deadline = time.monotonic() + 5
        while cache.publish("ws:room-1", {"event": "joined"}) == 0:
            assert time.monotonic() < deadline, "the subscriber never registered"
        message = sub.get_message(timeout=5)
    # a value that is not a str travels as the codec stores it: JSON text
    assert message == Message("message", "ws:room-1", None, '{"event":"joined"}')


async def test_async_published_message_reaches_the_subscriber(emulator: Any) -> None:
    cache = AsyncUpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    subscriber = cache.pubsub()
    try:
        await subscriber.subscribe("ws:room-2")
        confirm = await subscriber.get_message(timeout=5)
        assert confirm == Message("subscribe", "ws:room-2", None, "1")
        deadline = time.monotonic() + 5
        while await cache.publish("ws:room-2", "hello") == 0:
            assert time.monotonic() < deadline, "the subscriber never registered"
        message = await subscriber.get_message(timeout=5)
        assert message == Message("message", "ws:room-2", None, "hello")
    finally:
        await subscriber.close()
        await cache.aclose()


def test_pubsub_needs_upstash() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashCache(mode="local").pubsub()
    assert str(caught.value) == (
        "pubsub() subscribes over Upstash REST; it is not available in local mode"
    )
