"""The official upstash-redis SDK (sync and asyncio) works against the emulator.

Every test runs on both backends (fakeredis, real redis-server) and with the SDK's base64
response encoding on and off. What the SDK reads back is compared with what redis-py
reads from the same data directly, bypassing HTTP.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError

from continuum.emulator.pytest_plugin import EmulatorHandle

LIMITER_SCRIPT = """#!lua flags=allow-key-locking
local current = redis.call("INCR", KEYS[1])
if current == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
return current
"""


@pytest.fixture(params=["base64", None], ids=["base64", "plain"])
def sdk(request: pytest.FixtureRequest, emulator: EmulatorHandle) -> Redis:
    return Redis(
        emulator.url,
        emulator.token,
        rest_encoding=request.param,
        rest_retries=0,
        allow_telemetry=False,
    )


@pytest.fixture(params=["base64", None], ids=["base64", "plain"])
async def async_sdk(
    request: pytest.FixtureRequest, emulator: EmulatorHandle
) -> AsyncIterator[AsyncRedis]:
    client = AsyncRedis(
        emulator.url,
        emulator.token,
        rest_encoding=request.param,
        rest_retries=0,
        allow_telemetry=False,
    )
    yield client
    await client.close()


def test_strings(sdk: Redis, emulator: EmulatorHandle) -> None:
    assert sdk.set("greeting", "héllo wörld") is True
    assert sdk.get("greeting") == "héllo wörld"
    assert sdk.set("greeting", "other", nx=True) is False
    assert sdk.incr("counter") == 1
    assert sdk.incrby("counter", 41) == 42
    assert sdk.append("greeting", "!") == len("héllo wörld!".encode())
    assert sdk.mset({"a": "1", "b": "2"}) is True
    assert sdk.mget("a", "b", "missing") == ["1", "2", None]
    assert sdk.getrange("greeting", 0, 0) == "h"
    direct = emulator.redis
    assert direct.get("greeting") == "héllo wörld!".encode()
    assert direct.get("counter") == b"42"
    assert direct.mget("a", "b") == [b"1", b"2"]


def test_a_stored_value_OK_is_data_not_status(sdk: Redis, emulator: EmulatorHandle) -> None:
    assert sdk.set("k", "OK") is True
    assert sdk.get("k") == "OK"
    assert emulator.redis.get("k") == b"OK"


def test_hashes(sdk: Redis, emulator: EmulatorHandle) -> None:
    assert sdk.hset("h", values={"name": "ada", "lang": "python"}) == 2
    assert sdk.hget("h", "name") == "ada"
    assert sdk.hincrby("h", "visits", 3) == 3
    assert sdk.hdel("h", "lang") == 1
    assert sdk.hgetall("h") == {"name": "ada", "visits": "3"}
    assert emulator.redis.hgetall("h") == {b"name": b"ada", b"visits": b"3"}


def test_lists(sdk: Redis, emulator: EmulatorHandle) -> None:
    assert sdk.rpush("l", "a", "b", "c") == 3
    assert sdk.lpush("l", "z") == 4
    assert sdk.lrange("l", 0, -1) == ["z", "a", "b", "c"]
    assert sdk.lpop("l") == "z"
    assert sdk.llen("l") == 3
    assert emulator.redis.lrange("l", 0, -1) == [b"a", b"b", b"c"]


def test_sets(sdk: Redis, emulator: EmulatorHandle) -> None:
    assert sdk.sadd("s", "x", "y", "z") == 3
    assert sdk.sismember("s", "y") is True
    assert sdk.srem("s", "z") == 1
    assert sorted(sdk.smembers("s")) == ["x", "y"]
    assert emulator.redis.smembers("s") == {b"x", b"y"}


def test_sorted_sets(sdk: Redis, emulator: EmulatorHandle) -> None:
    assert sdk.zadd("z", {"a": 1, "b": 2.5, "c": 3}) == 3
    assert sdk.zincrby("z", 10, "a") == 11
    assert sdk.zscore("z", "b") == 2.5
    assert sdk.zrange("z", 0, -1) == ["b", "c", "a"]
    assert sdk.zrange("z", 0, -1, withscores=True) == [("b", 2.5), ("c", 3.0), ("a", 11.0)]
    assert sdk.zrank("z", "a") == 2
    assert emulator.redis.zrange("z", 0, -1, withscores=True) == [
        (b"b", 2.5),
        (b"c", 3.0),
        (b"a", 11.0),
    ]


def test_expiry(sdk: Redis, emulator: EmulatorHandle) -> None:
    sdk.set("session", "v", ex=100)
    assert 0 < sdk.ttl("session") <= 100
    assert sdk.persist("session") is True
    assert sdk.ttl("session") == -1
    assert sdk.expire("session", 50) is True
    assert 0 < emulator.redis.ttl("session") <= 50
    assert sdk.pexpire("session", 1) is True
    assert sdk.ttl("missing") == -2


def test_scan_visits_every_key_once(sdk: Redis, emulator: EmulatorHandle) -> None:
    emulator.redis.mset({f"user:{i}": i for i in range(60)} | {"other": 1})
    seen: list[str] = []
    cursor = 0
    while True:
        cursor, keys = sdk.scan(cursor, match="user:*", count=7)
        seen.extend(keys)
        if cursor == 0:
            break
    assert sorted(seen) == sorted(k.decode() for k in emulator.redis.keys("user:*"))
    assert len(seen) == 60


def test_pipeline_keeps_order_and_results(sdk: Redis, emulator: EmulatorHandle) -> None:
    pipe = sdk.pipeline()
    pipe.set("p", "1")
    pipe.incr("p")
    pipe.get("p")
    pipe.hset("ph", "f", "v")
    assert pipe.exec() == [True, 2, "2", 1]
    assert emulator.redis.get("p") == b"2"
    assert emulator.billed() == 4


def test_transaction_runs_atomically(sdk: Redis, emulator: EmulatorHandle) -> None:
    tx = sdk.multi()
    tx.set("t", "10")
    tx.incrby("t", 5)
    tx.get("t")
    assert tx.exec() == [True, 15, "15"]
    assert emulator.redis.get("t") == b"15"


def test_scripts_keyed_by_the_original_text(sdk: Redis, emulator: EmulatorHandle) -> None:
    assert sdk.eval(LIMITER_SCRIPT, keys=["hits"], args=["60000"]) == 1
    sha = sdk.script_load(LIMITER_SCRIPT)
    assert sha == hashlib.sha1(LIMITER_SCRIPT.encode()).hexdigest()
    assert sdk.script_exists(sha, "0" * 40) == [1, 0]
    assert sdk.evalsha(sha, keys=["hits"], args=["60000"]) == 2
    assert emulator.redis.get("hits") == b"2"
    assert 0 < emulator.redis.pttl("hits") <= 60000
    with pytest.raises(UpstashError, match=r"^NOSCRIPT No matching script\. Please use EVAL\.$"):
        sdk.evalsha("f" * 40)


def test_command_errors_reach_the_sdk(sdk: Redis) -> None:
    sdk.set("text", "abc")
    # whole texts: redis-py 8.2 once doubled the code ("WRONGTYPE WRONGTYPE ...")
    with pytest.raises(UpstashError) as not_a_number:
        sdk.incr("text")
    assert str(not_a_number.value) == "ERR value is not an integer or out of range"
    with pytest.raises(UpstashError) as wrong_type:
        sdk.lpush("text", "x")
    assert str(wrong_type.value) == (
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    sdk.xadd("s", "*", {"f": "v"})
    sdk.xgroup_create("s", "g", "0")
    with pytest.raises(UpstashError) as busy_group:
        sdk.xgroup_create("s", "g", "0")
    assert str(busy_group.value) == "BUSYGROUP Consumer Group name already exists"
    with pytest.raises(UpstashError) as no_group:
        sdk.xreadgroup("nope", "c", {"s": ">"})
    assert str(no_group.value) == (
        "NOGROUP No such key 's' or consumer group 'nope' in XREADGROUP with GROUP option"
    )


def test_sync_token_changes_after_every_kind_of_write(sdk: Redis) -> None:
    sdk.set("warm", "up")
    seen = {sdk._sync_token}
    sdk.set("k", "v")
    seen.add(sdk._sync_token)
    pipe = sdk.pipeline()
    pipe.set("k", "w")
    pipe.exec()
    seen.add(sdk._sync_token)
    tx = sdk.multi()
    tx.incr("n")
    tx.exec()
    seen.add(sdk._sync_token)
    sdk.eval("return redis.call('INCR', KEYS[1])", keys=["n"])
    seen.add(sdk._sync_token)
    assert len(seen) == 5 and "" not in seen


async def test_async_client(async_sdk: AsyncRedis, emulator: EmulatorHandle) -> None:
    assert await async_sdk.set("a", "1") is True
    assert await async_sdk.incr("a") == 2
    assert await async_sdk.hset("h", values={"f": "v"}) == 1
    assert await async_sdk.hgetall("h") == {"f": "v"}
    assert await async_sdk.zadd("z", {"m": 2}) == 1
    pipe = async_sdk.pipeline()
    pipe.get("a")
    pipe.zscore("z", "m")
    assert await pipe.exec() == ["2", 2.0]
    tx = async_sdk.multi()
    tx.incr("a")
    tx.get("a")
    assert await tx.exec() == [3, "3"]
    sha = await async_sdk.script_load(LIMITER_SCRIPT)
    assert await async_sdk.evalsha(sha, keys=["lim"], args=["1000"]) == 1
    cursor, keys = await async_sdk.scan(0, match="[ahlz]*", count=1000)
    assert cursor == 0 and sorted(keys) == ["a", "h", "lim", "z"]
    token = async_sdk._sync_token
    await async_sdk.set("b", "2")
    assert async_sdk._sync_token not in ("", token)
    assert emulator.redis.get("a") == b"3"


def test_a_url_pasted_with_a_trailing_slash_still_works(emulator: EmulatorHandle) -> None:
    """The SDK then asks for "//pipeline" and "//multi-exec"."""
    sdk = Redis(emulator.url + "/", emulator.token, rest_retries=0, allow_telemetry=False)
    assert sdk.set("slash", "1") is True
    pipe = sdk.pipeline()
    pipe.incr("slash")
    pipe.get("slash")
    assert pipe.exec() == [2, "2"]
    tx = sdk.multi()
    tx.incr("slash")
    assert tx.exec() == [3]
    assert emulator.redis.get("slash") == b"3"
