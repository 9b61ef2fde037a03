"""``continuum migrate`` from a real redis-server into the emulator (over fakeredis and over
a second redis-server): every type byte for byte with its TTL, a hash too big for one
request, the dry run's bill against the one charged, existing keys, and verification.

What landed is read back with plain redis-py on the emulator's own store, not with the
migration's reader, so the copy is checked by code that did not make it."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from continuum.cli.main import main
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.migrate.connection import RedisConnection
from continuum.migrate.copier import Migration, Mismatch
from continuum.migrate.keydata import read_keys
from tests.migrate.conftest import RedisProcess

BIG_HASH_FIELDS = 8000  # x 1.5 KB: about 12 MB, more than one 10 MB request


def fill(r: redis.Redis) -> None:
    """Every type, binary keys and values, TTLs, and keys too big for one request."""
    r.set("str:text", "héllo ✓")
    r.set(b"str:bin:\xff\x00", b"\x00\x01\xfe\xff" * 100, px=120_000)
    r.set("str:big", os.urandom(3 * 1024 * 1024 + 17), ex=3600)
    r.set("str:counter", 41)
    r.hset("hash:small", mapping={"a": "1", b"bin\xff": b"\xfe\x00", "empty": ""})
    r.expire("hash:small", 3600)
    r.hset("hash:big", mapping={f"field:{i:05d}": "v" * 1500 for i in range(BIG_HASH_FIELDS)})
    r.rpush("list", *[f"e{i}" for i in range(2500)], b"\xff\xfe", "e0")
    r.sadd("set", *[f"m{i}" for i in range(1500)], b"\x80\x81")
    r.zadd("zset", {"a": 1.5, "b": -2, "c": 1e100, b"\xff": 3.141592653589793, "d": float("inf")})
    r.pexpire("zset", 90_000)
    for i in range(1, 1206):
        r.xadd("stream", {"n": str(i), "blob": b"\xff" * (i % 3)}, id=f"{i}-1")
    r.xdel("stream", "1205-1")  # the last generated ID is now past the last entry
    r.xgroup_create("stream", "workers", id="100-1")
    r.xgroup_create("stream", "audit", id="0")
    r.xadd("stream:emptied", {"f": "v"}, id="7-0")
    r.xdel("stream:emptied", "7-0")


def snapshot(r: redis.Redis) -> dict[bytes, Any]:
    """Every key's type, content and remaining TTL, as redis-py reads them."""
    out: dict[bytes, Any] = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        if kind == b"string":
            content: Any = r.get(key)
        elif kind == b"hash":
            content = r.hgetall(key)
        elif kind == b"list":
            content = r.lrange(key, 0, -1)
        elif kind == b"set":
            content = r.smembers(key)
        elif kind == b"zset":
            content = r.zrange(key, 0, -1, withscores=True)
        else:
            info = r.xinfo_stream(key)
            groups = sorted((g["name"], g["last-delivered-id"]) for g in r.xinfo_groups(key))
            content = (r.xrange(key), info["last-generated-id"], groups)
        pttl = r.pttl(key)
        # the moment the key expires (monotonic ms), or the -1 of a key that never does
        out[key] = (kind, content, pttl if pttl < 0 else time.monotonic() * 1000 + pttl)
    return out


def assert_same(source: dict[bytes, Any], copied: dict[bytes, Any]) -> None:
    assert sorted(copied) == sorted(source)
    for key, (kind, content, expiry) in source.items():
        their_kind, their_content, their_expiry = copied[key]
        assert (their_kind, their_content) == (kind, content), key
        if expiry < 0:
            assert their_expiry == expiry, key
        else:  # the copy expires when the original does, within 1 s
            assert abs(their_expiry - expiry) <= 1000, (key, their_expiry - expiry)


@pytest.fixture
def env(target: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("UPSTASH_", "CONTINUUM_", "REDIS_URL")):
            monkeypatch.delenv(name)
    target.apply_env(monkeypatch)
    monkeypatch.chdir(tmp_path)  # the default checkpoint folder lands here
    yield


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["migrate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_copies_every_type_byte_for_byte_with_ttls(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(source.client())
    before = snapshot(source.client())
    code, out, err = migrate(capsys, source.url, "--verify")
    assert code == 0, err
    assert_same(before, snapshot(target.redis))
    copied, verified = out.splitlines()
    found = re.fullmatch(
        rf"copied 11 keys \(14\.6 MiB\) from {re.escape(source.url)} to {re.escape(target.url)}; "
        r"this run billed ([\d,]+) commands in \d+ requests",
        copied,
    )
    checked = re.fullmatch(
        r"verified 11 keys: identical in both stores \(([\d,]+) commands billed\)", verified
    )
    assert found and checked, out
    assert int(found[1].replace(",", "")) + int(checked[1].replace(",", "")) == target.billed()
    assert target.redis.keys("continuum:migrate:*") == []
    assert not list(Path(".continuum-migrate").glob("*")), "the checkpoint outlived the run"


def test_a_hash_too_big_for_one_request_is_spread_over_several(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    client = source.client()
    client.hset("hash:big", mapping={f"field:{i:05d}": "v" * 1500 for i in range(BIG_HASH_FIELDS)})
    assert client.memory_usage("hash:big") > 10 * 1024 * 1024
    code, out, err = migrate(capsys, source.url)
    assert code == 0, err
    assert target.redis.hgetall("hash:big") == client.hgetall("hash:big")
    # a marker SET, one EXISTS, then the hash in two transactions, and the marker's DEL
    assert out.endswith(f"this run billed {target.billed()} commands in 5 requests\n")


def test_the_dry_run_bill_is_what_the_real_run_is_charged(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(source.client())
    code, out, err = migrate(capsys, source.url, "--dry-run")
    assert code == 0, err
    assert target.billed() == 0 and target.redis.dbsize() == 0
    lines = out.splitlines()
    assert lines[0] == (f"dry run: nothing was written. Source {source.url}, keys matching '*': 11")
    assert lines[1].startswith(
        "to copy: 11 keys (2 hash, 1 list, 1 set, 2 stream, 4 string, 1 zset), "
    )
    predicted = int(lines[2].split()[2].replace(",", ""))
    assert lines[3].startswith("cost on pay-as-you-go: $0.00 for the commands and $0.00 for")
    code, out, err = migrate(capsys, source.url)
    assert code == 0, err
    assert target.billed() == predicted


def test_match_copies_only_the_matching_keys(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    client = source.client()
    client.mset({"session:1": "a", "session:2": "b", "user:1": "c"})
    code, out, err = migrate(capsys, source.url, "--match", "session:*")
    assert code == 0, err
    assert sorted(target.redis.keys()) == [b"session:1", b"session:2"]
    assert out.startswith("copied 2 keys (")


def test_existing_keys_stop_the_run_before_anything_is_written(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source.client().mset({"a": "1", "b": "2", "c": "3"})
    target.redis.set("b", "the target's own")
    code, out, err = migrate(capsys, source.url)
    assert code == 1
    assert err == (
        "continuum migrate: 1 of the keys to copy already exist in the target ('b'); nothing "
        "was written. Rerun with --replace to overwrite them, or --skip-existing to keep the "
        "target's values.\n"
    )
    assert sorted(target.redis.keys()) == [b"b"] and target.redis.get("b") == b"the target's own"
    code, out, err = migrate(capsys, source.url, "--skip-existing")
    assert code == 0, err
    assert target.redis.mget("a", "b", "c") == [b"1", b"the target's own", b"3"]
    assert "  1 existed in the target (kept)\n" in out


def test_replace_overwrites_existing_keys_of_any_type(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source.client().rpush("jobs", "one", "two")
    source.client().set("name", "new")
    target.redis.hset("jobs", "stale", "1")
    target.redis.rpush("name", "stale")
    code, out, err = migrate(capsys, source.url, "--replace", "--verify")
    assert code == 0, err
    assert target.redis.lrange("jobs", 0, -1) == [b"one", b"two"]
    assert target.redis.get("name") == b"new"
    assert "verified 2 keys: identical in both stores" in out


def test_verification_names_each_difference(
    source: RedisProcess, target: EmulatorHandle, env: None
) -> None:
    client = source.client()
    client.hset("h", mapping={"a": "1"})
    client.set("s", "v", ex=600)
    client.set("gone", "v")
    from continuum.cache import UpstashCache

    migration = Migration(RedisConnection(source.url), UpstashCache(fallback=False), target="t")
    checkpoint = migration.run(migration.open())
    assert migration.verify(checkpoint) == []
    target.redis.hset("h", "a", "2")
    target.redis.persist("s")
    target.redis.delete("gone")
    assert sorted(migration.verify(checkpoint), key=lambda m: m.key) == [
        Mismatch(b"gone", "missing in the target"),
        Mismatch(b"h", "content differs (hash in the source, hash in the target)"),
        Mismatch(b"s", "no TTL in the target, but the source's key expires"),
    ]


def test_the_progress_bar_counts_keys(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source.client().mset({f"k{i}": i for i in range(30)})
    code, _, err = migrate(capsys, source.url, "--progress", "always")
    assert code == 0, err
    assert "copying: 100%" in err and "30/30" in err
    code, _, err = migrate(capsys, source.url, "--dry-run", "--progress", "never")
    assert code == 0 and err == ""


def test_keys_over_the_size_limit_are_reported_and_the_rest_copied(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    client = source.client()
    client.set("small", "x" * 100)
    client.set("big", "x" * 2000)
    client.rpush("long", *["y" * 100] * 20)
    code, out, err = migrate(capsys, source.url, "--max-key-size", "1000")
    assert code == 1, err
    assert sorted(target.redis.keys()) == [b"small"]
    assert sorted(out.splitlines()[1:]) == [  # in SCAN order, which is the server's
        "  too_large: 'big': over 1,000 bytes",
        "  too_large: 'long': over 1,000 bytes",
    ]


def test_keys_in_the_way_are_checked_again_on_the_next_run(
    source: RedisProcess, target: EmulatorHandle, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source.client().mset({"a": "1", "b": "2"})
    target.redis.set("b", "in the way")
    assert migrate(capsys, source.url)[0] == 1
    target.redis.delete("b")
    code, _, err = migrate(capsys, source.url)
    assert code == 0, err
    assert target.redis.mget("a", "b") == [b"1", b"2"]


def test_a_key_whose_type_changes_while_it_is_read_is_read_again(source: RedisProcess) -> None:
    client = source.client()
    client.rpush("k", *[f"e{i}" for i in range(2500)])  # three LRANGE pages
    connection = RedisConnection(source.url)
    steps: list[int] = []

    def execute(commands: list[Any]) -> list[Any]:
        steps.append(len(commands))
        if len(steps) == 2:  # another client replaces the list between two pages
            client.delete("k")
            client.hset("k", mapping={"now": "a hash"})
        return connection.execute(commands)

    (data,) = read_keys([b"k"], execute, limit=10**6)
    assert data is not None
    assert (data.kind, data.items) == ("hash", [(b"now", b"a hash")])
