"""A server that answers without end, or announces an enormous answer, cannot exhaust the
function's memory: reading stops at ``max_response_size`` with ``ResponseTooLarge``, the
read is not retried (the same answer would come again), and best-effort calls fall back.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from continuum import AsyncUpstashCache, ResponseTooLarge, UpstashCache, UpstashConfig
from continuum.errors import ConfigurationError

LIMIT = 2 * 1024 * 1024


class EndlessServer:
    """Answers every request with 200 and a body that never ends (chunked, or with a
    Content-Length it then honours). Counts the requests it received."""

    def __init__(self, announce: int | None) -> None:
        self.announce = announce
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(client,), daemon=True).start()

    def _answer(self, client: socket.socket) -> None:
        with client:
            try:
                client.recv(65536)
                self.requests += 1
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                if self.announce is None:
                    client.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
                    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
                    while not self._stop.is_set():
                        client.sendall(chunk)
                else:
                    client.sendall(head + b"Content-Length: %d\r\n\r\n" % self.announce)
                    client.sendall(b'{"result":"' + b"x" * 1024)
                    self._stop.wait(30)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture(params=[None, 10**12], ids=["endless-chunked", "announced-1TB"])
def server(request: pytest.FixtureRequest) -> Iterator[EndlessServer]:
    running = EndlessServer(request.param)
    yield running
    running.close()


def too_large(server: EndlessServer, length: int | None) -> str:
    """What the caller is told: the endpoint, what it did, the limit, what to do."""
    what = "sent a larger answer" if length is None else f"announced {length} bytes"
    return (
        f"the Upstash REST endpoint {server.url} {what}, over the {LIMIT}-byte limit; "
        "reading stopped (raise max_response_size if replies this large are expected, "
        "e.g. a very large MGET or pipeline)"
    )


def make_config(server: EndlessServer) -> UpstashConfig:
    return UpstashConfig(
        rest_url=server.url, rest_token="cap-test-token", max_response_size=LIMIT, timeout=20
    )


def test_sync_read_stops_at_the_cap_and_is_not_retried(
    server: EndlessServer, request: pytest.FixtureRequest
) -> None:
    cache = UpstashCache(config=make_config(server))
    with pytest.raises(ResponseTooLarge) as raised:
        cache.layer("federation").get("event")  # strict: the error reaches the caller
    assert raised.value.limit == LIMIT
    assert str(raised.value) == too_large(server, request.node.callspec.params["server"])
    assert server.requests == 1
    assert cache.info()["circuit"]["last_error"] == "ResponseTooLarge"  # info() says why
    assert cache.set("k", 1).degraded  # best-effort: kept in the request's local store
    assert cache.info()["meter"]["fallback_ops"] >= 1


async def test_async_read_stops_at_the_cap_and_is_not_retried(
    server: EndlessServer, request: pytest.FixtureRequest
) -> None:
    cache = AsyncUpstashCache(config=make_config(server))
    with pytest.raises(ResponseTooLarge) as raised:
        await cache.layer("federation").get("event")
    assert str(raised.value) == too_large(server, request.node.callspec.params["server"])
    assert server.requests == 1


def test_the_cap_cannot_be_below_the_value_limit() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig(mode="local", max_value_size=2048, max_response_size=1024)
    assert str(caught.value) == (
        "max_response_size must be at least max_value_size, or reading back a value the "
        "client may write would fail"
    )


def test_the_cap_is_read_from_a_config_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "continuum.json"
    path.write_text('{"mode": "local", "max_response_size": 8388608}')
    assert UpstashConfig.from_file(path).max_response_size == 8 * 1024 * 1024


def test_the_cap_is_read_from_the_environment() -> None:
    env = {"CONTINUUM_CACHE_MODE": "local", "CONTINUUM_MAX_RESPONSE_SIZE": "8388608"}
    assert UpstashConfig.from_env(env).max_response_size == 8 * 1024 * 1024
    for bad in ("64MB", "-1", "0", "1e9"):
        with pytest.raises(ConfigurationError) as caught:
            UpstashConfig.from_env({**env, "CONTINUUM_MAX_RESPONSE_SIZE": bad})
        assert str(caught.value) == (
            f"CONTINUUM_MAX_RESPONSE_SIZE must be a number of bytes, got {bad!r}"
        )
