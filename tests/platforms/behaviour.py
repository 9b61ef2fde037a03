"""The behaviour every platform must show, written once and run on each of them.

A platform test supplies one callable::

    send(method: str, path: str, headers: dict[str, str], body: bytes | None)
        -> tuple[int, Mapping[str, str], bytes]        # status, headers, body

that delivers a request through the real platform path (a Lambda event through
``handler``, the built Vercel function, the Worker under Pyodide, ``continuum dev`` over
a socket) to the reference API configured with ``ENV`` and an emulator. ``path`` is
already percent-encoded, as it would travel in a URL. Then::

    import behaviour  # tests/platforms is on sys.path (see conftest.py)

    @pytest.mark.parametrize("scenario", behaviour.UP, ids=behaviour.ids(behaviour.UP))
    def test_behaviour(scenario, send):
        scenario.run(behaviour.Client(send))

    @pytest.mark.parametrize("scenario", behaviour.DOWN, ids=behaviour.ids(behaviour.DOWN))
    def test_behaviour_when_upstash_is_down(scenario, send_to_dead_upstash):
        scenario.run(behaviour.Client(send_to_dead_upstash))

``DOWN`` scenarios need the API pointed at an Upstash URL where nothing answers (the
``dead_upstash_url`` fixture in ``tests/platforms/conftest.py`` gives one): every request
must still be answered, from the request's local fallback, with ``X-Cache-Backend: local``.

Each scenario authenticates with its own API key, so one scenario's rate-limit window
never leaks into another's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

Send = Callable[[str, str, Mapping[str, str], "bytes | None"], tuple[int, Mapping[str, str], bytes]]

RATE_LIMIT = 10
MAX_BODY = 64 * 1024
KEYS: dict[str, str] = {
    name: f"bhv-{name}-7f3a9c2e51d04b68"
    for name in (
        "auth",
        "cache",
        "invalidate",
        "rate",
        "limiter",
        "hostile",
        "numbers",
        "paths",
        "percent",
        "depth",
        "publish",
        "stats",
        "down",
    )
}
# What a platform test must put in the API's environment (plus the Upstash URL/token);
# the keys are listed with stray spaces and empty entries, as people paste them.
ENV: dict[str, str] = {
    "CONTINUUM_API_KEYS": " , ".join(KEYS.values()) + ", ,",
    "CONTINUUM_RATE_LIMIT": str(RATE_LIMIT),
    "CONTINUUM_RATE_WINDOW": "60",
    "CONTINUUM_MAX_BODY": str(MAX_BODY),
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error_code(self) -> str:
        payload = self.json()
        assert isinstance(payload, dict) and set(payload) == {"error"}, payload
        assert set(payload["error"]) == {"code", "message"}, payload
        assert payload["error"]["message"], payload
        return str(payload["error"]["code"])

    def describe(self) -> str:
        return f"{self.status} {self.headers} {self.body[:300]!r}"


class Client:
    """Wraps a platform's ``send`` with JSON and auth conveniences."""

    def __init__(self, send: Send) -> None:
        self._send = send

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json_body: object = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if key is not None:
            sent["authorization"] = f"Bearer {KEYS[key]}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["content-type"] = "application/json"
        status, got, data = self._send(method, path, sent, body)
        reply = Reply(status, {k.lower(): v for k, v in got.items()}, data)
        _check_common_headers(reply)
        return reply


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Client], None]


def ids(scenarios: list[Scenario]) -> list[str]:
    return [s.name for s in scenarios]


def _check_common_headers(reply: Reply) -> None:
    """Every response, errors included, says where its data came from and what it cost."""
    assert "server-timing" in reply.headers, reply.describe()
    assert reply.headers.get("x-cache-backend") in {"upstash", "local"}, reply.describe()
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.describe()
    if reply.status >= 400:
        reply.error_code()
    for secret in KEYS.values():
        assert secret.encode() not in reply.body, "an API key leaked into a response"


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


# -- with Upstash up ------------------------------------------------------------------


def health_needs_no_key(client: Client) -> None:
    reply = client.call("GET", "/health")
    assert reply.status == 200, reply.describe()
    payload = reply.json()
    assert payload["backend"] == "upstash" and payload["status"] == "ok", payload
    assert payload["circuit"] == "closed" and payload["version"], payload
    assert reply.headers["x-cache-backend"] == "upstash"
    probe = client.call("HEAD", "/health")
    assert probe.status == 200, f"uptime checkers probe with HEAD: {probe.describe()}"
    assert probe.headers["x-cache-backend"] == "upstash", probe.describe()
    assert probe.body == b"", f"a HEAD answer has no body: {probe.describe()}"


def auth_is_required_on_v1(client: Client) -> None:
    missing = client.call("GET", "/v1/stats")
    assert missing.status == 401 and missing.error_code() == "unauthorized", missing.describe()
    assert "bearer" in missing.headers.get("www-authenticate", "").lower()
    wrong = client.call("GET", "/v1/stats", headers={"authorization": "Bearer not-a-key"})
    assert wrong.status == 401 and wrong.error_code() == "unauthorized", wrong.describe()
    near = KEYS["auth"][:-1] + "x"
    close = client.call("GET", "/v1/stats", headers={"authorization": f"Bearer {near}"})
    assert close.status == 401, close.describe()
    basic = client.call("GET", "/v1/stats", headers={"authorization": f"Basic {KEYS['auth']}"})
    assert basic.status == 401, basic.describe()
    unknown_route = client.call("GET", "/v1/nothing-here")
    assert unknown_route.status == 401, "routes must not be discoverable without a key"
    # (no trailing spaces or non-ASCII: HTTP clients refuse to send those themselves)
    for garbage in (
        "",
        "Bearer",
        "bearer\tx",
        "Token abc",
        'Bearer "quoted"',
        "Basic Og==",
        f"Bearer {KEYS['auth']} extra",
    ):
        odd = client.call("GET", "/v1/stats", headers={"authorization": garbage})
        assert odd.status == 401 and odd.error_code() == "unauthorized", (garbage, odd.describe())
        assert "ratelimit-remaining" not in odd.headers, "a refused key must not be counted"
    good = client.call("GET", "/v1/stats", key="auth")
    assert good.status == 200, good.describe()
    spaced = client.call("GET", "/v1/stats", headers={"authorization": f"bearer   {KEYS['auth']}"})
    assert spaced.status == 200, "the scheme is case-insensitive and spaces around the key ignored"


def cache_round_trip(client: Client) -> None:
    value = {"user": "Ünïcødé ✓", "roles": ["admin"], "n": 3, "nested": {"ok": True}}
    path = _path("v1", "cache", "sessions", "user:42/profile ü")
    put = client.call("PUT", path, key="cache", json_body={"value": value, "ttl": 120})
    assert put.status == 200, put.describe()
    assert put.json()["stored"] is True and put.json()["degraded"] is False, put.describe()
    assert put.headers["x-cache-backend"] == "upstash"
    got = client.call("GET", path, key="cache")
    assert got.status == 200 and got.json()["value"] == value, got.describe()
    assert "cache" in got.headers["server-timing"], got.describe()
    other_path = _path("v1", "cache", "query", "user:42/profile ü")
    other_layer = client.call("GET", other_path, key="cache")
    assert other_layer.status == 404, "layers are separate key spaces"
    ttl_query = client.call("PUT", path + "?ttl=30", key="cache", json_body={"value": "second"})
    assert ttl_query.status == 200, ttl_query.describe()
    assert client.call("GET", path, key="cache").json()["value"] == "second"
    deleted = client.call("DELETE", path, key="cache")
    assert deleted.status == 200 and deleted.json()["deleted"] == 1, deleted.describe()
    gone = client.call("GET", path, key="cache")
    assert gone.status == 404 and gone.error_code() == "not_found", gone.describe()


def invalidation_by_prefix_and_pattern(client: Client) -> None:
    for name in ("inv:a:1", "inv:a:2", "inv:a*:3", "inv:b:1"):
        put = client.call(
            "PUT", _path("v1", "cache", "query", name), key="invalidate", json_body={"value": name}
        )
        assert put.status == 200, put.describe()
    prefix = client.call(
        "POST", "/v1/cache/query/invalidate", key="invalidate", json_body={"prefix": "inv:a*"}
    )
    assert prefix.status == 200 and prefix.json()["deleted"] == 1, "a prefix is literal, not a glob"
    pattern = client.call(
        "POST", "/v1/cache/query/invalidate", key="invalidate", json_body={"pattern": "inv:a:*"}
    )
    assert pattern.status == 200 and pattern.json()["deleted"] == 2, pattern.describe()
    kept = client.call("GET", _path("v1", "cache", "query", "inv:b:1"), key="invalidate")
    assert kept.status == 200 and kept.json()["value"] == "inv:b:1", kept.describe()
    broad = client.call(
        "POST", "/v1/cache/query/invalidate", key="invalidate", json_body={"pattern": "*"}
    )
    assert broad.status == 400 and broad.error_code() == "bad_request", broad.describe()
    assert (
        client.call("GET", _path("v1", "cache", "query", "inv:b:1"), key="invalidate").status == 200
    ), "a refused broad pattern deleted keys"
    both = client.call(
        "POST",
        "/v1/cache/query/invalidate",
        key="invalidate",
        json_body={"pattern": "x*", "prefix": "x"},
    )
    assert both.status == 400, both.describe()


def api_keys_are_rate_limited(client: Client) -> None:
    remaining: list[int] = []
    refused = None
    for _ in range(RATE_LIMIT + 1):
        reply = client.call("GET", "/v1/stats", key="rate")
        assert reply.headers.get("ratelimit-limit") == str(RATE_LIMIT), reply.describe()
        if reply.status == 429:
            refused = reply
            break
        assert reply.status == 200, reply.describe()
        remaining.append(int(reply.headers["ratelimit-remaining"]))
    assert refused is not None, f"{RATE_LIMIT + 1} requests in a window were all allowed"
    assert len(remaining) <= RATE_LIMIT
    assert remaining == sorted(remaining, reverse=True), remaining
    assert refused.error_code() == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1, refused.describe()
    assert refused.headers["ratelimit-remaining"] == "0", refused.describe()
    other = client.call("GET", "/v1/stats", key="stats")
    assert other.status == 200, "one key's limit must not refuse another key"


def limiter_endpoint_decides(client: Client) -> None:
    # Fresh identifiers: limiters remember refused ones process-wide, across flushed databases.
    user = f"user:{uuid.uuid4().hex[:12]}"
    decisions = [
        client.call(
            "POST",
            _path("v1", "ratelimit", f"{user} ü"),
            key="limiter",
            json_body={"limit": 2, "window": 60},
        )
        for _ in range(3)
    ]
    assert [d.status for d in decisions] == [200, 200, 200], [d.describe() for d in decisions]
    assert [d.json()["allowed"] for d in decisions] == [True, True, False]
    assert decisions[2].json()["remaining"] == 0 and decisions[2].json()["retry_after"] > 0
    fresh = client.call(
        "POST", _path("v1", "ratelimit", user), key="limiter", json_body={"limit": 2, "window": 60}
    )
    assert fresh.json()["allowed"] is True, "identifiers must not share a window"
    bad = client.call("POST", _path("v1", "ratelimit", "u"), key="limiter", json_body={"limit": -1})
    assert bad.status == 400 and bad.error_code() == "bad_request", bad.describe()


def publish_and_stats(client: Client) -> None:
    published = client.call(
        "POST", "/v1/publish/news", key="publish", json_body={"message": {"hello": "world"}}
    )
    assert published.status == 200 and published.json()["receivers"] == 0, published.describe()
    stats = client.call("GET", "/v1/stats", key="stats")
    assert stats.status == 200, stats.describe()
    payload = stats.json()
    assert payload["backend"] == "upstash", payload


def hostile_input_gets_clean_4xx(client: Client) -> None:
    path = _path("v1", "cache", "query", "k")
    cases: list[tuple[str, Reply, set[str]]] = [
        (
            "bad json",
            client.call(
                "PUT",
                path,
                key="hostile",
                body=b"{not json",
                headers={"content-type": "application/json"},
            ),
            {"bad_request"},
        ),
        (
            "no value",
            client.call("PUT", path, key="hostile", json_body={"ttl": 5}),
            {"bad_request"},
        ),
        (
            "bad ttl",
            client.call("PUT", path, key="hostile", json_body={"value": 1, "ttl": -5}),
            {"bad_request"},
        ),
        (
            "deep json",
            client.call("PUT", path, key="hostile", body=b"[" * 10_000 + b"]" * 10_000),
            {"bad_request"},
        ),
        ("unknown layer", client.call("GET", "/v1/cache/nope/k", key="hostile"), {"not_found"}),
        (
            "traversal",
            client.call("GET", "/v1/cache/query/a/%2E%2E/b", key="hostile"),
            {"bad_request", "not_found"},
        ),
        ("method", client.call("PATCH", path, key="hostile"), {"method_not_allowed"}),
        (
            "huge body",
            client.call("PUT", path, key="hostile", body=b"x" * (MAX_BODY + 1)),
            {"payload_too_large"},
        ),
        ("not found", client.call("GET", "/nowhere"), {"not_found"}),
    ]
    for label, reply, codes in cases:
        assert 400 <= reply.status < 500, f"{label}: {reply.describe()}"
        assert reply.error_code() in codes, f"{label}: {reply.describe()}"
    untouched = client.call("GET", path, key="hostile")
    assert untouched.status == 404, "a refused write must not have stored anything"


def numbers_are_ascii_digits_within_bounds(client: Client) -> None:
    """Unicode digits, endless digit strings and out-of-range numbers are a 400 that says
    what is allowed (str.isdigit accepts "²", which int() then refuses: that was a 500)."""
    path = _path("v1", "cache", "query", "n")
    ttl_error = "ttl must be an integer from 1 to 31536000"
    cases: list[tuple[Reply, str]] = [
        (client.call("PUT", path, key="numbers", json_body={"value": 1, "ttl": "²"}), ttl_error),
        (
            client.call("PUT", path, key="numbers", json_body={"value": 1, "ttl": "9" * 5000}),
            ttl_error,
        ),
        (
            client.call("PUT", path + "?ttl=%C2%B2", key="numbers", json_body={"value": 1}),
            ttl_error,
        ),
    ]
    limiter = _path("v1", "ratelimit", "n")
    for body, message in (
        ({"limit": "³"}, "limit must be an integer from 1 to 10000"),
        ({"limit": 10_001}, "limit must be an integer from 1 to 10000"),
        ({"limit": 1000, "cost": "①"}, "cost must be an integer from 0 to 100"),
        ({"limit": 1000, "cost": 101}, "cost must be an integer from 0 to 100"),
        ({"window": 86_401}, "window must be an integer from 1 to 86400"),
    ):
        cases.append((client.call("POST", limiter, key="numbers", json_body=body), message))
    for reply, message in cases:
        assert reply.status == 400, reply.describe()
        assert reply.json() == {"error": {"code": "bad_request", "message": message}}, (
            reply.describe()
        )
    assert client.call("GET", path, key="numbers").status == 404, "a refused write stored"


def hostile_paths_are_refused_and_counted(client: Client) -> None:
    """Paths no route could mean get a clean 4xx; with a valid key they still count.

    Otherwise a key could hammer unknown routes for free, and the refusals would lack the
    RateLimit-* headers every other /v1 answer carries.
    """
    cases: list[tuple[str, str, str, set[str]]] = [
        ("nul", "GET", "/v1/cache/query/a%00b", {"bad_request"}),
        ("invalid utf-8", "GET", "/v1/cache/query/a%FFb", {"bad_request"}),
        ("long key", "GET", "/v1/cache/query/" + "k" * 33_000, {"bad_request"}),
        ("unknown layer", "PUT", "/v1/cache/no-such-layer/k", {"not_found"}),
        ("unknown route", "GET", "/v1/no-such-route", {"not_found"}),
        ("wrong method", "POST", "/v1/stats", {"method_not_allowed"}),
    ]
    remaining: list[int] = []
    for label, method, path, codes in cases:
        reply = client.call(method, path, key="paths", body=b'{"value": 1}')
        assert 400 <= reply.status < 500, f"{label}: {reply.describe()}"
        assert reply.error_code() in codes, f"{label}: {reply.describe()}"
        if label in {"nul", "invalid utf-8"}:
            continue  # refused while decoding the URL, before the key is looked at
        limit = reply.headers.get("ratelimit-limit")
        assert limit == str(RATE_LIMIT), f"{label}: {reply.describe()}"
        remaining.append(int(reply.headers["ratelimit-remaining"]))
    assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == len(remaining), (
        f"refused requests with a valid key must each use up the window: {remaining}"
    )


def percent_in_keys_is_decoded_once(client: Client) -> None:
    """A key holding ``%`` followed by hex digits is that text, on every platform.

    The path is percent-decoded exactly once: ``%2541`` names the key ``%41``, never
    ``A``; a literal ``%FF`` or ``%00`` is text, not invalid UTF-8 or a control character.
    (API Gateway's HTTP API and Function URLs hand Lambda an already decoded path, which
    a second decoding once turned into another key or a 400.)
    """
    for key in ("100%41", "rate%FF", "nul%00end", "50%"):
        path = _path("v1", "cache", "query", key)
        put = client.call("PUT", path, key="percent", json_body={"value": key})
        assert put.status == 200, put.describe()
        assert put.json() == {"layer": "query", "key": key, "stored": True, "degraded": False}, (
            put.describe()
        )
        got = client.call("GET", path, key="percent")
        assert got.status == 200, got.describe()
        assert got.json() == {"layer": "query", "key": key, "value": key}, got.describe()
    decoded_twice = client.call("GET", _path("v1", "cache", "query", "100A"), key="percent")
    assert decoded_twice.json() == {
        "error": {"code": "not_found", "message": "no value for key '100A' in layer 'query'"}
    }, decoded_twice.describe()


def json_depth_is_bounded_alike(client: Client) -> None:
    """One bound on how deep a request body may nest, the same on every platform (the
    Worker's Pyodide stack sets it), and only after the key was checked."""
    path = _path("v1", "cache", "query", "deep")

    def nested(depth: int) -> bytes:
        return b'{"value":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    anonymous = client.call("PUT", path, body=nested(300))
    assert anonymous.status == 401 and anonymous.error_code() == "unauthorized", (
        anonymous.describe()
    )
    too_deep = client.call("PUT", path, key="depth", body=nested(257))
    assert too_deep.status == 400, too_deep.describe()
    assert too_deep.json() == {
        "error": {"code": "bad_request", "message": "the JSON body nests deeper than 256 levels"}
    }, too_deep.describe()
    deepest = client.call("PUT", path, key="depth", body=nested(256))
    assert deepest.status == 200, deepest.describe()
    got = client.call("GET", path, key="depth")
    assert got.status == 200, got.describe()
    value: Any = got.json()["value"]
    for _ in range(254):
        assert isinstance(value, list) and len(value) == 1, value
        value = value[0]
    assert value == [], value


UP: list[Scenario] = [
    Scenario("health", health_needs_no_key),
    Scenario("auth", auth_is_required_on_v1),
    Scenario("cache_round_trip", cache_round_trip),
    Scenario("invalidation", invalidation_by_prefix_and_pattern),
    Scenario("rate_limit", api_keys_are_rate_limited),
    Scenario("limiter_endpoint", limiter_endpoint_decides),
    Scenario("publish_and_stats", publish_and_stats),
    Scenario("hostile_input", hostile_input_gets_clean_4xx),
    Scenario("numbers", numbers_are_ascii_digits_within_bounds),
    Scenario("hostile_paths", hostile_paths_are_refused_and_counted),
    Scenario("percent_keys", percent_in_keys_is_decoded_once),
    Scenario("json_depth", json_depth_is_bounded_alike),
]


# -- with Upstash down ----------------------------------------------------------------


def down_answers_from_fallback(client: Client) -> None:
    health = client.call("GET", "/health")
    assert health.status == 200, health.describe()
    assert health.json()["backend"] == "local" and health.json()["status"] == "degraded"
    assert health.headers["x-cache-backend"] == "local"
    path = _path("v1", "cache", "query", "when-down")
    put = client.call("PUT", path, key="down", json_body={"value": [1, 2, 3]})
    assert put.status == 200, put.describe()
    assert put.json()["degraded"] is True, "a write to the fallback must say it is degraded"
    assert put.headers["x-cache-backend"] == "local", put.describe()
    assert put.headers.get("ratelimit-limit") == str(RATE_LIMIT), "limits fail open, headers stay"
    got = client.call("GET", path, key="down")
    # The fallback lives exactly as long as its request: a value written during the outage
    # is not served to a later request (that would be one instance's private, stale copy).
    assert got.status == 404 and got.error_code() == "not_found", got.describe()
    assert got.headers["x-cache-backend"] == "local", got.describe()
    stats = client.call("GET", "/v1/stats", key="down")
    assert stats.status == 200 and stats.headers["x-cache-backend"] == "local", stats.describe()


def down_still_requires_a_key(client: Client) -> None:
    reply = client.call("GET", "/v1/stats", headers={"authorization": "Bearer wrong"})
    assert reply.status == 401 and reply.error_code() == "unauthorized", reply.describe()


DOWN: list[Scenario] = [
    Scenario("down_fallback", down_answers_from_fallback),
    Scenario("down_auth", down_still_requires_a_key),
]
