"""``RedisCache`` against a real redis-server: the cache API, the shared codec (a value
written by either client reads back identically from the other), failures, and that no
serverless import path loads redis-py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from continuum.cache import RedisCache, UpstashCache
from continuum.errors import (
    AuthenticationFailed,
    CacheUnavailable,
    CommandError,
    ConfigurationError,
    KeyTooLarge,
    ValidationError,
    ValueTooLarge,
)
from tests.migrate.conftest import RedisProcess, RedisServers

VALUES: list[Any] = [
    {"name": "Alice", "roles": ["admin"], "n": 3, "ok": True, "none": None},
    ["a", 1, 2.5],
    "plain text",
    "ünïcödé ✓",
    42,
    -1.25,
    b"\x00\xff\xfe raw bytes \x80",
    {"big": "x" * 5000},  # compressed: over the 1 KB threshold
    "",
    0,
]


def test_the_cache_api_on_redis(source: RedisProcess) -> None:
    cache = RedisCache(source.url)
    raw = source.client()
    assert cache.set("user:1", {"name": "Alice"}, ttl=300) is True
    assert cache.get("user:1") == {"name": "Alice"}
    assert 299 <= cache.ttl("user:1") <= 300
    assert cache.exists("user:1") is True
    assert cache.expire("user:1", 10) is True
    assert raw.ttl("user:1") in (9, 10)
    assert cache.set("forever", 1, ttl=None) and cache.ttl("forever") == -1
    assert cache.set("fractional", 1, ttl=1.5) and 1400 <= raw.pttl("fractional") <= 1500
    assert cache.ttl("missing") == -2 and cache.get("missing") is None
    assert cache.expire("missing", 5) is False
    assert cache.increment("hits") == 1 and cache.increment("hits", 4) == 5
    assert cache.increment("ratio", 0.5) == 0.5
    assert cache.delete("user:1", "missing") == 1
    for i in range(7):
        cache.set(f"tmp:{i}", i)
    assert cache.delete_pattern("tmp:*") == 7
    cache.set("a*b:1", 1), cache.set("axb:1", 1)
    assert cache.delete_prefix("a*b:") == 1 and cache.exists("axb:1")
    assert cache.get_or_set("computed", lambda: {"v": 1}) == {"v": 1}
    assert cache.get_or_set("computed", lambda: {"v": 2}) == {"v": 1}


def test_pipelines_and_transactions(source: RedisProcess) -> None:
    cache = RedisCache(source.url)
    with cache.pipeline() as pipe:
        pipe.set("p:1", {"a": 1}).get("p:1").increment("p:n", 2).command("LPUSH", "p:1", "x")
    assert pipe.results is not None
    assert pipe.results[:3] == [True, {"a": 1}, 2]
    assert str(pipe.results[3]) == (
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    tx = cache.pipeline(transaction=True)
    tx.set("t:1", 1).increment("t:1").get("t:1")
    assert tx.execute() == [True, 2, 2]


def test_layers_use_the_same_keys_and_ttls_as_upstash(source: RedisProcess) -> None:
    cache = RedisCache(source.url)
    sessions = cache.layer("sessions")
    assert sessions.set("42", {"theme": "dark"}) is True
    assert source.client().ttl("session:42") == 3600
    assert sessions.get("42") == {"theme": "dark"} and sessions.exists("42")
    cache.layer("query").set("q1", [1, 2])
    sessions.set("43", 1)
    with pytest.raises(ValidationError) as refused:
        sessions.delete_pattern("*")
    assert str(refused.value) == (
        "pattern '*' can match every key in the 'sessions' layer (it does not start with a "
        "literal character); pass allow_all=True or call clear() to mean it"
    )
    assert sessions.clear() == 2
    assert cache.get("query:q1") == [1, 2]
    assert cache.info()["layers"]["sessions"] == {"hits": 1, "misses": 0, "hit_rate": 1.0}


def test_bad_input_is_refused_before_anything_is_sent(source: RedisProcess) -> None:
    cache = RedisCache(source.url, max_value_size=100)
    with pytest.raises(KeyTooLarge) as key:
        cache.set("k" * (32 * 1024 + 1), 1)
    assert str(key.value) == "key of 32769 bytes is over the 32 KB limit"
    with pytest.raises(ValueTooLarge) as value:
        cache.set("k", "x" * 200)
    assert str(value.value) == "encoded value is 202 bytes, over the 100-byte limit"
    with pytest.raises(ValidationError) as everything:
        cache.delete_pattern("*")
    assert str(everything.value) == (
        "pattern '*' can match every key in the database (it does not start with a literal "
        "character); pass allow_all=True to mean it"
    )
    assert source.client().dbsize() == 0


@pytest.mark.parametrize("use_msgpack", [False, True])
def test_a_value_written_by_either_client_reads_back_identically_from_the_other(
    redis_server_factory: RedisServers, use_msgpack: bool
) -> None:
    """Both clients on one redis-server: RedisCache directly, UpstashCache through the
    emulator in front of it. Each reads what the other wrote, and both store the same
    bytes for the same value."""
    from continuum.emulator import EmulatorServer

    server = redis_server_factory.start()
    emulator = EmulatorServer(server.url, token="interop-token-0123456789").start()
    try:
        redis_cache = RedisCache(server.url, use_msgpack=use_msgpack)
        upstash = UpstashCache(
            mode="rest", rest_url=emulator.url, rest_token=emulator.token,
            use_msgpack=use_msgpack, fallback=False,
        )  # fmt: skip
        raw = server.client()
        for i, value in enumerate(VALUES):
            redis_cache.set(f"r:{i}", value)
            upstash.set(f"u:{i}", value)
            assert upstash.get(f"r:{i}") == value
            assert redis_cache.get(f"u:{i}") == value
            assert raw.get(f"r:{i}") == raw.get(f"u:{i}")
    finally:
        emulator.stop()
        server.stop()


def test_a_refused_command_says_the_same_on_both_clients(
    redis_server_factory: RedisServers,
) -> None:
    """A parallel run compares the two stores: the same refusal has the same exception
    and the same text from each, Redis's error code included (redis-py strips ``ERR``)."""
    from continuum.emulator import EmulatorServer

    server = redis_server_factory.start()
    emulator = EmulatorServer(server.url, token="parity-token-0123456789").start()
    try:
        redis_cache = RedisCache(server.url)
        upstash = UpstashCache(
            mode="rest", rest_url=emulator.url, rest_token=emulator.token, fallback=False
        )
        server.client().set("text", "not a number")
        server.client().hset("hash", "f", "v")
        refusals = {
            "ERR value is not an integer or out of range": lambda c: c.increment("text"),
            "WRONGTYPE Operation against a key holding the wrong kind of value": (
                lambda c: c.get("hash")
            ),
        }
        for text, call in refusals.items():
            for cache in (redis_cache, upstash):
                with pytest.raises(CommandError) as caught:
                    call(cache)
                assert (type(caught.value), str(caught.value)) == (CommandError, text), cache
        for cache in (redis_cache, upstash):
            pipe = cache.pipeline()
            results = pipe.increment("text").get("hash").execute()
            assert [(type(r), str(r)) for r in results] == [
                (CommandError, text) for text in refusals
            ], cache
    finally:
        emulator.stop()
        server.stop()


def test_redis_down_raises_cache_unavailable_naming_the_server_without_its_password(
    dead_port: int,
) -> None:
    cache = RedisCache(f"redis://:s3cret-password@127.0.0.1:{dead_port}/0", timeout=0.5)
    with pytest.raises(CacheUnavailable) as down:
        cache.get("k")
    assert str(down.value) == (
        f"Redis at redis://:****@127.0.0.1:{dead_port}/0 is unreachable: "
        f"Error 111 connecting to 127.0.0.1:{dead_port}. Connection refused."
    )
    assert cache.ping() is False
    assert cache.info()["reachable"] is False
    assert "s3cret" not in repr(cache) and "s3cret" not in str(cache.info())


def test_a_wrong_password_is_an_authentication_failure(redis_server_factory: RedisServers) -> None:
    server = redis_server_factory.start("--requirepass", "right-password")
    try:
        cache = RedisCache(f"redis://:wrong-password@127.0.0.1:{server.port}/0")
        with pytest.raises(AuthenticationFailed) as refused:
            cache.get("k")
        assert str(refused.value) == (
            f"Redis at redis://:****@127.0.0.1:{server.port}/0 refused the credentials in its URL"
        )
        assert RedisCache(f"redis://:right-password@127.0.0.1:{server.port}/0").ping()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "redis://:pw@10.1.2.3:6379/0",
            "redis://:****@10.1.2.3:6379/0 is plain TCP to another machine: the password and "
            "every value would travel unencrypted. Use rediss:// (TLS), or allow it explicitly "
            "(allow_insecure=True, or --allow-insecure on the command line) for a private "
            "network.",
        ),
        (
            "https://eu1-x.upstash.io",
            "https:// is not a Redis URL (that is an Upstash REST URL: it goes in "
            "UPSTASH_REDIS_REST_URL); expected redis://host:port/db or rediss:// for TLS",
        ),
        ("redis://localhost:99999/0", "'redis://localhost:99999/0' is not a valid Redis URL "
         "(bad port?); expected redis://[:password@]host:port/db"),
        ("redis://localhost:6379/x", "'redis://localhost:6379/x': the database must be a "
         "number, not 'x'"),
    ],
)  # fmt: skip
def test_urls_are_checked_before_connecting(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as bad:
        RedisCache(url)
    assert str(bad.value) == message


def test_a_private_network_may_be_allowed_explicitly() -> None:
    cache = RedisCache("redis://10.1.2.3:6379/0", allow_insecure=True)
    assert cache.url == "redis://10.1.2.3:6379/0"


def test_redis_url_from_the_environment(
    source: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", source.url)
    RedisCache().set("from-env", 1)
    assert source.client().exists("from-env") == 1


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60,
        env={"CONTINUUM_CACHE_MODE": "local", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_no_serverless_import_path_imports_redis_py() -> None:
    result = _python(
        """
        import sys
        import continuum, continuum.cache
        from continuum.cache import UpstashCache, RolloutCache
        from continuum.cache import *
        import continuum.platforms.aws_lambda.handler
        import continuum.platforms.vercel.app
        loaded = sorted(m for m in sys.modules if m == "redis" or m.startswith("redis."))
        print(loaded)
        from continuum.cache import RedisCache
        print("redis" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\nTrue\n"


def test_without_redis_py_the_error_says_which_extra_to_install() -> None:
    result = _python(
        """
        import sys
        sys.modules["redis"] = None  # as if redis-py were not installed
        import continuum.cache
        try:
            from continuum.cache import RedisCache
        except ImportError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "RedisCache and `continuum migrate` need redis-py: pip install 'continuum-cache[redis]'\n"
    )


@pytest.mark.parametrize("pattern", ["?*", "[a-z]*", "[^!]*"])
def test_the_one_rule_against_deleting_everything_holds_here_too(
    source: RedisProcess, pattern: str
) -> None:
    cache = RedisCache(source.url)
    sessions = cache.layer("sessions")
    cache.set("a", 1), sessions.set("b", 2)
    refusals = [
        (lambda: cache.delete_pattern(pattern),
         f"pattern {pattern!r} can match every key in the database (it does not start with a "
         "literal character); pass allow_all=True to mean it"),
        (lambda: sessions.delete_pattern(pattern),
         f"pattern {pattern!r} can match every key in the 'sessions' layer (it does not start "
         "with a literal character); pass allow_all=True or call clear() to mean it"),
        (lambda: sessions.delete_prefix(""),
         "an empty prefix matches every key in the 'sessions' layer; call clear() to mean it"),
        (lambda: cache.delete_prefix(""),
         "an empty prefix matches every key in the database; "
         "use delete_pattern('*', allow_all=True) to mean it"),
        (lambda: cache.flush(confirm="false"), "confirm must be True or False, not 'false'"),
        (lambda: cache.flush(confirm=1), "confirm must be True or False, not 1"),
    ]  # fmt: skip
    for call, message in refusals:
        with pytest.raises(ValidationError) as refused:
            call()
        assert str(refused.value) == message
    assert source.client().dbsize() == 2
    assert sessions.delete_pattern(pattern, allow_all=True) == 1
    assert cache.get("a") == 1
