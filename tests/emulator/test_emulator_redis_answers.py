"""Where fakeredis answers differently from Redis, the emulator answers as Redis does.

Each test runs on both backends with the same expected replies, compared whole: the
real redis-server is the reference, and the default backend must agree with it. These
cases broke the official ``upstash-redis`` SDK's own suite (``scripts/sdk-suite``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

Send = Callable[..., object]


@pytest.fixture
def run(emulator: EmulatorHandle) -> Iterator[Send]:
    """Sends one command to the emulator and returns its JSON answer."""
    headers = {"Authorization": f"Bearer {emulator.token}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=30) as client:
        yield lambda *command: client.post("/", json=list(command)).json()


# Members with different scores: Redis walks the set in score order (a, d, b, c) from the
# first member not below the minimum while members stay within the maximum.
LEX_CASES = [
    (("ZRANGEBYLEX", "z", "-", "+"), ["a", "d", "b", "c"]),
    (("ZRANGEBYLEX", "z", "[b", "[d"), ["d", "b", "c"]),
    (("ZRANGEBYLEX", "z", "[b", "[b"), []),  # the last member, c, is above the range's end
    (("ZRANGEBYLEX", "z", "(a", "+", "LIMIT", 1, 2), ["b", "c"]),
    (("ZREVRANGEBYLEX", "z", "[d", "[b"), ["c", "b", "d"]),
    (("ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", 1, 2), ["b", "d"]),
    (("ZRANGE", "z", "[d", "[b", "BYLEX", "REV", "LIMIT", 1, 1), ["b"]),
    (("ZLEXCOUNT", "z", "[a", "[c"), 1),
    (("ZLEXCOUNT", "z", "(a", "+"), 3),
]


@pytest.mark.parametrize(("command", "expected"), LEX_CASES)
def test_lex_ranges_walk_the_set_in_score_order(
    run: Send, command: tuple[object, ...], expected: object
) -> None:
    run("ZADD", "z", 0, "a", 1, "b", 2, "c", 0, "d")
    assert run(*command) == {"result": expected}


def test_lex_ranges_as_the_sdk_suite_pins_them(run: Send) -> None:
    run("ZADD", "z", 1, "apple", 2, "banana", 3, "cherry", 4, "grape", 2, "orange")
    assert run("ZLEXCOUNT", "z", "[banana", "[orange") == {"result": 4}
    assert run("ZRANGESTORE", "d", "z", "[banana", "[orange", "BYLEX") == {"result": 4}
    assert run("ZRANGE", "d", 0, -1, "WITHSCORES") == {
        "result": ["banana", "2", "orange", "2", "cherry", "3", "grape", "4"]
    }
    assert run("ZREMRANGEBYLEX", "z", "[banana", "(grape") == {"result": 1}
    assert run("ZRANGE", "z", 0, -1) == {"result": ["apple", "orange", "cherry", "grape"]}


def test_zrandmember_without_a_count_is_one_member(run: Send) -> None:
    run("ZADD", "z", 1, "only")
    assert run("ZRANDMEMBER", "z") == {"result": "only"}
    assert run("ZRANDMEMBER", "missing") == {"result": None}
    assert run("ZRANDMEMBER", "z", 1) == {"result": ["only"]}


def _expiry_between(run: Send, ttl_ms: int, *command: object) -> tuple[int, int, int]:
    """The key's expiry in Unix ms after ``command``, with the earliest and latest
    moments it may lie at if the server kept the TTL to the millisecond."""
    before = math.floor(time.time() * 1000)
    run(*command)
    after = math.ceil(time.time() * 1000)
    expiry = run("PEXPIRETIME", "k")
    assert isinstance(expiry, dict)
    return before + ttl_ms, expiry["result"], after + ttl_ms


@pytest.mark.parametrize(
    ("ttl_ms", "command"),
    [
        (10_000, ("SETEX", "k", 10, "v")),
        (800, ("PSETEX", "k", 800, "v")),
        (10_000, ("GETEX", "k", "EX", 10)),
        (700, ("GETEX", "k", "PX", 700)),
    ],
)
def test_relative_expiry_keeps_the_millisecond(
    run: Send, ttl_ms: int, command: tuple[object, ...]
) -> None:
    # fakeredis cut these to a whole second of the clock: PSETEX 800 could expire at once
    run("SET", "k", "v")
    earliest, expiry, latest = _expiry_between(run, ttl_ms, *command)
    assert earliest <= expiry <= latest


def test_absolute_expiry_keeps_the_millisecond(run: Send) -> None:
    at = (int(time.time()) + 100) * 1000 + 789
    run("SET", "k", "v")
    assert run("GETEX", "k", "PXAT", at) == {"result": "v"}
    assert run("PEXPIRETIME", "k") == {"result": at}


@pytest.mark.parametrize(
    "command",
    [
        ("ZRANGE", "z", 0, "x"),
        ("ZREVRANGE", "z", "x", 1),
        ("ZRANGESTORE", "d", "z", 0, "1.5"),
    ],
)
def test_a_rank_that_is_not_an_integer_is_redis_s_error(
    run: Send, command: tuple[object, ...]
) -> None:
    run("ZADD", "z", 1, "a", 2, "b")
    assert run(*command) == {"error": "ERR value is not an integer or out of range"}
    assert run("ZREVRANGE", "z", 0, 1, "WITHSCORES") == {"result": ["b", "2", "a", "1"]}


def test_float_increments_add_and_print_as_redis_does(run: Send) -> None:
    # Redis adds in long double and prints 17 decimals without trailing zeros
    assert run("INCRBYFLOAT", "f", "0.1") == {"result": "0.1"}
    assert run("INCRBYFLOAT", "f", "0.2") == {"result": "0.3"}
    assert run("GET", "f") == {"result": "0.3"}
    assert run("INCRBYFLOAT", "f", "1e15") == {"result": "1000000000000000.29998779296875"}
    assert run("INCRBYFLOAT", "big", "10000000000.1") == {"result": "10000000000.09999999962747097"}
    run("HSET", "h", "n", "1", "word", "x")
    assert run("HINCRBYFLOAT", "h", "n", "0.1") == {"result": "1.1"}
    assert run("HINCRBYFLOAT", "h", "n", "-1.1") == {"result": "0"}
    assert run("HINCRBYFLOAT", "h", "word", "1") == {"error": "ERR hash value is not a float"}
    assert run("HINCRBYFLOAT", "h", "n", "inf") == {"error": "ERR value is NaN or Infinity"}
    run("SET", "inf", "-inf")
    infinite = {"error": "ERR increment would produce NaN or Infinity"}
    assert run("INCRBYFLOAT", "inf", "1") == infinite
    assert run("INCRBYFLOAT", "f", "inf") == infinite


def test_lpos_rank_zero_is_an_err(run: Send) -> None:
    run("RPUSH", "l", "a")
    assert run("LPOS", "l", "a", "RANK", 0) == {
        "error": "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
        "second ... or use negative to start from the end of the list"
    }
