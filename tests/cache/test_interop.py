"""Interop with the official ``upstash-redis`` Python SDK against the same emulator.

A value we write is read by the SDK as the JSON text ``@upstash/redis`` would parse, and
what the SDK writes (JSON text, plain strings, counters) reads back here as values. The
last test does the same with ``@upstash/redis`` itself, through Node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from upstash_redis import Redis

from continuum import UpstashCache

ROOT = Path(__file__).resolve().parents[2]


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


def test_upstash_js_client_reads_and_writes_our_values(emulator: Any) -> None:
    node = shutil.which("node")
    modules = Path(os.environ.get("CONTINUUM_NODE_MODULES", ROOT / "node_modules"))
    if node is None or not (modules / "@upstash" / "redis").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node and @upstash/redis are needed (./scripts/test runs npm ci)")
        pytest.skip("node or @upstash/redis missing (./scripts/test runs npm ci)")
    ours = UpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    ours.set("py:user", {"name": "Alice", "roles": ["admin"]}, ttl=600)
    ours.set("py:text", "héllo")
    ours.increment("py:count", 5)
    result = subprocess.run(
        [node, str(ROOT / "tests" / "cache" / "interop_js.mjs"), emulator.url, emulator.token],
        capture_output=True, text=True, timeout=90, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["user"] == {"name": "Alice", "roles": ["admin"]}
    assert seen["text"] == "héllo"
    assert seen["count"] == 5
    assert 590 <= seen["ttl"] <= 600
    assert ours.get("js:obj") == {"name": "ada", "tags": ["x", "y"], "n": 1.5}
    assert ours.get("js:text") == "plain words"
    assert ours.increment("js:count") == 42
    assert ours.layer("sessions").get("7") is None
    assert ours.get("js:session") == {"user": 7}
    assert 3590 <= ours.ttl("js:session") <= 3600


def test_read_only_token_writes_raise_permission_denied(emulator: Any) -> None:
    from continuum import PermissionDenied

    reader = UpstashCache(rest_url=emulator.url, rest_token=emulator.readonly_token)
    assert reader.get("anything") is None
    with pytest.raises(PermissionDenied):
        reader.set("k", 1)  # Upstash served it and said no: never a silent fallback


def test_corrupt_stored_bytes_raise_a_decode_error(emulator: Any) -> None:
    from continuum import DecodeError

    theirs = Redis(url=emulator.url, token=emulator.token)
    ours = UpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    ours.execute([["SET", "bomb", b"\x00zthis is not zlib"]])
    with pytest.raises(DecodeError):
        ours.get("bomb")
    theirs.set("fine", "still readable")
    assert ours.get("fine") == "still readable"
