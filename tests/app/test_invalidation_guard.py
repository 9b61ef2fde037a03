"""/v1/cache/{layer}/invalidate follows the library's one rule against mass deletion: a
pattern that does not start with a literal character needs "allow_all": true."""

from __future__ import annotations

import json
import uuid

import pytest

from continuum.app import Api, ApiSettings, Request
from continuum.cache import UpstashCache


@pytest.fixture
def api() -> Api:
    key = uuid.uuid4().hex
    cache = UpstashCache(mode="local")
    settings = ApiSettings(api_keys=(key,), rate_limit=1000)
    built = Api(settings, cache=cache, sink=lambda line: None)
    built.test_key = key  # type: ignore[attr-defined]
    return built


def call(api: Api, method: str, path: str, body: object = None) -> tuple[int, object]:
    headers = {"authorization": f"Bearer {api.test_key}"}  # type: ignore[attr-defined]
    data = b"" if body is None else json.dumps(body).encode()
    reply = api.handle(Request.build(method, path, headers=headers, body=data))
    return reply.status, json.loads(reply.body)


def _bad(message: str) -> tuple[int, object]:
    return 400, {"error": {"code": "bad_request", "message": message}}


@pytest.mark.parametrize("pattern", ["*", "?*", "[a-z]*", "[^!]*", "*x", ""])
def test_a_pattern_that_can_match_the_whole_layer_needs_allow_all(api: Api, pattern: str) -> None:
    for key in ("a1", "b2", "!x"):
        assert call(api, "PUT", f"/v1/cache/query/{key}", {"value": key})[0] == 200
    refused = call(api, "POST", "/v1/cache/query/invalidate", {"pattern": pattern})
    assert refused == _bad(
        f"pattern {pattern!r} can match every key in the 'query' layer (it does not start "
        'with a literal character); send "allow_all": true to mean it'
    )
    assert call(api, "GET", "/v1/cache/query/a1")[0] == 200
    not_true = call(
        api, "POST", "/v1/cache/query/invalidate", {"pattern": pattern, "allow_all": "true"}
    )
    assert not_true == _bad("allow_all must be True or False, not 'true'")
    allowed = call(
        api, "POST", "/v1/cache/query/invalidate", {"pattern": pattern, "allow_all": True}
    )
    assert allowed[0] == 200


def test_the_empty_prefix_and_the_old_flag_name_are_refused(api: Api) -> None:
    assert call(api, "PUT", "/v1/cache/query/a", {"value": 1})[0] == 200
    assert call(api, "POST", "/v1/cache/query/invalidate", {"prefix": ""}) == _bad(
        "an empty prefix matches every key in the 'query' layer; "
        'send {"pattern": "*", "allow_all": true} to mean it'
    )
    assert call(
        api, "POST", "/v1/cache/query/invalidate", {"pattern": "*", "allow_broad": True}
    ) == _bad('"allow_broad" is spelled "allow_all"')
    assert call(api, "GET", "/v1/cache/query/a")[0] == 200
    assert call(api, "POST", "/v1/cache/query/invalidate", {"pattern": "a*"}) == (
        200,
        {"layer": "query", "pattern": "a*", "deleted": 1},
    )
