"""Interop with the official ``upstash-redis`` Python SDK against the same emulator.

A value we write is read by the SDK as the JSON text ``@upstash/redis`` would parse, and
what the SDK writes (JSON text, plain strings, counters) reads back here as values.
"""

from __future__ import annotations

import json
from typing import Any

from upstash_redis import Redis

from core import UpstashCache


def clients(emulator: Any) -> tuple[UpstashCache, Redis]:
    ours = UpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    theirs = Redis(url=emulator.url, token=emulator.token)
    return ours, theirs


def test_sdk_reads_what_we_write(emulator: Any) -> None:
    ours, theirs = clients(emulator)
    ours.set("user:1", {"name": "Alice", "roles": ["admin"]}, ttl=60)
    ours.set("greeting", "héllo")
    ours.increment("visits", 3)
    assert json.loads(theirs.get("user:1")) == {"name": "Alice", "roles": ["admin"]}
    assert json.loads(theirs.get("greeting")) == "héllo"
    assert theirs.get("visits") == "3"
    assert 50 <= theirs.ttl("user:1") <= 60


def test_we_read_what_the_sdk_writes(emulator: Any) -> None:
    ours, theirs = clients(emulator)
    theirs.set("obj", json.dumps({"a": 1, "b": [True, None]}))
    theirs.set("text", "plain, not JSON")
    theirs.incr("counter")
    theirs.set("number", "42")
    assert ours.get("obj") == {"a": 1, "b": [True, None]}
    assert ours.get("text") == "plain, not JSON"
    assert ours.increment("counter") == 2
    assert ours.get("number") == 42


def test_pipelines_and_deletes_are_seen_by_both(emulator: Any) -> None:
    ours, theirs = clients(emulator)
    with ours.pipeline() as pipe:
        for i in range(5):
            pipe.set(f"memory:{i}", {"i": i}, ex=1800)
    assert sorted(theirs.keys("memory:*")) == [f"memory:{i}" for i in range(5)]
    theirs.set("memory:extra", "x")
    assert ours.delete_prefix("memory:") == 6
    assert theirs.keys("memory:*") == []
