"""One rule against deleting everything, on every path of the library that deletes in bulk.

A pattern that does not start with a literal character can match every key in its scope
(the database, or a layer) and needs ``allow_all=True``; an empty prefix is refused;
``flush`` runs only for ``confirm=True`` itself. Each case is an attack that got through
before (``?*``, ``[a-z]*``, ``[^!]*`` on a layer, ``delete_prefix("")`` on a layer,
``flush(confirm="false")``), run on every backend, sync and async, and checked to have
deleted nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from continuum import AsyncUpstashCache, UpstashCache, ValidationError

BROAD = ["*", "?*", "*?", "**", "[a-z]*", "[^!]*", "[!x]*", ""]


def broad_message(pattern: str, scope: str, how: str) -> str:
    return (
        f"pattern {pattern!r} can match every key in {scope} (it does not start with a "
        f"literal character); {how} to mean it"
    )


DATABASE = ("the database", "pass allow_all=True")
SESSIONS = ("the 'sessions' layer", "pass allow_all=True or call clear()")


def seed(cache: UpstashCache) -> None:
    cache.set("a", 1)
    cache.set("query:b", 2)
    cache.layer("sessions").set("c", 3)  # on the sessions database


def untouched(cache: UpstashCache) -> None:
    assert [cache.get("a"), cache.get("query:b"), cache.layer("sessions").get("c")] == [1, 2, 3]


@pytest.mark.parametrize("pattern", BROAD)
def test_a_broad_pattern_needs_the_flag_on_the_cache(cache: UpstashCache, pattern: str) -> None:
    seed(cache)
    with pytest.raises(ValidationError) as caught:
        cache.delete_pattern(pattern)
    assert str(caught.value) == broad_message(pattern, *DATABASE)
    untouched(cache)


@pytest.mark.parametrize("pattern", BROAD)
def test_a_broad_pattern_needs_the_flag_on_a_layer(cache: UpstashCache, pattern: str) -> None:
    seed(cache)
    with pytest.raises(ValidationError) as caught:
        cache.layer("sessions").delete_pattern(pattern)
    assert str(caught.value) == broad_message(pattern, *SESSIONS)
    untouched(cache)


@pytest.mark.parametrize("pattern", ["?*", "[a-z]*", "[^!]*"])
def test_with_the_flag_a_broad_pattern_deletes_its_scope_only(
    cache: UpstashCache, pattern: str
) -> None:
    seed(cache)
    cache.set("query:z", 4)
    assert cache.layer("sessions").delete_pattern(pattern, allow_all=True) == 1
    assert cache.layer("sessions").get("c") is None
    assert [cache.get("a"), cache.get("query:b"), cache.get("query:z")] == [1, 2, 4]
    assert cache.delete_pattern(pattern, allow_all=True) == 3
    assert [cache.get("a"), cache.get("query:b"), cache.get("query:z")] == [None] * 3


@pytest.mark.parametrize("pattern", ["a*", "\\*x", "\\?*", "sess[i]on:*"])
def test_a_literal_start_needs_no_flag(cache: UpstashCache, pattern: str) -> None:
    cache.set("a1", 1)
    cache.set("*x", 2)
    cache.set("?y", 3)
    cache.set("session:q", 4)
    cache.set("b", 5)
    assert cache.delete_pattern(pattern) == 1
    assert cache.get("b") == 5


@pytest.mark.parametrize("flag", ["false", "yes", 1, 0, None, [True]])
def test_only_true_itself_allows_all(cache: UpstashCache, flag: Any) -> None:
    seed(cache)
    with pytest.raises(ValidationError) as caught:
        cache.delete_pattern("*", allow_all=flag)
    assert str(caught.value) == f"allow_all must be True or False, not {flag!r}"
    with pytest.raises(ValidationError) as caught:
        cache.layer("sessions").delete_pattern("*", allow_all=flag)
    assert str(caught.value) == f"allow_all must be True or False, not {flag!r}"
    untouched(cache)


def test_an_empty_prefix_is_refused_on_the_cache_and_on_a_layer(cache: UpstashCache) -> None:
    seed(cache)
    with pytest.raises(ValidationError) as caught:
        cache.delete_prefix("")
    assert str(caught.value) == (
        "an empty prefix matches every key in the database; "
        "use delete_pattern('*', allow_all=True) to mean it"
    )
    with pytest.raises(ValidationError) as caught:
        cache.layer("sessions").delete_prefix("")
    assert str(caught.value) == (
        "an empty prefix matches every key in the 'sessions' layer; call clear() to mean it"
    )
    untouched(cache)
    assert cache.layer("sessions").clear() == 1
    assert cache.layer("sessions").get("c") is None
    assert [cache.get("a"), cache.get("query:b")] == [1, 2]


@pytest.mark.parametrize("confirm", ["false", "true", 1, "yes", None])
def test_flush_runs_only_for_confirm_true(cache: UpstashCache, confirm: Any) -> None:
    seed(cache)
    with pytest.raises(ValidationError) as caught:
        cache.flush(confirm=confirm)
    assert str(caught.value) == f"confirm must be True or False, not {confirm!r}"
    with pytest.raises(ValidationError) as caught:
        cache.flush(confirm=False)
    assert str(caught.value) == "flush() deletes every key; call flush(confirm=True)"
    untouched(cache)
    assert cache.flush(confirm=True) is True
    assert cache.get("a") is None


async def test_the_async_client_applies_the_same_rule(acache: AsyncUpstashCache) -> None:
    await acache.set("a", 1)
    sessions = acache.layer("sessions")
    await sessions.set("c", 3)
    with pytest.raises(ValidationError) as caught:
        await acache.flush(confirm="false")  # type: ignore[arg-type]
    assert str(caught.value) == "confirm must be True or False, not 'false'"
    with pytest.raises(ValidationError) as caught:
        await acache.delete_pattern("[a-z]*")
    assert str(caught.value) == broad_message("[a-z]*", *DATABASE)
    with pytest.raises(ValidationError) as caught:
        await sessions.delete_pattern("?*")
    assert str(caught.value) == broad_message("?*", *SESSIONS)
    with pytest.raises(ValidationError) as caught:
        await sessions.delete_prefix("")
    assert str(caught.value) == (
        "an empty prefix matches every key in the 'sessions' layer; call clear() to mean it"
    )
    assert [await acache.get("a"), await sessions.get("c")] == [1, 3]
    assert await sessions.clear() == 1
    assert await acache.get("a") == 1
