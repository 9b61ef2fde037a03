"""LocalCache behaves like Redis: same replies, same errors, same TTL rules.

The differential tests run each script of commands on a real redis-server and on a
LocalCache and require identical replies; the rest pin behaviour Redis can't show quickly
(expiry with an injected clock, eviction, SCAN cursors across deletes, script twins).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum.errors import CommandError, NoScriptError, TransactionAborted
from continuum.local.store import LocalCache, register_local_script
from tests.tooling import ManualClock as Clock

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_AN_INTEGER = "ERR value is not an integer or out of range"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
def db(clock: Clock) -> LocalCache:
    return LocalCache(clock=clock)


@pytest.fixture
def server() -> Iterator[redis.Connection]:
    url = os.environ.get("CONTINUUM_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CONTINUUM_TEST_REDIS_URL is not set (scripts/test starts redis-server)")
        pytest.skip("set CONTINUUM_TEST_REDIS_URL (or run scripts/test) for redis-server")
    pool = redis.ConnectionPool.from_url(url, protocol=2)
    conn = pool.get_connection()
    conn.send_command("FLUSHDB")
    conn.read_response()
    yield conn
    conn.send_command("FLUSHDB")
    conn.read_response()
    pool.release(conn)
    pool.disconnect()


def _server_reply(conn: redis.Connection, argv: list[object]) -> object:
    conn.send_command(*argv)
    try:
        reply = conn.read_response()
    except redis.ResponseError as exc:
        return ("error", _norm_error(str(exc)))
    return reply


def _norm_error(text: str) -> str:
    for prefix in ("ERR ", "NOSCRIPT "):
        text = text.removeprefix(prefix)
    if text.startswith("unknown command"):
        return "unknown command"
    return text


def _local_reply(db: LocalCache, argv: list[object]) -> object:
    (reply,) = db.execute([argv])  # type: ignore[list-item]
    if isinstance(reply, CommandError):
        return ("error", _norm_error(reply.message))
    return b"OK" if reply == "OK" else reply


# fmt: off
SCRIPTS: dict[str, list[list[object]]] = {
    "strings": [
        ["SET", "k", "v"], ["GET", "k"], ["SET", "k", "w", "GET"], ["SET", "k", "x", "NX"],
        ["SET", "n", "x", "XX"], ["SET", "k", "y", "XX", "GET"], ["SET", "k", "1", "NX", "XX"],
        ["SET", "k", "1", "EX", "0"], ["SET", "k", "1", "EX", "-5"], ["SET", "k", "1", "EX"],
        ["SET", "k", "1", "EX", "10", "PX", "100"], ["SET", "k", "1", "KEEPTTL", "EX", "5"],
        ["SET", "k", "1", "ex", "100"], ["TTL", "k"], ["SET", "k", "1", "Px", "abc"],
        ["HSET", "hk", "f", "v"], ["SET", "hk", "1", "PX", "90000"], ["TYPE", "hk"], ["TTL", "hk"],
        ["SET", "k", "1", "BOGUS"], ["SETEX", "s", "100", "v"], ["TTL", "s"], ["PTTL", "nokey"],
        ["TTL", "k"], ["SETNX", "k", "z"], ["SETNX", "new", "z"], ["PSETEX", "p", "0", "v"],
        ["GETDEL", "new"], ["GETDEL", "new"], ["MSET", "a", "1", "b", "2"], ["MSET", "a"],
        ["MGET", "a", "b", "nokey"], ["APPEND", "a", "xyz"], ["STRLEN", "a"], ["STRLEN", "no"],
        ["GETEX", "b", "EX", "100"], ["TTL", "b"], ["GETEX", "b", "PERSIST"], ["TTL", "b"],
        ["GETEX", "b", "EX"], ["GETEX", "nokey"], ["ECHO", "hi"], ["PING"], ["PING", "x"],
        ["PING", "x", "y"], ["GET"], ["GET", "a", "b"], ["NOSUCHCOMMAND", "x"],
        ["SET", "bin", b"\x00\xff\xfe"], ["GET", "bin"],
    ],
    "counters": [
        ["INCR", "c"], ["INCRBY", "c", "10"], ["DECR", "c"], ["DECRBY", "c", "3"],
        ["INCRBY", "c", "x"], ["INCRBY", "c", "+1"], ["INCRBY", "c", " 1"], ["INCRBY", "c", "01"],
        ["INCRBY", "c", "1.5"], ["INCRBY", "c", "-0"], ["INCRBYFLOAT", "c", "1_0"],
        ["SET", "big", "9223372036854775807"], ["INCR", "big"],
        ["DECRBY", "c", "-9223372036854775808"], ["INCRBY", "c", "99999999999999999999"],
        ["SET", "s", "abc"], ["INCR", "s"], ["INCRBYFLOAT", "f", "1.5"],
        ["INCRBYFLOAT", "f", "2.5"], ["INCRBYFLOAT", "f", "0.1"], ["INCRBYFLOAT", "s", "1"],
        ["INCRBYFLOAT", "f", "abc"], ["INCRBYFLOAT", "f", "inf"], ["SETEX", "t", "100", "5"],
        ["INCR", "t"], ["TTL", "t"], ["INCRBYFLOAT", "e", "5.0e3"], ["GET", "e"],
        ["SET", "g", "0.1"], ["INCRBYFLOAT", "g", "0.2"], ["INCRBYFLOAT", "big", "2.5"],
        ["INCRBYFLOAT", "tiny", "1e-20"], ["INCRBYFLOAT", "h", "1e20"],
    ],
    "keys": [
        ["SET", "a", "1"], ["SET", "b", "2"], ["HSET", "h", "f", "v"], ["ZADD", "z", "1", "m"],
        ["EXISTS", "a", "a", "nokey"], ["TYPE", "a"], ["TYPE", "h"], ["TYPE", "z"],
        ["TYPE", "nokey"], ["EXPIRE", "a", "100"], ["TTL", "a"], ["EXPIRE", "a", "50", "GT"],
        ["EXPIRE", "a", "200", "GT"], ["EXPIRE", "a", "300", "NX"], ["EXPIRE", "b", "10", "XX"],
        ["EXPIRE", "a", "10", "LT"], ["TTL", "a"], ["EXPIRE", "a", "10", "NX", "XX"],
        ["EXPIRE", "a", "10", "BAD"], ["EXPIRE", "a", "x"], ["PERSIST", "a"], ["PERSIST", "a"],
        ["TTL", "a"], ["PEXPIRE", "a", "100000"], ["EXPIRE", "nokey", "10"],
        ["EXPIRE", "b", "-1"], ["EXISTS", "b"], ["PEXPIREAT", "a", "1"], ["EXISTS", "a"],
        ["EXPIREAT", "h", "99999999999"], ["DEL", "h", "z", "nokey"], ["UNLINK", "nokey"],
        ["DBSIZE"], ["FLUSHDB", "BOGUS"], ["FLUSHDB"], ["DBSIZE"], ["KEYS", "*"],
    ],
    "wrongtype": [
        ["HSET", "h", "f", "1"], ["GET", "h"], ["INCR", "h"], ["APPEND", "h", "x"],
        ["ZADD", "h", "1", "m"], ["SET", "s", "v"], ["HGET", "s", "f"], ["ZCARD", "s"],
        ["HSET", "s", "f", "v"], ["MGET", "h", "s"], ["SET", "h", "now-a-string"], ["GET", "h"],
        ["GETEX", "h", "EX", "0"], ["HSET", "h2", "f"],
    ],
    "hashes": [
        ["HSET", "h", "a", "1", "b", "2"], ["HSET", "h", "a", "3", "c", "4"], ["HGET", "h", "a"],
        ["HGET", "h", "zz"], ["HMGET", "h", "a", "zz", "c"], ["HGETALL", "h"], ["HLEN", "h"],
        ["HEXISTS", "h", "b"], ["HEXISTS", "h", "zz"], ["HINCRBY", "h", "a", "5"],
        ["HINCRBY", "h", "new", "-2"], ["HSET", "h", "s", "x"], ["HINCRBY", "h", "s", "1"],
        ["HINCRBY", "h", "a", "x"], ["HDEL", "h", "a", "a", "zz"], ["HDEL", "h", "b", "c"],
        ["HDEL", "h", "new", "s"], ["EXISTS", "h"], ["HGETALL", "h"], ["HLEN", "nokey"],
    ],
    "zsets": [
        ["ZADD", "z", "1", "a", "2", "b", "3", "c"], ["ZADD", "z", "1.5", "d"],
        ["ZRANGE", "z", "0", "-1"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        ["ZRANGE", "z", "1", "2"], ["ZRANGE", "z", "-2", "-1"], ["ZRANGE", "z", "5", "10"],
        ["ZRANGE", "z", "0", "-1", "REV"], ["ZRANGE", "z", "(1", "3", "BYSCORE"],
        ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2", "WITHSCORES"],
        ["ZRANGE", "z", "3", "1", "BYSCORE", "REV"], ["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"],
        ["ZRANGE", "z", "x", "1", "BYSCORE"], ["ZADD", "z", "NX", "9", "a"],
        ["ZADD", "z", "XX", "9", "a"], ["ZADD", "z", "XX", "CH", "10", "a", "1", "zz"],
        ["ZADD", "z", "GT", "CH", "1", "a"], ["ZADD", "z", "LT", "CH", "1", "a"],
        ["ZADD", "z", "INCR", "2", "b"], ["ZADD", "z", "NX", "XX", "1", "a"],
        ["ZADD", "z", "x", "a"], ["ZADD", "z", "1"], ["ZSCORE", "z", "b"], ["ZSCORE", "z", "no"],
        ["ZCARD", "z"], ["ZCOUNT", "z", "1", "3"], ["ZCOUNT", "z", "(1", "(4"],
        ["ZCOUNT", "z", "-inf", "+inf"], ["ZREM", "z", "a", "nope"],
        ["ZREMRANGEBYSCORE", "z", "-inf", "(3"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        ["ZADD", "z", "0.25", "p"], ["ZSCORE", "z", "p"], ["ZREMRANGEBYSCORE", "z", "0", "inf"],
        ["EXISTS", "z"], ["ZADD", "e", "XX", "1", "a"], ["EXISTS", "e"],
    ],
    "scan": [
        ["MSET", "user:1", "a", "user:2", "b", "user:*", "c", "order:1", "d"],
        ["HSET", "user:h", "f", "v"], ["KEYS", "user:?"], ["KEYS", "user:\\*"],
        ["KEYS", "user:[12]"], ["KEYS", "user:[^1]"], ["KEYS", "nomatch*"],
        ["SCAN", "0", "MATCH", "order:*", "COUNT", "100"], ["SCAN", "0", "COUNT", "0"],
        ["SCAN", "x"], ["SCAN", "0", "BOGUS", "1"], ["SCAN", "0", "COUNT"],
    ],
    "scripts": [
        ["EVALSHA", "0" * 40, "0"], ["SCRIPT", "LOAD", "return 1"],
        ["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0" * 40],
        ["SCRIPT", "BOGUS"], ["EVAL", "return 1", "-1"], ["EVAL", "return 1", "2", "k"],
    ],
}
# fmt: on


@pytest.mark.redis_server
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_match_redis_server(
    name: str, server: redis.Connection, db: LocalCache, clock: Clock
) -> None:
    import time

    clock.now = time.time()  # absolute-time commands must agree with the server's clock
    for argv in SCRIPTS[name]:
        if argv[0] in ("KEYS", "SCAN"):
            expected, got = _server_reply(server, argv), _local_reply(db, argv)
            if isinstance(expected, list) and expected and isinstance(expected[-1], list):
                expected, got = expected[1], got[1]  # type: ignore[index]
            assert sorted(expected) == sorted(got), argv  # type: ignore[arg-type]
            continue
        assert _local_reply(db, argv) == _server_reply(server, argv), argv


def test_ttl_expiry_is_lazy_and_exact(db: LocalCache, clock: Clock) -> None:
    db.execute([["SET", "k", "v", "PX", 1500]])
    assert db.execute([["PTTL", "k"], ["TTL", "k"]]) == [1500, 2]
    clock.now += 1.499
    assert db.get("k") == b"v"
    clock.now += 0.001
    assert db.get("k") is None
    assert db.execute([["EXISTS", "k"], ["TTL", "k"], ["DBSIZE"]]) == [0, -2, 0]


def test_set_without_keepttl_clears_the_ttl_and_incr_keeps_it(db: LocalCache, clock: Clock) -> None:
    db.execute([["SET", "k", "1", "EX", 10], ["INCR", "k"]])
    assert db.execute([["TTL", "k"]]) == [10]
    db.execute([["SET", "k", "2", "KEEPTTL"]])
    assert db.execute([["TTL", "k"]]) == [10]
    db.execute([["SET", "k", "3"]])
    assert db.execute([["TTL", "k"]]) == [-1]


def test_absolute_expiry_uses_the_stores_clock(db: LocalCache, clock: Clock) -> None:
    at = int(clock.now) + 100
    db.execute([["SET", "k", "v", "EXAT", at], ["SET", "j", "v", "PXAT", at * 1000 + 500]])
    assert db.execute([["TTL", "k"], ["PTTL", "j"]]) == [100, 100_500]
    assert db.execute([["TIME"]])[0] == [str(int(clock.now)).encode(), b"0"]


def test_fast_paths_agree_with_commands(db: LocalCache, clock: Clock) -> None:
    db.set("k", b"v", ttl=2.5)
    assert db.execute([["GET", "k"], ["PTTL", "k"]]) == [b"v", 2500]
    db.set("k", b"w")
    assert db.execute([["TTL", "k"]]) == [-1]
    db.execute([["HSET", "h", "f", "v"]])
    with pytest.raises(CommandError) as caught:
        db.get("h")
    assert str(caught.value) == WRONGTYPE
    db.set("h", b"replaced")
    assert db.execute([["TYPE", "h"]]) == [b"string"]
    assert db.delete("h", "k", "missing") == 2 and len(db) == 0


def _outcome(db: LocalCache, command: tuple[object, ...]) -> object:
    """A one-command batch's reply (an error as its type, text and command name) and the
    key's value, type and expiry afterwards: everything a caller could observe."""
    try:
        reply = db.execute([command])[0]  # type: ignore[list-item]
    except Exception as exc:  # a refused argument: compared as a whole, type and text
        reply = exc
    if isinstance(reply, Exception):
        reply = (type(reply), str(reply), getattr(reply, "command", None))
    key = command[1]
    try:
        state = db.execute([(b"TYPE", key), (b"GET", key), (b"PTTL", key)])
    except Exception as exc:
        state = [type(exc), str(exc)]
    return reply, [str(s) if isinstance(s, CommandError) else s for s in state]


_FAST_KEYS = st.sampled_from(["k", "h", "é", "\ud800"]) | st.text(max_size=4)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=_FAST_KEYS,
    value=st.binary(max_size=4) | st.text(max_size=4) | st.integers(),
    option=st.sampled_from(["EX", "PX", "ex", "EXAT", "NX", "KEEPTTL"]),
    amount=st.integers(min_value=-2, max_value=2**62 + 2) | st.sampled_from([True, 1.5, "10"]),
)
def test_one_command_fast_paths_answer_as_the_command_table_does(
    clock: Clock, key: str, value: object, option: str, amount: object
) -> None:
    # execute() answers ("GET", str) and ("SET", k, v, EX|PX, n) without parsing them; a
    # name spelled as bytes takes the command table instead. Both must agree on every
    # reply, error and resulting key, whatever the arguments.
    for command in (("SET", key, value, option, amount), ("GET", key)):
        outcomes = []
        for name in (command[0], command[0].encode()):
            db = LocalCache(clock=clock)
            db.execute([(b"HSET", "h", "f", "v"), (b"SET", "k", "old", "EX", 5)])
            outcomes.append(_outcome(db, (name, *command[1:])))
        assert outcomes[0] == outcomes[1]


def test_store_is_bounded_expired_first_then_oldest(clock: Clock) -> None:
    db = LocalCache(max_keys=3, clock=clock)
    db.set("old", b"1")
    db.set("short", b"2", ttl=1)
    db.set("new", b"3")
    clock.now += 2
    db.set("newer", b"4")  # the expired key makes room, not the oldest
    assert db.get("old") == b"1"
    db.set("newest", b"5")  # now the oldest goes
    assert db.get("old") is None
    assert len(db) == 3
    assert sorted(db.execute([["KEYS", "*"]])[0]) == [b"new", b"newer", b"newest"]  # type: ignore[type-var]


def test_scan_cursor_returns_every_surviving_key_across_deletes(db: LocalCache) -> None:
    db.execute([["MSET", *[x for i in range(100) for x in (f"k{i}", "v")]]])
    seen: list[bytes] = []
    cursor: bytes = b"0"
    rounds = 0
    while True:
        ((cursor, keys),) = db.execute([["SCAN", cursor, "COUNT", 7]])  # type: ignore[misc]
        seen.extend(keys)
        if rounds == 2:  # delete keys already returned and keys not yet reached
            db.execute([["DEL", "k0", "k1", "k99", "k98"]])
            db.execute([["SET", "late", "v"]])
        rounds += 1
        if cursor == b"0":
            break
    assert rounds > 10
    survivors = {f"k{i}".encode() for i in range(2, 98)}
    assert survivors <= set(seen)
    assert len(seen) == len(set(seen))


def test_scan_type_filter_and_match(db: LocalCache) -> None:
    db.execute([["SET", "s:1", "v"], ["HSET", "h:1", "f", "v"], ["ZADD", "z:1", 1, "m"]])
    assert db.execute([["SCAN", 0, "TYPE", "hash", "COUNT", 100]]) == [[b"0", [b"h:1"]]]
    assert db.execute([["SCAN", 0, "MATCH", "[sz]:*", "COUNT", 100]]) == [[b"0", [b"s:1", b"z:1"]]]


def test_pipeline_errors_fill_their_own_slot(db: LocalCache) -> None:
    replies = db.execute([["SET", "k", "a"], ["INCR", "k"], ["GET", "k"]])
    assert replies[0] == "OK" and replies[2] == b"a"
    assert isinstance(replies[1], CommandError)
    assert (str(replies[1]), replies[1].command) == (NOT_AN_INTEGER, "incr")


def test_transaction_with_a_syntax_error_runs_nothing(db: LocalCache) -> None:
    discarded = "EXECABORT Transaction discarded because of previous errors: "
    with pytest.raises(TransactionAborted) as caught:
        db.execute([["SET", "k", "v"], ["GET"]], transaction=True)
    assert str(caught.value) == discarded + "ERR wrong number of arguments for 'get' command"
    with pytest.raises(TransactionAborted) as caught:
        db.execute([["SET", "k", "v"], ["NOPE"]], transaction=True)
    assert str(caught.value) == discarded + "ERR unknown command 'nope'"
    assert db.execute([["EXISTS", "k"]]) == [0]
    replies = db.execute([["SET", "k", "v"], ["INCR", "k"], ["GET", "k"]], transaction=True)
    assert replies[0] == "OK" and replies[2] == b"v"
    assert isinstance(replies[1], CommandError) and str(replies[1]) == NOT_AN_INTEGER


def test_arguments_are_redis_texts(db: LocalCache) -> None:
    db.execute([["SET", "i", 5], ["SET", "f", 1.5], ["SET", "b", b"\xff"], ["SET", "t", True]])
    assert db.execute([["MGET", "i", "f", "b", "t"]]) == [[b"5", b"1.5", b"\xff", b"1"]]
    with pytest.raises(CommandError) as caught:
        db.execute([["SET", "k", object()]])  # type: ignore[list-item]
    assert str(caught.value) == "ERR unsupported argument type object"


TWIN_SOURCE = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def _incrby_twin(db: LocalCache, keys: list[bytes], args: list[bytes]) -> object:
    return db.execute([["INCRBY", keys[0], args[0]]])[0]


def test_eval_runs_the_registered_python_twin(db: LocalCache) -> None:
    register_local_script(TWIN_SOURCE, _incrby_twin)  # type: ignore[arg-type]
    (sha,) = db.execute([["SCRIPT", "LOAD", TWIN_SOURCE]])
    assert db.execute([["EVAL", TWIN_SOURCE, 1, "n", 5]]) == [5]
    assert db.execute([["EVALSHA", sha, 1, "n", 2]]) == [7]  # type: ignore[list-item]
    assert db.execute([["SCRIPT", "EXISTS", sha, "f" * 40]]) == [[1, 0]]  # type: ignore[list-item]


def test_evalsha_unknown_is_noscript_and_untwinned_eval_is_clear(db: LocalCache) -> None:
    (reply,) = db.execute([["EVALSHA", "a" * 40, 0]])
    assert isinstance(reply, NoScriptError)
    assert str(reply) == "NOSCRIPT No matching script. Please use EVAL."
    (reply,) = db.execute([["EVAL", "return 'no twin for me'", 0]])
    assert isinstance(reply, CommandError)
    assert reply.message == (
        "ERR this Lua script has no Python twin for the local store "
        "(continuum.local.store.register_local_script)"
    )


def test_a_failing_twin_is_a_command_error_not_a_crash(db: LocalCache) -> None:
    def broken(db: LocalCache, keys: list[bytes], args: list[bytes]) -> object:
        raise ZeroDivisionError

    register_local_script("return 1/0", broken)  # type: ignore[arg-type]
    (reply,) = db.execute([["EVAL", "return 1/0", 0]])
    sha = hashlib.sha1(b"return 1/0").hexdigest()
    assert isinstance(reply, CommandError)
    assert reply.message == f"ERR local twin of script {sha[:12]} failed: ZeroDivisionError"


def test_publish_reaches_nobody(db: LocalCache) -> None:
    assert db.execute([["PUBLISH", "ch", "hi"]]) == [0]


def test_hostile_glob_patterns_match_in_polynomial_time(db: LocalCache) -> None:
    match = "a" * 41 + "b"
    db.execute([["SET", "a" * 5000, "v"], ["SET", match, "v"]])
    hostile = "*a" * 40 + "*b"  # exponential for a backtracking translation
    assert db.execute([["KEYS", hostile]]) == [[match.encode()]]
    ((_, keys),) = db.execute([["SCAN", 0, "MATCH", hostile, "COUNT", 10]])  # type: ignore[misc]
    assert keys == [match.encode()]


def test_convenience_methods_follow_redis_rules(db: LocalCache, clock: Clock) -> None:
    db.set("a", b"1", ttl=10)
    db.set("b", b"2")
    assert db.exists("a", "a", "missing") == 2
    assert db.ttl("a") == 10 and db.ttl("b") == -1 and db.ttl("missing") == -2
    assert db.expire("b", 5) and not db.expire("missing", 5)
    clock.now += 10
    assert db.delete("a", "b") == 0  # both expired: DEL counts only live keys
    db.set("c", b"3")
    assert db.expire("c", 0) and db.exists("c") == 0  # a non-positive TTL deletes
    db.set("d", b"4")
    db.flush()
    assert len(db) == 0


def test_scan_and_keys_skip_expired_keys(db: LocalCache, clock: Clock) -> None:
    for i in range(3):
        db.set(f"gone{i}", b"v", ttl=1)
    db.set("kept", b"v")
    clock.now += 2
    assert db.execute([["SCAN", 0, "COUNT", 100]]) == [[b"0", [b"kept"]]]
    assert db.execute([["KEYS", "*"], ["DBSIZE"]]) == [[b"kept"], 1]


def test_store_stays_bounded_under_churn(clock: Clock) -> None:
    import random

    db = LocalCache(max_keys=100, clock=clock)
    rng = random.Random(7)
    for i in range(5000):
        db.set(f"k{i}", b"v", ttl=rng.choice([None, 0.5, 100]))
        if rng.random() < 0.3:
            db.delete(f"k{rng.randrange(i + 1)}")
        if i % 500 == 0:
            clock.now += 1
        assert len(db._data) <= 100
    assert db.get("k4999") == b"v"  # the newest key always survives


def test_text_that_is_not_unicode_is_refused_clearly(db: LocalCache) -> None:
    from continuum.errors import ValidationError

    for call in (
        lambda: db.execute([["SET", "\ud800", "v"]]),
        lambda: db.get("\ud800"),
        lambda: db.set("k\udfff", b"v"),
        lambda: db.delete("\ud800"),
    ):
        with pytest.raises(ValidationError) as caught:
            call()
        assert str(caught.value) == (
            "keys and arguments must be valid Unicode text (no lone surrogates)"
        )


# -- random command sequences, compared with redis-server ---------------------------------

_K = st.sampled_from(["a", "b"])
_F = st.sampled_from(["f", "g"])
_V = st.sampled_from(["1", "0", "-3", "x", "2.5", "", "9223372036854775807"])
_S = st.sampled_from(["1", "2", "-inf", "+inf", "1.5", "(1", "x"])
_FLAG = st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"])
# fmt: off
_COMMANDS = st.one_of(
    st.tuples(st.sampled_from(["GET", "INCR", "DECR", "TYPE", "STRLEN", "GETDEL", "TTL",
                               "PERSIST", "HGETALL", "HLEN", "ZCARD"]), _K),
    st.tuples(st.sampled_from(["SET", "INCRBY", "DECRBY", "INCRBYFLOAT", "APPEND", "SETNX"]),
              _K, _V),
    st.tuples(st.just("SET"), _K, _V, st.sampled_from(["NX", "XX", "GET", "KEEPTTL"])),
    st.tuples(st.just("SET"), _K, _V, st.sampled_from(["EX", "PX"]),
              st.sampled_from(["9", "0", "x"])),
    st.tuples(st.sampled_from(["DEL", "EXISTS", "MGET"]), _K, _K),
    st.tuples(st.just("GETEX"), _K, st.sampled_from(["EX", "PX", "BAD"]),
              st.sampled_from(["9", "0"])),
    st.tuples(st.just("EXPIRE"), _K, st.sampled_from(["100", "0", "x"])),
    st.tuples(st.just("EXPIRE"), _K, st.just("50"), st.sampled_from(["NX", "XX", "GT", "LT"])),
    st.tuples(st.sampled_from(["HSET", "HINCRBY"]), _K, _F, _V),
    st.tuples(st.sampled_from(["HGET", "HDEL", "HEXISTS", "ZREM", "ZSCORE"]), _K, _F),
    st.tuples(st.just("ZADD"), _K, _S, _F),
    st.tuples(st.just("ZADD"), _K, _FLAG, _S, _F),
    st.tuples(st.just("ZADD"), _K, _FLAG, _FLAG, _S, _F),
    st.tuples(st.sampled_from(["ZCOUNT", "ZREMRANGEBYSCORE"]), _K, _S, _S),
    st.tuples(st.just("ZRANGE"), _K, st.sampled_from(["0", "-1", "x"]),
              st.sampled_from(["-1", "5"]), st.sampled_from(["WITHSCORES", "REV"])),
    st.tuples(st.just("ZRANGE"), _K, _S, _S, st.just("BYSCORE"), st.just("REV"), st.just("LIMIT"),
              st.sampled_from(["0", "1", "-1"]), st.sampled_from(["1", "-1"])),
)
# fmt: on


@pytest.mark.redis_server
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(commands=st.lists(_COMMANDS, max_size=20))
def test_random_command_sequences_match_redis_server(
    server: redis.Connection, commands: list[tuple[str, ...]]
) -> None:
    server.send_command("FLUSHDB")
    server.read_response()
    db = LocalCache()
    for argv in commands:
        assert _local_reply(db, list(argv)) == _server_reply(server, list(argv)), (argv, commands)


_GLOB_TEXT = st.text("ab-]\\[^*?", max_size=6)


@pytest.mark.redis_server
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=st.lists(_GLOB_TEXT, min_size=1, max_size=6, unique=True), pattern=_GLOB_TEXT)
def test_glob_patterns_select_the_same_keys_as_redis_server(
    server: redis.Connection, keys: list[str], pattern: str
) -> None:
    server.send_command("FLUSHDB")
    server.read_response()
    db = LocalCache()
    for key in keys:
        server.send_command("SET", key, "v")
        server.read_response()
        db.set(key, b"v")
    expected = _server_reply(server, ["KEYS", pattern])
    (got,) = db.execute([["KEYS", pattern]])
    assert sorted(got) == sorted(expected), (pattern, keys)  # type: ignore[arg-type]
