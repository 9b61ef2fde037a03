"""Fixtures for the limiter's tests: raw Redis connections and synthetic-clock scripts.

``raw_redis`` talks to a real server (the redis-server ``scripts/test`` starts, or
fakeredis) without redis-py's reply post-processing, so replies look exactly like what
the emulator relays: bytes, ints and lists.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import redis

RawCall = Callable[..., object]


class RawRedis:
    """``call(*argv)`` on one connection; errors raise ``redis.ResponseError``."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.pool = client.connection_pool

    def __call__(self, *argv: object) -> object:
        conn = self.pool.get_connection()
        try:
            conn.send_command(*argv)
            return conn.read_response()
        finally:
            self.pool.release(conn)


def _real_redis() -> redis.Redis:
    url = os.environ.get("CONTINUUM_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CONTINUUM_TEST_REDIS_URL is not set (scripts/test starts redis-server)")
        pytest.skip("needs a real redis-server: run ./scripts/test or set CONTINUUM_TEST_REDIS_URL")
    return redis.Redis.from_url(url, protocol=2)


@pytest.fixture(params=["redis", "fakeredis"])
def raw_redis(request: pytest.FixtureRequest) -> Iterator[RawRedis]:
    if request.param == "redis":
        client = _real_redis()
    else:
        import fakeredis

        client = fakeredis.FakeRedis(protocol=2)
    client.flushdb()
    yield RawRedis(client)
    client.flushdb()
    client.close()
