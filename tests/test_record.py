"""The public records that are no longer dataclasses behave as the frozen dataclasses they
replaced (see continuum.record): each is compared with the dataclass it was."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import weakref
from typing import Any

import pytest

from continuum import CacheBackend, Database, RateLimitResult, Script, WriteResult
from continuum.config import mask_token


@dataclasses.dataclass(frozen=True)
class OldWriteResult:
    ok: bool
    backend: CacheBackend
    degraded: bool = False


@dataclasses.dataclass(frozen=True)
class OldRateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after: float
    reason: str
    reset_after: float = 0.0


@dataclasses.dataclass(frozen=True)
class OldScript:
    source: str
    sha1: str


@dataclasses.dataclass(frozen=True, repr=False)
class OldDatabase:
    name: str
    url: str
    token: str = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        return f"Database(name={self.name!r}, url={self.url!r}, token={mask_token(self.token)!r})"


PAIRS: list[tuple[Any, Any, Any]] = [
    (
        WriteResult(True, CacheBackend.LOCAL, True),
        OldWriteResult(True, CacheBackend.LOCAL, True),
        WriteResult(True, CacheBackend.LOCAL),
    ),
    (
        RateLimitResult(False, 10, 0, 1.5e9, 2.0, "limited", 2.0),
        OldRateLimitResult(False, 10, 0, 1.5e9, 2.0, "limited", 2.0),
        RateLimitResult(False, 10, 0, 1.5e9, 2.0, "limited"),
    ),
    (
        Script("return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
        OldScript("return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
        Script("return 2", "7f923f79fe76194c868d7e1d0820de36700eb649"),
    ),
    (
        Database("primary", "https://a.upstash.io", "secret-token-1"),
        OldDatabase("primary", "https://a.upstash.io", "secret-token-1"),
        Database("primary", "https://a.upstash.io", "secret-token-2"),
    ),
]


@pytest.mark.parametrize(
    "record, old, other", PAIRS, ids=["WriteResult", "RateLimit", "Script", "Database"]
)
def test_a_record_behaves_as_the_frozen_dataclass_it_replaced(
    record: Any, old: Any, other: Any
) -> None:
    name = type(record).__name__
    assert repr(record) == repr(old).replace(type(old).__qualname__, name, 1)
    twin = copy.copy(record)
    assert twin == record and hash(twin) == hash(record) and twin is not record
    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.deepcopy(record) == record
    assert hash(record) == hash(old)  # the same fields hashed the same way
    assert {record: "found"}[copy.deepcopy(record)] == "found"
    assert weakref.ref(record)() is record and weakref.ref(old)() is old
    assert record != other and (record == old) is False  # another class never compares equal
    assert type(record).__match_args__ == old.__match_args__
    field = old.__match_args__[0]
    with pytest.raises(dataclasses.FrozenInstanceError) as refused:
        setattr(record, field, None)
    with pytest.raises(dataclasses.FrozenInstanceError) as old_refused:
        setattr(old, field, None)
    assert str(refused.value) == str(old_refused.value)
    with pytest.raises(dataclasses.FrozenInstanceError) as refused:
        delattr(record, field)
    with pytest.raises(dataclasses.FrozenInstanceError) as old_refused:
        delattr(old, field)
    assert str(refused.value) == str(old_refused.value)
    with pytest.raises(AttributeError):
        record.extra = 1  # slots: no stray attributes either


def test_replace_makes_a_changed_copy_and_refuses_unknown_fields() -> None:
    result = RateLimitResult(False, 10, 0, 1.5e9, 2.0, "limited", 2.0)
    changed = result._replace(reason="blocked_cache", retry_after=1.0)
    assert changed == RateLimitResult(False, 10, 0, 1.5e9, 1.0, "blocked_cache", 2.0)
    assert result.__replace__(limit=20).limit == 20  # copy.replace's protocol (3.13)
    with pytest.raises(TypeError) as caught:
        result._replace(colour="red")
    assert str(caught.value) == "RateLimitResult has no field 'colour'"


def test_a_database_hides_its_token_and_keys_its_breaker_by_url_and_token() -> None:
    one = Database("primary", "https://a.upstash.io", "secret-token-1")
    assert repr(one) == "Database(name='primary', url='https://a.upstash.io', token='****')"
    assert one == Database("primary", "https://a.upstash.io", "secret-token-1")
    other = Database("primary", "https://a.upstash.io", "secret-token-2")
    assert one != other
    assert one.breaker_key != other.breaker_key
    assert one.breaker_key == Database("x", "https://a.upstash.io", "secret-token-1").breaker_key
    assert "secret-token-1" not in one.breaker_key
    assert pickle.loads(pickle.dumps(one)) == one


def test_a_record_matches_a_class_pattern_by_position_and_by_name() -> None:
    def where(result: object) -> str:
        match result:
            case WriteResult(True, CacheBackend.LOCAL, degraded=True):
                return "fallback"
            case WriteResult(ok=True, backend=backend):
                return backend.value
            case RateLimitResult(False, reason=reason):
                return reason
            case Database(name, url):
                return f"{name} at {url}"
        return "none"

    assert [
        where(WriteResult(True, CacheBackend.LOCAL, True)),
        where(WriteResult(True, CacheBackend.UPSTASH)),
        where(RateLimitResult(False, 10, 0, 1.5e9, 2.0, "limited")),
        where(Database("primary", "https://a.upstash.io", "secret-token-1")),
        where(WriteResult(False, CacheBackend.LOCAL)),
    ] == ["fallback", "upstash", "limited", "primary at https://a.upstash.io", "none"]
