"""``RolloutCache`` over a real redis-server and the emulator: dual writes, per-key read
paths that are stable and only grow towards Upstash, shadow reads, and either store down
(a stopped server, a dead port) never failing a request the other can answer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from continuum.cache import RedisCache, RolloutCache, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.errors import CacheUnavailable, ConfigurationError, ValidationError
from continuum.migrate.rollout import ROLLOUT_STEPS, bucket
from tests.migrate.conftest import RedisProcess, RedisServers

KEYS = [f"user:{i}" for i in range(10_000)]


def upstash_for(target: EmulatorHandle) -> UpstashCache:
    return UpstashCache(mode="rest", rest_url=target.url, rest_token=target.token, fallback=False)


def dead_upstash(port: int) -> UpstashCache:
    return UpstashCache(
        mode="rest", rest_url=f"http://127.0.0.1:{port}", rest_token="dead-token-0123456789",
        fallback=False, timeout=0.3, budget=1.0, max_retries=0,
    )  # fmt: skip


@pytest.fixture
def stores(
    source: RedisProcess, target: EmulatorHandle
) -> Iterator[tuple[UpstashCache, RedisCache]]:
    upstash, redis_cache = upstash_for(target), RedisCache(source.url)
    yield upstash, redis_cache
    upstash.close()
    redis_cache.close()


def test_the_bucket_of_a_key_is_the_same_in_every_process() -> None:
    code = (
        "from continuum.migrate.rollout import bucket\n"
        "print([bucket(f'user:{i}') for i in range(50)])"
    )
    seen = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}).stdout
        for seed in ("1", "2", "random")
    }  # fmt: skip
    assert seen == {f"{[bucket(f'user:{i}') for i in range(50)]}\n"}


def test_raising_the_percentage_only_moves_keys_towards_upstash(
    stores: tuple[UpstashCache, RedisCache],
) -> None:
    rollout = RolloutCache(*stores, percent=0)
    previous: set[str] = set()
    assert not any(rollout.upstash_first(k) for k in KEYS)
    for step in ROLLOUT_STEPS:
        rollout.percent = step
        chosen = {k for k in KEYS if rollout.upstash_first(k)}
        assert previous <= chosen
        assert abs(len(chosen) / len(KEYS) - step / 100) < 0.02
        previous = chosen
    assert previous == set(KEYS)


def test_writes_reach_both_stores_and_reads_follow_the_key(
    stores: tuple[UpstashCache, RedisCache], source: RedisProcess, target: EmulatorHandle
) -> None:
    upstash, redis_cache = stores
    rollout = RolloutCache(upstash, redis_cache, percent=100)
    assert rollout.set("user:1", {"v": "both"}, ttl=60) is True
    assert upstash.get("user:1") == redis_cache.get("user:1") == {"v": "both"}
    assert 59 <= source.client().ttl("user:1") <= 60 and 59 <= upstash.ttl("user:1") <= 60
    upstash.set("user:1", "upstash's"), redis_cache.set("user:1", "redis's")
    assert rollout.get("user:1") == "upstash's"
    rollout.percent = 0
    assert rollout.get("user:1") == "redis's"
    assert rollout.meter.upstash_first == 1 and rollout.meter.redis_first == 1
    assert rollout.increment("n", 2) == 2 and upstash.get("n") == redis_cache.get("n") == 2
    assert rollout.delete("user:1", "n") == 2
    assert not upstash.exists("user:1") and not redis_cache.exists("user:1")
    for i in range(3):
        rollout.set(f"tmp:{i}", i)
    assert rollout.delete_prefix("tmp:") == 3
    assert not upstash.exists("tmp:0") and not redis_cache.exists("tmp:0")


def test_a_miss_on_the_first_store_reads_the_other(stores: tuple[UpstashCache, RedisCache]) -> None:
    upstash, redis_cache = stores
    rollout = RolloutCache(upstash, redis_cache, percent=100)
    redis_cache.set("only-in-redis", [1, 2])
    assert rollout.get("only-in-redis") == [1, 2]
    assert rollout.exists("only-in-redis") is True
    assert rollout.meter.fallback_reads == 2


def test_shadow_reads_count_mismatches_in_info_and_the_meter(
    stores: tuple[UpstashCache, RedisCache],
) -> None:
    upstash, redis_cache = stores
    rollout = RolloutCache(upstash, redis_cache, percent=50, shadow_reads=True)
    rollout.set("same", {"a": 1})
    upstash.set("differs", 1), redis_cache.set("differs", 2)
    redis_cache.set("redis-only", 3)
    assert rollout.get("same") == {"a": 1}
    rollout.get("differs"), rollout.get("redis-only")
    assert (rollout.meter.shadow_reads, rollout.meter.shadow_mismatches) == (3, 2)
    info = rollout.info()
    assert info["meter"]["shadow_mismatches"] == 2 and info["percent"] == 50.0
    assert info["redis"]["backend"] == "redis" and info["upstash"]["backend"] == "upstash"


def test_redis_stopped_never_fails_what_upstash_can_answer(
    redis_server_factory: RedisServers, target: EmulatorHandle
) -> None:
    server = redis_server_factory.start()
    redis_cache = RedisCache(server.url, timeout=0.5)
    rollout = RolloutCache(upstash_for(target), redis_cache, percent=0)  # Redis first
    rollout.set("k", {"v": 1})
    server.stop()
    assert rollout.get("k") == {"v": 1}
    assert rollout.set("k2", "written while Redis is down") is True
    assert rollout.get("k2") == "written while Redis is down"
    assert rollout.ttl("k") > 0 and rollout.exists("k")
    assert rollout.meter.redis_errors == 5 and rollout.meter.upstash_errors == 0


def test_upstash_down_never_fails_what_redis_can_answer(
    source: RedisProcess, dead_port: int
) -> None:
    rollout = RolloutCache(dead_upstash(dead_port), RedisCache(source.url), percent=100)
    assert rollout.set("k", {"v": 1}) is True
    assert rollout.get("k") == {"v": 1}
    assert rollout.increment("n") == 1
    assert rollout.meter.upstash_errors == 3 and rollout.meter.redis_errors == 0


def test_both_down_raises(dead_port: int) -> None:
    rollout = RolloutCache(
        dead_upstash(dead_port), RedisCache(f"redis://127.0.0.1:{dead_port}/0", timeout=0.3)
    )
    with pytest.raises(CacheUnavailable):
        rollout.get("k")
    with pytest.raises(CacheUnavailable):
        rollout.set("k", 1)


def test_layers_roll_out_by_full_key_with_the_layer_ttl(
    stores: tuple[UpstashCache, RedisCache], source: RedisProcess
) -> None:
    upstash, redis_cache = stores
    rollout = RolloutCache(upstash, redis_cache, percent=25)
    sessions = rollout.layer("sessions")
    sessions.set("42", {"theme": "dark"})
    assert source.client().ttl("session:42") == 3600 and upstash.ttl("session:42") == 3600
    assert sessions.get("42") == {"theme": "dark"}
    path = "upstash_first" if rollout.upstash_first("session:42") else "redis_first"
    assert getattr(rollout.meter, path) == 1


def test_the_percentage_may_be_a_feature_flag(stores: tuple[UpstashCache, RedisCache]) -> None:
    flags = {"upstash": 0.0}
    rollout = RolloutCache(*stores, percent=lambda: flags["upstash"])
    assert rollout.percent == 0.0
    flags["upstash"] = 75
    assert rollout.percent == 75.0
    flags["upstash"] = 120
    with pytest.raises(ValidationError) as bad:
        rollout.get("k")
    assert str(bad.value) == "the rollout percentage is a number from 0 to 100, got 120"


def test_an_upstash_client_with_its_own_fallback_is_refused(source: RedisProcess) -> None:
    with pytest.raises(ConfigurationError) as refused:
        RolloutCache(UpstashCache(mode="local"), RedisCache(source.url))
    assert str(refused.value) == (
        "RolloutCache needs UpstashCache(fallback=False): during an Upstash outage the "
        "rollout reads Redis instead, and a request-scoped fallback would hide it"
    )


def test_a_rolled_out_layer_refuses_what_would_empty_it(
    stores: tuple[UpstashCache, RedisCache],
) -> None:
    upstash, redis_cache = stores
    rollout = RolloutCache(upstash, redis_cache, percent=50)
    sessions, query = rollout.layer("sessions"), rollout.layer("query")
    for i in range(3):
        sessions.set(f"u{i}", i), query.set(f"q{i}", i)
    with pytest.raises(ValidationError) as refused:
        sessions.delete_pattern("?*")
    assert str(refused.value) == (
        "pattern '?*' can match every key in the 'sessions' layer (it does not start with a "
        "literal character); pass allow_all=True or call clear() to mean it"
    )
    with pytest.raises(ValidationError) as refused:
        sessions.delete_prefix("")
    assert str(refused.value) == (
        "an empty prefix matches every key in the 'sessions' layer; call clear() to mean it"
    )
    assert [upstash.get(f"session:u{i}") for i in range(3)] == [0, 1, 2]
    assert [redis_cache.get(f"session:u{i}") for i in range(3)] == [0, 1, 2]
    assert sessions.clear() == 3
    assert not any(upstash.exists(f"session:u{i}") or redis_cache.exists(f"session:u{i}")
                   for i in range(3))  # fmt: skip
    assert [query.get(f"q{i}") for i in range(3)] == [0, 1, 2]
