"""The cache API as a user sees it, on every backend (see conftest.py)."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum import (
    CacheBackend,
    CommandError,
    ConfigurationError,
    KeyTooLarge,
    UpstashCache,
    ValidationError,
    ValueTooLarge,
)
from tests.cache.conftest import Backend

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=50)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        {"name": "Alice", "roles": ["admin"], "prefs": {"theme": "dark"}},
        [1, 2.5, "three", None, True],
        "plain text",
        "",
        0,
        -17,
        3.25,
        "ünïcødé ✓ 🚀",
        b"\x00\xff\xfe raw bytes \x80",
        b"",
        b"valid utf-8 bytes",
    ],
)
def test_values_round_trip_exactly(cache: UpstashCache, value: object) -> None:
    assert cache.set("k", value)
    assert cache.get("k") == value
    assert type(cache.get("k")) is type(value)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=json_values)
def test_any_json_value_round_trips(cache: UpstashCache, value: Any) -> None:
    cache.set("hyp", value)
    assert cache.get("hyp") == value


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.binary(max_size=2000))
def test_any_bytes_round_trip(cache: UpstashCache, value: bytes) -> None:
    cache.set("bin", value)
    assert cache.get("bin") == value


def test_missing_key_reads_none(cache: UpstashCache) -> None:
    assert cache.get("nope") is None
    assert cache.exists("nope") is False
    assert cache.ttl("nope") == -2


def test_set_defaults_to_five_minutes_and_honours_ttl(cache: UpstashCache) -> None:
    cache.set("a", 1)
    assert 290 <= cache.ttl("a") <= 300
    cache.set("b", 1, ttl=3600)
    assert 3590 <= cache.ttl("b") <= 3600
    cache.set("c", 1, ex=1800)
    assert 1790 <= cache.ttl("c") <= 1800
    cache.set("d", 1, ttl=None)
    assert cache.ttl("d") == -1


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        (0, "ttl must be positive, got 0 (use None for no expiry)"),
        (-5, "ttl must be positive, got -5 (use None for no expiry)"),
        (float("nan"), "ttl must be a number of seconds, got nan"),
        ("60", "ttl must be a number of seconds, got '60'"),
    ],
)
def test_bad_ttls_are_refused(cache: UpstashCache, ttl: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        cache.set("k", 1, ttl=ttl)
    assert str(caught.value) == message


def test_expire_and_exists(cache: UpstashCache) -> None:
    assert cache.expire("missing", 10) is False
    cache.set("k", "v", ttl=None)
    assert cache.exists("k") is True
    assert cache.expire("k", 120) is True
    assert 110 <= cache.ttl("k") <= 120


def test_delete_counts_what_existed(cache: UpstashCache) -> None:
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.delete("a", "b", "c") == 2
    assert cache.delete("a") == 0
    assert cache.get("a") is None


def test_increment_counts(cache: UpstashCache) -> None:
    assert cache.increment("hits") == 1
    assert cache.increment("hits", 10) == 11
    assert cache.get("hits") == 11
    assert cache.increment("score", 0.5) == pytest.approx(0.5)


def test_increment_of_a_non_number_raises_command_error(cache: UpstashCache) -> None:
    cache.set("text", "abc")
    with pytest.raises(CommandError) as caught:
        cache.increment("text")
    assert str(caught.value) == "ERR value is not an integer or out of range"


def test_delete_pattern_scans_and_unlinks(cache: UpstashCache) -> None:
    for i in range(1200):  # more than one SCAN page
        cache.set(f"user:{i}", i) if i < 3 else None
    with cache.pipeline() as pipe:
        for i in range(3, 1200):
            pipe.set(f"user:{i}", i)
    cache.set("other:1", 1)
    assert cache.delete_pattern("user:*") == 1200
    assert cache.get("user:7") is None
    assert cache.get("other:1") == 1


def test_delete_pattern_sends_each_pages_unlink_with_the_next_scan(backend: Backend) -> None:
    if backend.emulator is None:
        pytest.skip("round trips exist only over REST")
    cache = backend.sync()
    with cache.pipeline() as pipe:
        for i in range(1200):
            pipe.set(f"user:{i}", i)
    backend.emulator.reset_billing()
    assert cache.delete_pattern("user:*") == 1200
    # billed: every SCAN and every UNLINK; requests: one per SCAN, plus the last UNLINK
    assert backend.emulator.billed() > 2
    assert 2 * backend.emulator.requests() <= backend.emulator.billed() + 2
    cache.close()


def test_delete_pattern_removes_keys_other_clients_wrote_in_binary(backend: Backend) -> None:
    # Keys that are not UTF-8 come back from SCAN as bytes; REST carries only one binary
    # argument per request, so they cannot share one UNLINK.
    if backend.emulator is None:
        pytest.skip("binary keys come from another client writing to Upstash")
    raw = backend.emulator.redis
    for i in range(4):
        raw.set(b"bk:\xff\xfe" + bytes([i]), b"v")
    for i in range(3):
        raw.set(f"bk:text{i}", "v")
    raw.set("other", "v")
    cache = backend.sync()
    assert cache.delete_pattern("bk:*") == 7
    assert raw.keys("bk:*") == [] and raw.exists("other")
    cache.close()


def test_delete_prefix_takes_user_input_literally(cache: UpstashCache) -> None:
    cache.set("sess:a*b:1", 1)
    cache.set("sess:axb:1", 2)
    cache.set("sess:a?b:2", 3)
    assert cache.delete_prefix("sess:a*b:") == 1
    assert cache.get("sess:axb:1") == 2
    assert cache.get("sess:a?b:2") == 3


def test_oversized_keys_and_values_are_refused_before_sending(
    backend: Backend, cache: UpstashCache
) -> None:
    with pytest.raises(KeyTooLarge) as caught:
        cache.set("k" * (32 * 1024 + 1), 1)
    assert str(caught.value) == "key of 32769 bytes is over the 32 KB limit"
    with pytest.raises(KeyTooLarge) as caught:
        cache.get("é" * (16 * 1024 + 1))
    assert str(caught.value) == "key of 32770 bytes is over the 32 KB limit"
    small = backend.sync(max_value_size=1000)
    with pytest.raises(ValueTooLarge) as caught_value:
        small.set("big", os.urandom(2000))  # incompressible
    # bytes are stored with a 2-byte marker: 2002 bytes
    assert str(caught_value.value) == "encoded value is 2002 bytes, over the 1000-byte limit"
    assert backend.billed() in (0, None)
    assert small.get("big") is None


def test_pipeline_returns_every_result_and_error(cache: UpstashCache) -> None:
    pipe = cache.pipeline()
    pipe.set("p", "text")
    pipe.increment("p")  # fails: not an integer
    pipe.get("p")
    pipe.set("bin", b"\xff\x00")
    pipe.get("bin")
    pipe.exists("nope")
    results = pipe.execute()
    assert results[0] is True
    assert isinstance(results[1], CommandError)
    assert results[2:] == ["text", True, b"\xff\x00", False]


def test_pipeline_as_context_manager_executes_on_exit(cache: UpstashCache) -> None:
    memories = {f"m{i}": {"concept": i} for i in range(10)}
    with cache.pipeline() as pipe:
        for memory_id, data in memories.items():
            pipe.set(f"memory:{memory_id}", data, ex=1800)
    assert pipe.results is not None and len(pipe.results) == 10
    assert cache.get("memory:m3") == {"concept": 3}


def test_pipeline_not_executed_when_the_block_raises(cache: UpstashCache) -> None:
    with pytest.raises(RuntimeError), cache.pipeline() as pipe:
        pipe.set("never", 1)
        raise RuntimeError("boom")
    assert cache.get("never") is None


def test_transaction_pipeline(cache: UpstashCache) -> None:
    pipe = cache.pipeline(transaction=True)
    pipe.increment("n")
    pipe.increment("n", 2)
    assert pipe.execute() == [1, 3]


def test_layers_apply_prefix_and_default_ttl(cache: UpstashCache) -> None:
    expected = {
        "sessions": ("session:", 3600), "query": ("query:", 300), "memory": ("memory:", 1800),
        "ratelimit": ("ratelimit:", 60), "federation": ("fed:queue:", 86400),
        "websocket": ("ws:", 300),
    }  # fmt: skip
    for name, (prefix, ttl) in expected.items():
        layer = cache.layer(name)
        assert layer.set("k1", {"layer": name})
        assert cache.get(prefix + "k1") == {"layer": name}
        assert layer.get("k1") == {"layer": name}
        assert ttl - 10 <= layer.ttl("k1") <= ttl


def test_layer_invalidation_stays_inside_the_layer(cache: UpstashCache) -> None:
    sessions, queries = cache.layer("sessions"), cache.layer("query")
    sessions.set("u1:a", 1)
    sessions.set("u1:b", 2)
    queries.set("u1:a", 3)
    assert sessions.delete_prefix("u1:") == 2
    assert queries.get("u1:a") == 3
    with pytest.raises(ValidationError) as caught:
        sessions.delete_pattern("*")
    assert str(caught.value) == (
        "pattern '*' can match every key in the 'sessions' layer (it does not start with a "
        "literal character); pass allow_all=True or call clear() to mean it"
    )
    assert queries.clear() == 1


def test_unknown_layer_is_a_clear_error(cache: UpstashCache) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cache.layer("nope")
    assert str(caught.value) == (
        "unknown cache layer 'nope'; expected one of sessions, query, memory, ratelimit, "
        "federation, websocket"
    )


def test_get_or_set_computes_once(cache: UpstashCache) -> None:
    calls: list[int] = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"answer": 42}

    assert cache.get_or_set("q", compute, ttl=60) == {"answer": 42}
    assert cache.get_or_set("q", compute, ttl=60) == {"answer": 42}
    assert len(calls) == 1


def test_get_or_set_single_flight_across_threads(backend: Backend) -> None:
    calls: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def compute() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "value"

    results: list[Any] = []
    first = backend.sync()

    def worker(client: UpstashCache) -> None:
        results.append(client.get_or_set("hot", compute, ttl=60))

    leader = threading.Thread(target=worker, args=(first,))
    leader.start()
    assert started.wait(5)
    followers = [threading.Thread(target=worker, args=(first,)) for _ in range(4)]
    for t in followers:
        t.start()
    release.set()
    for t in [leader, *followers]:
        t.join(10)
    assert results == ["value"] * 5
    assert len(calls) == 1


def test_get_or_set_propagates_compute_errors_and_releases_the_lock(cache: UpstashCache) -> None:
    def broken() -> None:
        raise LookupError("db down")

    with pytest.raises(LookupError):
        cache.get_or_set("x", broken)
    assert cache.get_or_set("x", lambda: 5) == 5


def test_flush_needs_confirmation(cache: UpstashCache) -> None:
    cache.set("a", 1)
    with pytest.raises(ValidationError) as caught:
        cache.flush()
    assert str(caught.value) == "flush() deletes every key; call flush(confirm=True)"
    assert cache.get("a") == 1
    assert cache.flush(confirm=True)
    assert cache.get("a") is None


def test_publish_returns_receivers(cache: UpstashCache) -> None:
    assert cache.publish("ws:updates", {"event": "x"}) == 0
    assert cache.publish("ws:updates", "plain") == 0


def test_ping_info_and_backend(backend: Backend, cache: UpstashCache) -> None:
    assert cache.ping() is True
    cache.set("a", 1)
    cache.get("a")
    cache.get("missing")
    info = cache.info()
    expected = CacheBackend.LOCAL if backend.is_local else CacheBackend.UPSTASH
    assert cache.current_backend is expected
    assert info["backend"] == expected.value
    assert info["keys"] == 1
    assert info["layers"]["default"] == {"hits": 1, "misses": 1, "hit_rate": 0.5}


def test_info_meter_totals_requests_and_lists_the_open_one_apart(
    backend: Backend, cache: UpstashCache
) -> None:
    for n in range(3):
        with cache.request() as scoped:
            scoped.get(f"user:{n}")
    assert "request" not in cache.info()
    totals = cache.info()["meter"]
    assert totals["misses"] == 3  # every finished request counted, not just the last
    with cache.request() as scoped:
        scoped.get("user:0")
        inside = cache.info()
    assert inside["request"]["misses"] == 1  # the open request, on its own
    assert inside["meter"]["misses"] == 3  # totals: finished requests only
    if not backend.is_local:
        assert totals["commands"] >= 3
        # the open request's commands (its GET, info's own key count) are its own so far
        assert inside["meter"]["commands"] == totals["commands"]
        assert inside["request"]["commands"] >= 1


def test_local_mode_keeps_data_across_calls_on_the_instance(backend: Backend) -> None:
    if not backend.is_local:
        pytest.skip("local mode only")
    one, two = backend.sync(), backend.sync()
    one.set("k", 1)
    assert one.get("k") == 1
    assert two.get("k") is None  # no module-level store shared between instances


def test_request_scope_memoises_reads_until_a_write(backend: Backend, cache: UpstashCache) -> None:
    cache.set("m", 1)
    with cache.request(deadline=5) as scope:
        assert cache.get("m") == 1
        assert cache.get("m") == 1
        cache.set("m", 2)
        assert cache.get("m") == 2
        assert cache.get("m") == 2
    if not backend.is_local:
        assert scope.meter.commands == 3
        assert scope.meter.hits == 4


def test_set_result_is_truthy_and_not_degraded(backend: Backend, cache: UpstashCache) -> None:
    result = cache.set("k", 1)
    assert result and not result.degraded
    assert result.backend is (CacheBackend.LOCAL if backend.is_local else CacheBackend.UPSTASH)


def test_run_script_uses_evalsha_then_eval(backend: Backend, cache: UpstashCache) -> None:
    from continuum import Script, register_local_script

    source = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    register_local_script(
        source, lambda store, keys, args: store.execute([["INCRBY", keys[0], args[0]]])[0]
    )  # type: ignore[arg-type,return-value]
    script = Script.from_source(source)
    assert cache.run_script(script, ["counter"], ["5"]) == 5
    assert cache.run_script(script, ["counter"], ["2"]) == 7


def test_non_string_keys_are_refused(cache: UpstashCache) -> None:
    with pytest.raises(ValidationError) as caught:
        cache.get(123)  # type: ignore[arg-type]
    assert str(caught.value) == "cache keys are str, got int"
    with pytest.raises(ValidationError) as caught:
        cache.set("\ud800", 1)
    assert str(caught.value) == "keys must be valid Unicode (no lone surrogates)"


def test_scoped_handle_is_the_cache_bound_to_its_scope(
    backend: Backend, cache: UpstashCache
) -> None:
    with cache.request(deadline=5) as c:
        assert c.set("k", {"v": 1})
        assert c.get("k") == {"v": 1}
        assert c.layer("sessions").set("s", 1)
    assert c.meter.hits == 1
    assert c.deadline.remaining() <= 5


def test_memo_is_invalidated_by_a_write_through_another_name(
    backend: Backend, cache: UpstashCache
) -> None:
    with cache.request(deadline=5):
        assert cache.get("session:u") is None
        cache.layer("sessions").set("u", "fresh")  # same key, written via the layer
        assert cache.get("session:u") == "fresh"


@pytest.mark.parametrize(
    "key",
    ["a/b?c#d%e f", "../../etc/passwd", "line\nbreak", "ünï/çødé", "x" * 2000, "%2F%00", " "],
)
def test_hostile_keys_round_trip_with_binary_values(cache: UpstashCache, key: str) -> None:
    value = b"\xff\xfe\x00 binary \x80" + key.encode()
    assert cache.set(key, value, ttl=60)
    assert cache.get(key) == value
    assert 50 <= cache.ttl(key) <= 60
    assert cache.delete(key) == 1


def test_unstorable_values_are_refused_before_sending(
    backend: Backend, cache: UpstashCache
) -> None:
    unsupported = "only dict, list, str, int, float, bool, None and bytes are supported"
    for value, why in (
        (object(), unsupported),
        ({1, 2}, unsupported),
        (float("nan"), "NaN and infinity are not JSON (other clients could not read them)"),
    ):
        with pytest.raises(ValidationError) as caught:
            cache.set("k", value)
        kind = type(value).__name__
        assert str(caught.value) == f"cannot store a value of type {kind} as JSON: {why}"
    assert backend.billed() in (0, None)


def test_bad_arguments_get_specific_errors(cache: UpstashCache) -> None:
    from continuum import CacheError

    calls = [
        (lambda: cache.get(None), "cache keys are str, got NoneType"),  # type: ignore[arg-type]
        (lambda: cache.set("k", 1, ttl="60"), "ttl must be a number of seconds, got '60'"),  # type: ignore[arg-type]
        (lambda: cache.increment("k", "5"), "amount must be a number, got '5'"),  # type: ignore[arg-type]
        (lambda: cache.expire("k", -1), "ttl must be positive, got -1 (use None for no expiry)"),
        (lambda: cache.layer(None), "a layer name is a str, got NoneType"),  # type: ignore[arg-type]
        (lambda: cache.request(deadline="soon"), "deadline must be a number, got 'soon'"),  # type: ignore[arg-type]
        (
            lambda: cache.pipeline().increment("k", 1.5),  # type: ignore[arg-type]
            "pipeline increment takes an integer amount",
        ),
        (lambda: cache.delete_pattern(None), "a pattern is a str glob, not NoneType"),  # type: ignore[arg-type]
        (lambda: cache.publish(None, "x"), "cache keys are str, got NoneType"),  # type: ignore[arg-type]
    ]
    for call, message in calls:
        with pytest.raises(CacheError) as caught:
            call()
        assert str(caught.value) == message
