"""Round trips per reference-API request, counted by the emulator per endpoint.

Each ``/v1`` route that touches the cache sends the API key's limit check and its cache
command in one request (issue: every request made two, the check then the command).
A refused request changes no data and reads none; a known repeat offender sends nothing.
Run sync (``Api.handle`` over ``UpstashCache``) and async (``Api.handle_async`` over
``AsyncUpstashCache``), over both emulator backends.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest

from continuum.app import Api, ApiSettings, Request, Response
from continuum.cache import AsyncUpstashCache, UpstashCache
from continuum.emulator.pytest_plugin import EmulatorHandle
from continuum.ratelimit import blocked_identifiers
from continuum.rest.scripts import scripts

LIMIT = 3


def endpoints(command: int = 0, pipeline: int = 0) -> dict[str, int]:
    return {"command": command, "pipeline": pipeline, "multi-exec": 0, "subscribe": 0}


class Client:
    """The API over the emulator, sync or async, with one API key."""

    def __init__(self, emulator: EmulatorHandle, flavour: str) -> None:
        self.emulator = emulator
        self.flavour = flavour
        self.key = f"key-{uuid.uuid4().hex[:12]}"
        settings = ApiSettings(api_keys=(self.key,), rate_limit=LIMIT, rate_window=3600)
        self.lines: list[str] = []
        if flavour == "sync":
            self.cache: UpstashCache | None = UpstashCache(
                rest_url=emulator.url, rest_token=emulator.token
            )
            self.api = Api(settings, cache=self.cache, sink=self.lines.append)
        else:
            self.cache = None
            self.acache = AsyncUpstashCache(rest_url=emulator.url, rest_token=emulator.token)
            self.api = Api(settings, async_cache=self.acache, sink=self.lines.append)
        self.loop = asyncio.new_event_loop()

    def call(self, method: str, path: str, body: object = None, key: str | None = None) -> Response:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if path.startswith("/v1"):
            headers["authorization"] = f"Bearer {key or self.key}"
        request = Request.build(method, path, headers=headers, body=data, raw_path=True)
        if self.flavour == "sync":
            return self.api.handle(request)
        return self.loop.run_until_complete(self.api.handle_async(request))

    def counted(self, method: str, path: str, body: object = None) -> tuple[Response, dict]:
        """The answer and the round trips it took, per endpoint."""
        self.emulator.reset_billing()
        response = self.call(method, path, body)
        return response, self.emulator.requests_by_endpoint()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        else:
            self.loop.run_until_complete(self.acache.aclose())
        self.loop.close()


@pytest.fixture(params=["sync", "async"])
def client(emulator: EmulatorHandle, request: pytest.FixtureRequest) -> Iterator[Client]:
    blocked_identifiers.clear()
    made = Client(emulator, request.param)
    made.call("GET", "/health")  # as in a warm container: the scripts are loaded
    made.call("POST", "/v1/ratelimit/warm", {"limit": 5})
    made.call("PUT", "/v1/cache/query/warm", {"value": 1})
    emulator.flush()  # an empty database; the key's window starts again
    blocked_identifiers.clear()
    yield made
    made.close()
    blocked_identifiers.clear()


def stored(emulator: EmulatorHandle) -> dict[bytes, bytes]:
    """Every cache key (not the limiter's state) and its value, read without HTTP."""
    redis = emulator.redis
    return {k: redis.get(k) for k in redis.keys("*") if not k.startswith(b"continuum:")}


def test_a_read_is_one_pipeline_with_the_check(client: Client) -> None:
    client.call("PUT", "/v1/cache/query/k", {"value": {"a": 1}})
    hit, trips = client.counted("GET", "/v1/cache/query/k")
    assert hit.status == 200 and hit.json() == {"layer": "query", "key": "k", "value": {"a": 1}}
    assert trips == endpoints(pipeline=1)
    miss, trips = client.counted("GET", "/v1/cache/query/absent")
    assert miss.status == 404 and trips == endpoints(pipeline=1)
    assert miss.headers["ratelimit-remaining"] == "0"


def test_a_write_is_one_script_with_the_check(client: Client) -> None:
    put, trips = client.counted("PUT", "/v1/cache/query/k", {"value": "v", "ttl": 60})
    assert put.status == 200
    assert put.json() == {"layer": "query", "key": "k", "stored": True, "degraded": False}
    assert put.headers["ratelimit-remaining"] == "2"
    assert trips == endpoints(command=1)
    assert stored(client.emulator) == {b"query:k": b'"v"'}
    assert 0 < client.emulator.redis.ttl(b"query:k") <= 60
    deleted, trips = client.counted("DELETE", "/v1/cache/query/k")
    assert deleted.json() == {"layer": "query", "key": "k", "deleted": 1}
    assert trips == endpoints(command=1) and stored(client.emulator) == {}


def test_a_binary_value_rides_in_the_script(client: Client) -> None:
    """A value past the compression threshold is stored as binary (not UTF-8): the gate
    carries it hex-encoded and the server stores the exact bytes."""
    value = "x" * 5000
    put, trips = client.counted("PUT", "/v1/cache/query/big", {"value": value})
    assert put.status == 200 and trips == endpoints(command=1)
    raw = client.emulator.redis.get(b"query:big")
    assert raw.startswith(b"\x00z") and len(raw) < 200
    got = client.call("GET", "/v1/cache/query/big")
    assert got.json() == {"layer": "query", "key": "big", "value": value}


def test_invalidate_stats_publish_and_health(client: Client) -> None:
    nothing, trips = client.counted("POST", "/v1/cache/query/invalidate", {"prefix": "p"})
    assert nothing.json() == {"layer": "query", "prefix": "p", "deleted": 0}
    assert trips == endpoints(pipeline=1)
    stats, trips = client.counted("GET", "/v1/stats")
    assert stats.status == 200 and stats.json()["keys"] == 1  # the key's own window
    assert trips == endpoints(pipeline=1)
    published, trips = client.counted("POST", "/v1/publish/news", {"message": "hi"})
    assert published.json() == {"channel": "news", "receivers": 0}
    assert trips == endpoints(command=1)
    health, trips = client.counted("GET", "/health")
    assert health.json()["status"] == "ok" and trips == endpoints(command=1)


def test_invalidating_found_keys_unlinks_them_after_the_scan(client: Client) -> None:
    client.emulator.redis.set(b"query:p1", b"1")
    done, trips = client.counted("POST", "/v1/cache/query/invalidate", {"prefix": "p"})
    assert done.json() == {"layer": "query", "prefix": "p", "deleted": 1}
    assert trips == endpoints(pipeline=1, command=1)  # the SCAN rode with the check


def test_the_ratelimit_route_checks_the_key_then_the_identifier(client: Client) -> None:
    """Two limiter scripts: the identifier's must not count when the key is refused, and
    a script cannot call another, so they go one after the other."""
    answer, trips = client.counted("POST", "/v1/ratelimit/user-1", {"limit": 5})
    assert answer.json()["remaining"] == 4 and trips == endpoints(command=2)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/cache/query/k", None),
        ("PUT", "/v1/cache/query/k", {"value": "new"}),
        ("DELETE", "/v1/cache/query/k", None),
        ("GET", "/v1/stats", None),
        ("POST", "/v1/cache/query/invalidate", {"prefix": "k"}),
    ],
)
def test_the_log_line_bills_what_the_server_bills(
    client: Client, method: str, path: str, body: object
) -> None:
    """The joined check's script calls are counted as Upstash bills them (1 per EVALSHA
    and per pipelined command, plus each redis.call the scripts made)."""
    client.emulator.redis.set(b"query:k", b'"old"')
    client.lines.clear()
    answer, _ = client.counted(method, path, body)
    assert answer.status == 200
    (line,) = [json.loads(text) for text in client.lines]
    assert line["billed_commands"] == client.emulator.billed() > line["commands"]


@pytest.mark.parametrize(
    ("method", "path", "body", "trips"),
    [
        ("PUT", "/v1/cache/query/k", {"value": "new"}, endpoints(command=1)),
        ("DELETE", "/v1/cache/query/k", None, endpoints(command=1)),
        ("POST", "/v1/cache/query/invalidate", {"prefix": "k"}, endpoints(pipeline=1)),
        ("POST", "/v1/publish/k", {"message": "m"}, endpoints(command=1)),
        ("POST", "/v1/ratelimit/someone", {"limit": 5}, endpoints(command=1)),
    ],
)
def test_a_refused_request_changes_nothing(
    client: Client, method: str, path: str, body: object, trips: dict[str, int]
) -> None:
    client.emulator.redis.set(b"query:k", b'"old"')
    for _ in range(LIMIT):
        assert client.call("GET", "/v1/cache/query/k").status == 200
    before = stored(client.emulator)
    windows = sorted(client.emulator.redis.keys("continuum:*"))
    with client.emulator.redis.pubsub() as sub:
        sub.subscribe("k")
        assert sub.get_message(timeout=1)["type"] == "subscribe"
        refused, sent = client.counted(method, path, body)
        assert sub.get_message(timeout=0.2) is None  # nothing was published
    assert refused.status == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) > 0
    assert sent == trips
    assert stored(client.emulator) == before == {b"query:k": b'"old"'}
    assert sorted(client.emulator.redis.keys("continuum:*")) == windows  # no new window
    # known now: the next refusal sends nothing at all
    again, sent = client.counted(method, path, body)
    assert again.status == 429 and sent == endpoints()


def test_a_refused_read_is_dropped(client: Client) -> None:
    client.emulator.redis.set(b"query:k", b'"secret"')
    for _ in range(LIMIT):
        client.call("PUT", "/v1/cache/query/other", {"value": 1})
    refused, trips = client.counted("GET", "/v1/cache/query/k")
    assert refused.status == 429 and b"secret" not in refused.body
    assert trips == endpoints(pipeline=1)
    again, trips = client.counted("GET", "/v1/cache/query/k")
    assert again.status == 429 and trips == endpoints()


def test_a_fresh_container_sends_one_request_for_its_first_read(
    emulator: EmulatorHandle,
) -> None:
    """No NOSCRIPT round trip: the first check of a new container goes as EVAL."""
    blocked_identifiers.clear()
    scripts.forget()
    made = Client(emulator, "sync")
    try:
        emulator.redis.set(b"query:k", b'"v"')
        emulator.redis.script_flush()
        first, trips = made.counted("GET", "/v1/cache/query/k")
        assert first.status == 200 and first.json()["value"] == "v"
        assert trips == endpoints(pipeline=1)
        put, trips = made.counted("PUT", "/v1/cache/query/k", {"value": "w"})
        assert put.status == 200 and trips == endpoints(command=1)
    finally:
        made.close()


def test_when_upstash_is_down_the_request_answers_from_its_fallback() -> None:
    blocked_identifiers.clear()
    settings = ApiSettings(api_keys=("k",), rate_limit=LIMIT, rate_window=3600)
    down = UpstashCache(rest_url="http://127.0.0.1:9", rest_token="t", max_retries=0, timeout=1.0)
    api = Api(settings, cache=down, sink=lambda line: None)
    headers = {"authorization": "Bearer k", "content-type": "application/json"}
    put = api.handle(
        Request.build("PUT", "/v1/cache/query/k", headers=headers, body=b'{"value": 1}')
    )
    assert put.status == 200 and put.headers["x-cache-backend"] == "local"
    assert put.json() == {"layer": "query", "key": "k", "stored": True, "degraded": True}
    got = api.handle(Request.build("GET", "/v1/cache/query/k", headers=headers))
    assert got.status == 404 and got.headers["x-cache-backend"] == "local"
    down.close()
