"""The Lua scripts on real redis-server and fakeredis, and their Python twins against them.

Time is chosen by the test (see ``scripts_clock``), so every expectation is exact: what
is admitted, what is left, and the server instants for reset and retry.
"""

from __future__ import annotations

import hashlib
import re

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum.ratelimit.algorithms import ALGORITHMS, RESET, Algorithm

from .conftest import RawRedis
from .scripts_clock import frozen_source, run_lua, run_twin

S = 1_000_000  # one second in microseconds
T0 = 1_795_000_020 * S  # a server instant on a 10 s (and 60 s) boundary


def lua(
    raw: RawRedis,
    algorithm: Algorithm,
    *,
    now: int,
    cost: int = 1,
    limit: int = 3,
    window: int = 10 * S,
    key: str = "k",
    nonce: str = "n",
) -> list[int]:
    reply = run_lua(
        raw, algorithm, key, window_us=window, limit=limit, cost=cost, now_us=now, nonce=nonce
    )
    assert isinstance(reply, list)
    return reply


def test_scripts_run_unchanged_with_the_server_clock(raw_redis: RawRedis) -> None:
    for algorithm, entry in ALGORITHMS.items():
        args = ["10000000", "3", "1"] + (["n"] if algorithm is Algorithm.SLIDING_LOG else [])
        reply = raw_redis("EVAL", entry.script.source, 1, f"real:{algorithm}", *args)
        assert isinstance(reply, list) and reply[0] == 1 and reply[1] == 2, algorithm
        seconds, micros = raw_redis("TIME")  # type: ignore[misc]
        server_now = int(seconds) * S + int(micros)
        assert abs(reply[4] - server_now) < 5 * S  # the script read the server's clock
        assert 0 < raw_redis("PTTL", f"real:{algorithm}") <= 20_000  # idle keys expire
    assert raw_redis("EVAL", RESET.script.source, 1, "real:sliding_log") == 1


def test_no_script_declares_flags_or_builds_keys() -> None:
    for entry in [*ALGORITHMS.values(), RESET]:
        source = entry.script.source
        assert not source.startswith("#!")
        assert "KEYS[2]" not in source and "..KEYS" not in source.replace(" ", "")


def test_sliding_log_admits_exactly_limit_per_sliding_window(raw_redis: RawRedis) -> None:
    alg = Algorithm.SLIDING_LOG
    assert lua(raw_redis, alg, now=T0, nonce="a")[:2] == [1, 2]
    assert lua(raw_redis, alg, now=T0 + 4 * S, nonce="b")[:2] == [1, 1]
    assert lua(raw_redis, alg, now=T0 + 5 * S, nonce="c")[:2] == [1, 0]
    refused = lua(raw_redis, alg, now=T0 + 9 * S, nonce="d")
    # refused until the oldest admission (T0) leaves the window: T0 + 10 s, not a fixed edge;
    # last, the redis.calls Upstash bills: TIME, ZCARD, ZREMRANGEBYSCORE, ZRANGE
    assert refused == [0, 0, T0 + 10 * S, T0 + 10 * S, T0 + 9 * S, 3, 4]
    assert lua(raw_redis, alg, now=T0 + 10 * S - 1, nonce="e")[0] == 0
    assert lua(raw_redis, alg, now=T0 + 10 * S, nonce="f")[:2] == [1, 0]
    # a cost-2 request must wait for the two oldest (T0 + 4 s, T0 + 5 s) to leave
    refused = lua(raw_redis, alg, now=T0 + 11 * S, cost=2, nonce="g")
    assert refused[0] == 0 and refused[3] == T0 + 15 * S


def test_sliding_log_counts_each_unit_of_a_weighted_request(raw_redis: RawRedis) -> None:
    reply = lua(raw_redis, Algorithm.SLIDING_LOG, now=T0, cost=1200, limit=5000, nonce="w")
    assert reply[:2] == [1, 3800] and reply[5] == 1200
    assert raw_redis("ZCARD", "k") == 1200  # chunked ZADD stored every unit


def test_fixed_window_resets_on_server_aligned_edges(raw_redis: RawRedis) -> None:
    alg = Algorithm.FIXED_WINDOW
    assert lua(raw_redis, alg, now=T0 + 9 * S, cost=3)[:3] == [1, 0, T0 + 10 * S]
    assert lua(raw_redis, alg, now=T0 + 10 * S - 1) == [
        0,
        0,
        T0 + 10 * S,
        T0 + 10 * S,
        T0 + 10 * S - 1,
        3,
        2,  # TIME and GET: a refusal writes nothing
    ]
    assert lua(raw_redis, alg, now=T0 + 10 * S)[:2] == [1, 2]  # a new window
    # refused requests are not counted
    assert raw_redis("GET", "k") == f"{(T0 + 10 * S) // (10 * S)}:1".encode()


def test_sliding_window_weights_the_previous_window(raw_redis: RawRedis) -> None:
    alg = Algorithm.SLIDING_WINDOW
    for _ in range(4):
        lua(raw_redis, alg, now=T0 + 5 * S, limit=4)
    # 2.5 s into the next window, 75% of the previous 4 still counts: 3 + 1 fits, 3 + 2 not
    refused = lua(raw_redis, alg, now=T0 + 12_500_000, limit=4, cost=2)
    assert refused[0] == 0
    assert refused[3] == T0 + 15 * S  # when 4 * overlap/10 s + 2 <= 4: half-way through
    assert lua(raw_redis, alg, now=T0 + 12_500_000, limit=4)[:2] == [1, 0]
    assert lua(raw_redis, alg, now=T0 + 15 * S, limit=4)[:2] == [1, 0]  # 4 * 0.5 + 1 + 1
    assert lua(raw_redis, alg, now=T0 + 15 * S, limit=4)[0] == 0
    # after two windows without traffic everything is forgotten
    assert lua(raw_redis, alg, now=T0 + 30 * S, limit=4, cost=4)[:2] == [1, 0]


def test_token_bucket_refills_continuously(raw_redis: RawRedis) -> None:
    alg = Algorithm.TOKEN_BUCKET
    assert lua(raw_redis, alg, now=T0, cost=3)[:3] == [1, 0, T0 + 10 * S]
    refused = lua(raw_redis, alg, now=T0 + S)
    assert refused[0] == 0 and refused[3] == T0 + 10 * S // 3 + 1  # one token per 3.33 s
    assert lua(raw_redis, alg, now=T0 + 4 * S)[:2] == [1, 0]
    assert lua(raw_redis, alg, now=T0 + 100 * S, cost=3)[0] == 1  # capped at the limit


def test_cost_zero_reads_without_writing(raw_redis: RawRedis) -> None:
    for alg in Algorithm:
        key = f"read:{alg}"
        lua(raw_redis, alg, now=T0, key=key, nonce="a")
        before = raw_redis("DUMP", key)
        reply = lua(raw_redis, alg, now=T0 + S, key=key, cost=0)
        assert reply[0] == 1 and reply[5] == 1, alg
        assert raw_redis("DUMP", key) == before, alg


def test_a_key_of_another_type_is_an_error_not_a_reset(raw_redis: RawRedis) -> None:
    raw_redis("HSET", "k", "field", "not a limiter")
    wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value"
    for alg in Algorithm:
        with pytest.raises(redis.ResponseError) as caught:
            lua(raw_redis, alg, now=T0)
        if isinstance(raw_redis.client, fakeredis.FakeRedis):
            assert str(caught.value) == wrongtype
        else:  # redis-server names the script and the line that failed
            sha = hashlib.sha1(frozen_source(alg).encode()).hexdigest()
            where = re.escape(f" script: {sha}, on @user_script:") + r"\d+\."
            assert re.fullmatch(re.escape(wrongtype) + where, str(caught.value)), alg
    assert raw_redis("HGET", "k", "field") == b"not a limiter"


steps = st.lists(st.tuples(st.integers(0, 12 * S), st.integers(0, 4)), min_size=1, max_size=25)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    algorithm=st.sampled_from(list(Algorithm)),
    limit=st.integers(4, 6),
    program=steps,
    window=st.sampled_from([S, 10 * S, 7_777_777]),
)
def test_each_twin_answers_and_stores_exactly_what_its_script_does(
    raw_redis: RawRedis,
    algorithm: Algorithm,
    limit: int,
    program: list[tuple[int, int]],
    window: int,
) -> None:
    raw_redis("DEL", "lua", "twin")
    now = T0 + 123_457
    for number, (advance, cost) in enumerate(program):
        now += advance
        params = {
            "window_us": window,
            "limit": limit,
            "cost": cost,
            "now_us": now,
            "nonce": f"r{number}",
        }
        expected = run_lua(raw_redis, algorithm, "lua", **params)  # type: ignore[arg-type]
        got = run_twin(raw_redis, algorithm, "twin", **params)  # type: ignore[arg-type]
        assert got == expected, (number, params)
        assert _state(raw_redis, "twin") == _state(raw_redis, "lua")


def _state(raw: RawRedis, key: str) -> object:
    kind = raw("TYPE", key)
    if kind == b"zset":
        return raw("ZRANGE", key, 0, -1, "WITHSCORES")
    if kind == b"string":
        return raw("GET", key)
    return kind


def billed(client: redis.Redis, *argv: object) -> int:
    """Commands Upstash would bill for running ``argv``: the EVAL plus every call inside."""
    client.config_resetstat()
    RawRedis(client)(*argv)
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if not k.startswith("cmdstat_config"))


def test_commands_billed_per_check(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, protocol=2)
    client.flushdb()
    expected = {  # (admitted, refused): EVAL + TIME + what each algorithm needs
        Algorithm.SLIDING_LOG: (5, 5),
        Algorithm.SLIDING_WINDOW: (4, 3),
        Algorithm.FIXED_WINDOW: (4, 3),
        Algorithm.TOKEN_BUCKET: (4, 3),
    }
    for algorithm, (admitted, refused) in expected.items():
        source = ALGORITHMS[algorithm].script.source
        args = ["60000000", "1", "1"] + (["n"] if algorithm is Algorithm.SLIDING_LOG else [])
        key = f"bill:{algorithm}"
        assert billed(client, "EVAL", source, 1, key, *args) == admitted, algorithm
        assert billed(client, "EVAL", source, 1, key, *args) == refused, algorithm
    client.close()
