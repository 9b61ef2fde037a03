"""Any key carries a binary value exactly, over the emulator's real HTTP on both backends.

A value that is not UTF-8 travels as the raw body of ``POST /SET/<key>``; a key whose path
segment would not arrive as sent (``.`` and ``..``, which URL normalisation removes; an
empty one; one with ``/``, split on by a server that decodes before routing) goes in the
script form instead. Before, ``SET . b"\\xff\\x00"`` answered "wrong number of arguments"
and ``..`` "not valid JSON".
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum import UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle

NOT_UTF8 = b"\xff\x00\xfe"
PINNED = [
    ".", "..", "%2e", "%2E%2E", "a/../b", "./x", "x/.", "/", "//", "", "?", "#", "&=",
    " ", "two words", "%", "%25", "\\", "..\\..", "ünïcödé ✓", "𝄞", "key:with:colons",
]  # fmt: skip


@pytest.fixture
def cache(emulator: EmulatorHandle) -> Iterator[UpstashCache]:
    client = UpstashCache(rest_url=emulator.url, rest_token=emulator.token, fallback=False)
    yield client
    client.close()


@pytest.mark.parametrize("key", PINNED)
def test_a_binary_value_round_trips_under_any_key(
    cache: UpstashCache, emulator: EmulatorHandle, key: str
) -> None:
    value = NOT_UTF8 + key.encode()
    assert cache.execute([["SET", key, value, "EX", 60]]) == ["OK"]
    assert emulator.redis.keys() == [key.encode()]  # under that key, and no other
    assert cache.execute([["GET", key], ["TTL", key]], write=False) == [value, 60]
    assert cache.set(key, value) and cache.get(key) == value  # through the codec
    assert cache.layer("query").set(key, value) and cache.layer("query").get(key) == value
    assert emulator.redis.get(f"query:{key}".encode())[2:] == value  # b"\x00b" + raw


def test_the_script_form_answers_as_the_path_form_does(cache: UpstashCache) -> None:
    """The same command under a key the path carries (``k``) and one it cannot (``.``):
    the same replies and the same error texts."""
    for key in ("k", "."):
        cache.execute([["LPUSH", key, "x"]])
    for command in (["SET", NOT_UTF8, "EX", 0], ["APPEND", NOT_UTF8], ["SETRANGE", 0, NOT_UTF8]):
        direct, scripted = (
            cache.execute([[command[0], key, *command[1:]]])[0] for key in ("k", ".")
        )
        assert type(direct) is type(scripted) and str(direct) == str(scripted), command
    assert str(scripted) == "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert cache.execute([["PUBLISH", "a/b", NOT_UTF8]]) == [0]
    replies = cache.execute([["SET", "k2", "1"], ["SET", "..", b"\x80"], ["GET", ".."]])
    assert replies == ["OK", "OK", b"\x80"]  # in a pipeline with others, order kept


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.text(st.characters(exclude_categories=["Cs"]), max_size=24) | st.sampled_from(PINNED),
    value=st.binary(max_size=256).map(lambda b: b"\xff" + b),
)
def test_any_key_and_binary_value_round_trip(
    cache: UpstashCache, emulator: EmulatorHandle, key: str, value: bytes
) -> None:
    assert cache.execute([["SET", key, value]]) == ["OK"]
    assert emulator.redis.get(key.encode()) == value
    assert cache.execute([["GET", key]], write=False) == [value]
    assert cache.execute([["DEL", key]]) == [1]
    assert emulator.redis.dbsize() == 0
