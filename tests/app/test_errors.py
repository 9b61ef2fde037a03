"""A 500 carries a stable code and message; what Redis or the code said is logged only."""

from __future__ import annotations

import json

import httpx

from continuum.app import Api, ApiSettings, Request
from continuum.cache import UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.errors import ValidationError
from continuum.ratelimit import RateLimiter

KEY = "errors-key-3c1d"


def test_a_redis_error_is_a_stable_500_and_its_text_only_in_the_log(
    emulator: EmulatorHandle,
) -> None:
    httpx.post(
        emulator.url,
        json=["HSET", "query:h", "f", "v"],
        headers={"Authorization": f"Bearer {emulator.token}"},
    ).raise_for_status()
    lines: list[str] = []
    cache = UpstashCache(rest_url=emulator.url, rest_token=emulator.token)
    api = Api(ApiSettings(api_keys=(KEY,)), cache=cache, sink=lines.append)
    reply = api.handle(
        Request.build("GET", "/v1/cache/query/h", headers={"authorization": f"Bearer {KEY}"})
    )
    assert reply.status == 500
    assert json.loads(reply.body) == {
        "error": {"code": "internal", "message": "the cache refused the command"}
    }
    logged = json.loads(lines[-1])
    assert logged["error_code"] == "internal"
    assert logged["error_detail"] == (
        "CommandError: WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    cache.close()


def test_a_limiter_prefix_a_layer_could_reach_is_refused() -> None:
    cache = UpstashCache(mode="local")
    for prefix, layer, layer_prefix in (
        ("ratelimit:", "ratelimit", "ratelimit:"),
        ("session:limits:", "sessions", "session:"),
        ("", "sessions", "session:"),
    ):
        try:
            RateLimiter(cache, prefix=prefix)
        except ValidationError as exc:
            assert str(exc) == (
                f"a limiter prefix {prefix!r} would keep its state where the {layer!r} layer "
                f"({layer_prefix!r}) can read and delete it; use one under 'continuum:' "
                "(the default is 'continuum:rl:')"
            )
        else:
            raise AssertionError(f"prefix {prefix!r} was accepted")
    assert RateLimiter(cache, prefix="myapp:limits:").prefix == "myapp:limits:"
