"""The pytest plugin, as a user's test suite sees it (run through pytester)."""

from __future__ import annotations

import pytest

USER_TESTS = """
import os
from upstash_redis import Redis

def count_visit():
    redis = Redis.from_env(rest_retries=0, allow_telemetry=False)
    return redis.incr("visits")

def test_first(upstash_env):
    assert os.environ["UPSTASH_REDIS_REST_URL"] == upstash_env.url
    assert count_visit() == 1
    assert count_visit() == 2
    assert upstash_env.billed() == 2

def test_second_starts_empty(upstash_emulator, monkeypatch):
    upstash_emulator.apply_env(monkeypatch)
    assert count_visit() == 1
    assert upstash_emulator.billed() == 1
    assert upstash_emulator.token not in repr(upstash_emulator)

def test_env_is_restored():
    assert "UPSTASH_REDIS_REST_URL" not in os.environ

def test_limits_and_server_sent_events(upstash_emulator):
    import httpx
    auth = {"Authorization": f"Bearer {upstash_emulator.token}"}
    big = httpx.post(f"{upstash_emulator.url}/set/big", content=b"x" * (11 << 20),
                     headers=auth, timeout=60)
    assert big.status_code == 413 and "max request size exceeded" in big.json()["error"]
    with httpx.stream("POST", f"{upstash_emulator.url}/subscribe/c", headers=auth,
                      timeout=10) as stream:
        lines = (line for line in stream.iter_lines() if line)
        assert next(lines) == "data: subscribe,c,1"
        published = httpx.post(f"{upstash_emulator.url}/publish/c/m", headers=auth)
        assert published.json() == {"result": 1}
        assert next(lines) == "data: message,c,m"
"""


def test_fixtures_give_a_clean_emulator_per_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UPSTASH_REDIS_REST_URL", raising=False)
    monkeypatch.delenv("UPSTASH_REDIS_REST_TOKEN", raising=False)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)
