"""The answer's headers, and identifiers that cannot reach each other's keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from continuum.errors import ValidationError
from continuum.ratelimit import RateLimitResult, Reason
from continuum.ratelimit.keys import MAX_ESCAPED, encode_identifier, limiter_key


def test_headers_of_an_admitted_request_carry_delta_seconds() -> None:
    result = RateLimitResult(True, 100, 41, 1_795_000_060.0, 0.0, Reason.ALLOWED, 59.2)
    assert result.headers() == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "41",
        "RateLimit-Reset": "60",  # rounded up: waiting that long is never too early
    }
    assert result  # truthy when admitted


def test_headers_of_a_refused_request_add_retry_after() -> None:
    result = RateLimitResult(False, 10, 0, 1_795_000_003.0, 2.01, Reason.LIMITED, 2.01)
    headers = result.headers()
    assert headers["Retry-After"] == "3"
    assert headers["RateLimit-Remaining"] == "0"
    assert headers["RateLimit-Reset"] == "3"
    assert not result


def test_retry_after_is_at_least_one_second_when_refused() -> None:
    result = RateLimitResult(False, 10, 0, 0.0, 0.0, Reason.UNAVAILABLE, 0.0)
    assert result.headers()["Retry-After"] == "1"


HOSTILE = [
    "a:b",
    "a",
    ":b",
    "a%3Ab",
    "a%3ab",
    "*",
    "?",
    "[a-z]",
    "\x00",
    "a\x00b",
    "",
    " ",
    "é",
    "\udc80",  # a lone surrogate, as decoding hostile bytes can produce
    "%h" + "0" * 64,
    "x" * 40_000,
    "x" * 39_999 + "y",
]


def test_every_identifier_gets_its_own_key() -> None:
    keys = [encode_identifier(identifier) for identifier in HOSTILE]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert all(c.isalnum() or c in "-._~%" for c in key), key  # no glob, no ':'
        assert len(key) <= MAX_ESCAPED or (key.startswith("%h") and len(key) == 66)


def test_prefix_and_separators_cannot_be_forged() -> None:
    # "a" with window 60 s must not meet an identifier that spells ":60000:a" etc.
    assert limiter_key("ratelimit:", "sliding_log", 60_000_000, "a:b") != limiter_key(
        "ratelimit:", "sliding_log", 60_000_000, "a"
    )
    forged = limiter_key("ratelimit:", "sliding_log", 1_000_000, "1000:a")
    assert forged != limiter_key("ratelimit:", "sliding_log", 1_000_000_000, "a")
    assert limiter_key("ratelimit:", "fixed_window", 60_000_000, "u") == (
        "ratelimit:fixed_window:60000:u"
    )
    sub_ms = {limiter_key("ratelimit:", "sliding_log", us, "u") for us in (1000, 1100, 1200)}
    assert len(sub_ms) == 3


def test_bytes_and_str_identifiers_agree_and_others_are_refused() -> None:
    assert encode_identifier("é") == encode_identifier("é".encode())
    # the seed passes user_id, often an int: keyed by its decimal form
    assert encode_identifier(42) == encode_identifier("42")
    for bad in (4.2, None, True, ["a"]):
        with pytest.raises(ValidationError) as caught:
            encode_identifier(bad)  # type: ignore[arg-type]
        kind = type(bad).__name__
        assert str(caught.value) == f"a rate-limit identifier must be str, bytes or int, not {kind}"


@given(
    st.lists(
        st.one_of(st.text(), st.binary()),
        min_size=2,
        max_size=8,
        unique_by=lambda x: x.encode("utf-8", "surrogatepass") if isinstance(x, str) else x,
    )
)
def test_distinct_identifiers_never_collide(identifiers: list[str | bytes]) -> None:
    encoded = [encode_identifier(identifier) for identifier in identifiers]
    assert len(set(encoded)) == len(encoded)
