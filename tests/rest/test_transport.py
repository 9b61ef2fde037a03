"""The httpx transports over real sockets: the attempt timeout bounds the whole exchange,
and proxies from the environment are honoured the way ``httpx.Client`` honours them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from continuum import CacheTimeout, ConfigurationError, UpstashCache
from continuum.rest.transport import HttpxTransport, env_proxy
from tests.resilience.fault_proxy import Fault, FaultProxy

MARGIN = 1.5  # seconds allowed beyond a deadline for scheduling on a busy machine


def test_a_server_trickling_its_headers_cannot_hold_a_sync_call_past_the_deadline(
    proxy: FaultProxy,
) -> None:
    # Every socket read succeeds within the read timeout; only an overall bound stops it.
    proxy.set_fault(Fault.TRICKLE)
    cache = UpstashCache(rest_url=proxy.url, rest_token="suite-token", timeout=0.5, budget=1.0)
    started = time.monotonic()
    with pytest.raises(CacheTimeout) as caught:
        cache.layer("federation").get("event")
    assert str(caught.value) == f"the Upstash REST endpoint {proxy.url} did not answer in time"
    assert cache.set("k", 1).degraded  # best-effort calls fall back instead
    assert time.monotonic() - started < 2 * 1.0 + MARGIN
    cache.close()


async def test_a_server_trickling_its_headers_cannot_hold_an_async_call(proxy: FaultProxy) -> None:
    from continuum import AsyncUpstashCache

    proxy.set_fault(Fault.TRICKLE)
    cache = AsyncUpstashCache(rest_url=proxy.url, rest_token="suite-token", timeout=0.5, budget=1.0)
    started = time.monotonic()
    with pytest.raises(CacheTimeout) as caught:
        await cache.layer("federation").get("event")
    assert str(caught.value) == f"the Upstash REST endpoint {proxy.url} was too slow"
    assert time.monotonic() - started < 1.0 + MARGIN
    await cache.aclose()


def test_proxy_from_the_environment_is_used(
    proxy: FaultProxy, upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cache.invalid cannot resolve: the value round-trips only because the request went
    # through the proxy, which forwards it to the emulator. The proxy here speaks plain
    # HTTP, so the transport targets an http:// origin (UpstashConfig refuses http:// for a
    # non-loopback host; the transport itself does not judge URLs).
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    cache = UpstashCache(
        rest_url="https://cache.invalid", rest_token=upstream.token, fallback=False,
        transport_factory=lambda url: HttpxTransport("http://cache.invalid"),
    )  # fmt: skip
    assert cache.set("via-proxy", {"ok": 1})
    assert cache.get("via-proxy") == {"ok": 1}
    assert proxy.targets and all(t.startswith("http://cache.invalid/") for t in proxy.targets)
    cache.close()


def test_loopback_and_no_proxy_hosts_bypass_the_proxy() -> None:
    env = {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "internal.example,.corp"}
    assert env_proxy("https://eu1-x.upstash.io", env) == "http://proxy.example:3128"
    assert env_proxy("https://api.internal.example", env) is None
    assert env_proxy("https://x.corp", env) is None
    assert env_proxy("http://127.0.0.1:8079", {"HTTP_PROXY": "http://p:1"}) is None
    assert env_proxy("http://localhost:8079", {"http_proxy": "http://p:1"}) is None
    assert env_proxy("https://eu1-x.upstash.io", {"all_proxy": "http://p:1"}) == "http://p:1"
    assert env_proxy("https://eu1-x.upstash.io", {"NO_PROXY": "*", "HTTPS_PROXY": "x"}) is None
    assert env_proxy("https://eu1-x.upstash.io", {"HTTP_PROXY": "http://p:1"}) is None


def test_an_unusable_proxy_is_a_configuration_error_without_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ftp://user:hunter2-secret@proxy.example:21")
    cache = UpstashCache(rest_url="https://cache.invalid", rest_token="t" * 20, fallback=False)
    with pytest.raises(ConfigurationError) as caught:
        cache.get("k")
    assert str(caught.value) == (
        "the proxy set in HTTPS_PROXY/HTTP_PROXY/ALL_PROXY cannot be used (ValueError); fix "
        "it or exclude the host with NO_PROXY"
    )  # and never the proxy URL, which carries a password
