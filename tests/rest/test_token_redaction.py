"""A server or proxy that echoes the Authorization header inside ``{"error": ...}`` must
not put the client's tokens into its exceptions or logs.

Neither the emulator nor the fault proxy ever echoes a request's credentials (the proxy
answers fixed bodies), so a stand-in plays the lying server: a shared proxy in front of
both databases whose error texts quote every Authorization header it has seen (raw and
percent-encoded), on a 400 or on a 200, for single commands, pipelines and transactions.
Each exception's ``str()``, ``repr()``, ``args`` and ``message`` must carry ``****`` and
at most the last four characters of a token, for every configured token: the primary's
and the sessions database's read-only one.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest

from continuum import AsyncUpstashCache, UpstashCache
from continuum.app import Api, ApiSettings, Request
from continuum.config import UpstashConfig
from continuum.errors import CommandError, TransactionAborted
from continuum.pubsub import PubSub

PRIMARY = "AXprimary-Token/with+chars=0123456789abcd"
READ_ONLY = "AYreadonly-Token_9876543210zyxwvuWXYZ"
API_KEY = "echo-test-api-key-77"


def echoed(seen: list[str]) -> str:
    """What the stand-in says: every token it saw, as a header and percent-encoded."""
    return "ERR bad request; headers seen: " + "; ".join(
        f"Authorization: Bearer {t} (in a URL: {quote(t, safe='')})" for t in seen
    )


def redacted(seen: list[str]) -> str:
    masks = {PRIMARY: "****abcd", READ_ONLY: "****WXYZ"}
    return "ERR bad request; headers seen: " + "; ".join(
        f"Authorization: Bearer {masks[t]} (in a URL: {masks[t]})" for t in seen
    )


@dataclass
class EchoServer:
    """Answers every request with ``status`` and an error body quoting the headers seen."""

    status: int = 400
    shape: str = "error"  # "error": {"error": ...}; "items": one error item per command
    seen: list[str] = field(default_factory=list)
    url: str = ""

    def body(self, request: bytes, auth: str) -> bytes:
        token = auth.removeprefix("Bearer ")
        if token not in self.seen:
            self.seen.append(token)
        text = echoed(self.seen)
        if self.shape == "items":
            return json.dumps([{"error": text} for _ in json.loads(request)]).encode()
        return json.dumps({"error": text}).encode()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    state = EchoServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = state.body(request, self.headers.get("Authorization", ""))
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(10)


def config(echo: EchoServer) -> UpstashConfig:
    return UpstashConfig.from_env({
        "UPSTASH_REDIS_REST_URL": echo.url, "UPSTASH_REDIS_REST_TOKEN": PRIMARY,
        "UPSTASH_SESSIONS_REST_URL": echo.url, "UPSTASH_SESSIONS_REST_TOKEN": READ_ONLY,
        "CONTINUUM_CACHE_FALLBACK": "false",
    })  # fmt: skip


def assert_clean(exc: BaseException, message: str) -> None:
    """The whole message, as the exception shows it every way."""
    assert str(exc) == message
    assert exc.args == (message,)
    assert repr(exc) == f"{type(exc).__name__}({message!r})"
    if isinstance(exc, CommandError):
        assert exc.message == message


@pytest.fixture
def cache(echo: EchoServer) -> Iterator[UpstashCache]:
    client = UpstashCache(config(echo))
    # the read-only token goes through the proxy first, so every later echo quotes both
    with pytest.raises(CommandError) as first:
        client.layer("sessions").get("warm-up")
    assert_clean(first.value, redacted([READ_ONLY]))
    yield client
    client.close()


BOTH = redacted([READ_ONLY, PRIMARY])


@pytest.mark.parametrize("status", [400, 200])
def test_a_single_command(echo: EchoServer, cache: UpstashCache, status: int) -> None:
    echo.status = status
    with pytest.raises(CommandError) as caught:
        cache.get("k")
    assert_clean(caught.value, BOTH)
    assert caught.value.command == "GET"


@pytest.mark.parametrize("status", [400, 200])
def test_a_pipeline_refused_whole(echo: EchoServer, cache: UpstashCache, status: int) -> None:
    echo.status = status
    with pytest.raises(CommandError) as caught, cache.pipeline() as pipe:
        pipe.get("a").get("b")
    assert_clean(caught.value, f"pipeline refused: {BOTH}")


def test_each_item_of_a_pipeline(echo: EchoServer, cache: UpstashCache) -> None:
    echo.status, echo.shape = 200, "items"
    with cache.pipeline() as pipe:
        pipe.get("a").set("b", 1)
    assert pipe.results is not None and len(pipe.results) == 2
    for item in pipe.results:
        assert isinstance(item, CommandError)
        assert_clean(item, BOTH)


@pytest.mark.parametrize("status", [400, 200])
def test_a_transaction(echo: EchoServer, cache: UpstashCache, status: int) -> None:
    echo.status = status
    with pytest.raises(TransactionAborted) as caught, cache.pipeline(transaction=True) as tx:
        tx.set("a", 1).get("a")
    assert_clean(caught.value, f"transaction discarded: {BOTH}")


async def test_the_async_client(echo: EchoServer, cache: UpstashCache) -> None:
    acache = AsyncUpstashCache(config(echo))
    try:
        with pytest.raises(CommandError) as caught:
            await acache.increment("n")
        assert_clean(caught.value, BOTH)
        echo.shape = "items"
        echo.status = 200
        async with acache.pipeline() as pipe:
            pipe.get("a")
            pipe.get("b")
        assert pipe.results is not None
        for item in pipe.results:
            assert_clean(item, BOTH)
    finally:
        await acache.aclose()


def test_a_subscription_refused(echo: EchoServer) -> None:
    cache = UpstashCache(config(echo))
    with cache.pubsub() as sub, pytest.raises(CommandError) as caught:
        sub.subscribe("chat")
    assert_clean(caught.value, redacted([PRIMARY]))
    cache.close()
    echo.seen.clear()
    with PubSub(echo.url, READ_ONLY) as alone, pytest.raises(CommandError) as caught:
        alone.subscribe("chat")  # its own token, the only one it knows
    assert_clean(caught.value, redacted([READ_ONLY]))


def test_nothing_of_a_token_reaches_a_log(
    echo: EchoServer, cache: UpstashCache, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[str] = []
    api = Api(ApiSettings(api_keys=(API_KEY,)), cache=cache, sink=lines.append)
    reply = api.handle(
        Request.build("GET", "/v1/cache/query/k", headers={"authorization": f"Bearer {API_KEY}"})
    )
    assert reply.status == 500
    # the key's limit check and the read travel as one /pipeline (issue 14)
    assert json.loads(lines[-1])["error_detail"] == f"CommandError: pipeline refused: {BOTH}"
    with caplog.at_level(logging.ERROR):
        try:
            cache.get("k")
        except CommandError:
            logging.getLogger("app").exception("the cache failed")
    logged = caplog.text + "".join(lines) + reply.body.decode()
    assert BOTH in caplog.text
    for secret in (PRIMARY, READ_ONLY, quote(PRIMARY, safe=""), PRIMARY[:-4], READ_ONLY[:-4]):
        assert secret not in logged
