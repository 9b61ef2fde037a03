"""No API route reaches the API's own state or the rate limiter's (issue: any key could
reset or break rate limits through the ``ratelimit`` cache layer).

Each test first builds real limiter state on the emulator (an API key's window, a
``/v1/ratelimit`` identifier's window), records it byte for byte with DUMP through the
emulator's REST API, then attacks it through one route with other API keys, and finally
checks both the stored state and the behaviour a user sees: the victim's remaining
allowance keeps counting down and the limit still refuses at the same request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from continuum.app import Api, ApiSettings, Request, Response
from continuum.cache import LAYERS, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle

LIMIT = 4
API_LAYERS = [name for name in LAYERS if name != "ratelimit"]


class Harness:
    def __init__(self, emulator: EmulatorHandle) -> None:
        self.emulator = emulator
        self.cache = UpstashCache(rest_url=emulator.url, rest_token=emulator.token)
        # Fresh keys per test: refused identities are remembered process-wide (by design).
        run = uuid.uuid4().hex[:12]
        self.victim = f"victim-{run}"
        self.attackers = [f"attacker-{n}-{run}" for n in range(12)]
        settings = ApiSettings(
            api_keys=(self.victim, *self.attackers), rate_limit=LIMIT, rate_window=60
        )
        self.api = Api(settings, cache=self.cache, sink=lambda line: None)
        self._uses: dict[str, int] = {}

    def call(self, method: str, path: str, key: str, body: object = None) -> Response:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        return self.api.handle(
            Request.build(method, path, headers=headers, body=data, raw_path=True)
        )

    def attack(self, method: str, path: str, body: object = None) -> Response:
        """Each attacker key sends fewer requests than the limit, so every attack reaches
        its route instead of being refused by the attacker's own rate limit."""
        for key in self.attackers:
            if self._uses.get(key, 0) < LIMIT - 1:
                self._uses[key] = self._uses.get(key, 0) + 1
                return self.call(method, path, key, body)
        raise AssertionError("the test ran out of attacker keys")

    def internal_state(self) -> dict[str, Any]:
        """Every key under the toolkit's namespace with its type, whole contents and
        whether it expires, read over REST."""
        reads = {
            "zset": ["ZRANGE", "{}", "0", "-1", "WITHSCORES"],
            "hash": ["HGETALL", "{}"],
            "string": ["GET", "{}"],
        }
        with httpx.Client(
            base_url=self.emulator.url,
            headers={"Authorization": f"Bearer {self.emulator.token}"},
        ) as http:

            def one(command: list[str]) -> Any:
                return http.post("/", json=command).json()["result"]

            state = {}
            for key in sorted(one(["KEYS", "continuum:*"])):
                kind = one(["TYPE", key])
                read = [part.format(key) for part in reads[kind]]
                state[key] = (kind, one(read), one(["PTTL", key]) > 0)
            return state

    def limiter_decision(self, identifier: str) -> dict[str, Any]:
        path = "/v1/ratelimit/" + quote(identifier, safe="")
        reply = self.attack("POST", path, {"limit": 2, "window": 60, "cost": 0})
        assert reply.status == 200, reply.body
        result: dict[str, Any] = json.loads(reply.body)
        return result


@pytest.fixture
def harness(emulator: EmulatorHandle) -> Iterator[Harness]:
    h = Harness(emulator)
    yield h
    h.cache.close()


def _victim_spends(h: Harness, count: int) -> list[str]:
    return [
        h.call("GET", "/v1/stats", h.victim).headers["ratelimit-remaining"] for _ in range(count)
    ]


def _assert_state_untouched(h: Harness, before: dict[str, Any], spent: int) -> None:
    """The victim's entries are byte for byte what they were (attackers' own windows are
    new keys), and the victim's allowance counts on from where it was."""
    after = h.internal_state()
    assert {k: after.get(k) for k in before} == before, "a route changed the limiter's state"
    left = _victim_spends(h, LIMIT - spent)
    assert left == [str(n) for n in range(LIMIT - spent - 1, -1, -1)]
    refused = h.call("GET", "/v1/stats", h.victim)
    assert refused.status == 429, refused.body


def _setup(h: Harness) -> dict[str, Any]:
    assert _victim_spends(h, 2) == [str(LIMIT - 1), str(LIMIT - 2)]
    h.call("POST", "/v1/ratelimit/victim-user", h.victim, {"limit": 2, "window": 60})
    state = h.internal_state()
    assert any(k.startswith("continuum:api:") for k in state), state
    assert any(k.startswith("continuum:rl:") for k in state), state
    return state


def test_the_ratelimit_layer_is_not_on_the_api(harness: Harness) -> None:
    before = _setup(harness)
    reply = harness.attack(
        "PUT", "/v1/cache/ratelimit/sliding_log:60000:victim-user", {"value": 1, "ttl": 31536000}
    )
    assert reply.status == 404
    assert json.loads(reply.body) == {
        "error": {
            "code": "not_found",
            "message": "unknown layer 'ratelimit'; known layers: "
            + ", ".join(API_LAYERS)
            + "; rate limits are checked with POST /v1/ratelimit/{identifier}",
        }
    }
    decision = harness.limiter_decision("victim-user")
    assert (decision["allowed"], decision["remaining"]) == (True, 1)
    _assert_state_untouched(harness, before, spent=3)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_cache_key_routes_cannot_reach_internal_keys(harness: Harness, method: str) -> None:
    before = _setup(harness)
    body = {"value": "x"} if method == "PUT" else None
    targets = [*sorted(before)[:2], "continuum:api:", "../continuum:rl:x"]
    for layer in API_LAYERS:
        for target in targets:
            path = f"/v1/cache/{layer}/" + quote(target, safe="")
            reply = harness.attack(method, path, body)
            assert reply.status in {200, 400, 404}, reply.body
    _assert_state_untouched(harness, before, spent=3)


@pytest.mark.parametrize(
    "body",
    [
        {"prefix": "apikey:"},
        {"prefix": "continuum:"},
        {"prefix": "sliding_log:"},
        {"pattern": "*", "allow_all": True},
        {"pattern": "[^!]*", "allow_all": True},
        {"pattern": "continuum:*"},
    ],
    ids=lambda body: json.dumps(body),
)
def test_invalidation_cannot_reach_internal_keys(harness: Harness, body: dict[str, Any]) -> None:
    before = _setup(harness)
    for layer in API_LAYERS:
        reply = harness.attack("POST", f"/v1/cache/{layer}/invalidate", body)
        assert reply.status in {200, 400}, reply.body
    _assert_state_untouched(harness, before, spent=3)


def test_the_limiter_route_keeps_api_keys_apart(harness: Harness) -> None:
    before = _setup(harness)
    identity = next(k for k in before if k.startswith("continuum:api:")).rsplit(":", 1)[1]
    for identifier in (identity, "api:" + identity, "../api:" + identity):
        path = "/v1/ratelimit/" + quote(identifier, safe="")
        reply = harness.attack("POST", path, {"limit": 2, "window": 60, "cost": 2})
        assert reply.status == 200, reply.body
    _assert_state_untouched(harness, before, spent=3)


def test_publish_stats_and_health_write_no_internal_state(harness: Harness) -> None:
    before = _setup(harness)
    for method, path, body in (
        ("POST", "/v1/publish/continuum:api:", {"message": "x"}),
        ("GET", "/v1/stats", None),
        ("GET", "/health", None),
    ):
        assert harness.attack(method, path, body).status == 200
    _assert_state_untouched(harness, before, spent=3)
