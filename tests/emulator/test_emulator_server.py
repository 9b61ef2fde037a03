"""``emulator.EmulatorServer``: the Python API that ``continuum dev`` and benchmarks embed."""

from __future__ import annotations

import httpx
import pytest

from continuum.emulator import DEFAULT_TOKEN, EmulatorServer


def test_lifecycle_billing_and_flush() -> None:
    server = EmulatorServer(token="api-token", readonly_token="api-ro-token")
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert running.env == {
            "UPSTASH_REDIS_REST_URL": running.url,
            "UPSTASH_REDIS_REST_TOKEN": "api-token",
        }
        headers = {"Authorization": "Bearer api-token"}
        httpx.post(running.url, json=["SET", "k", "v"], headers=headers)
        httpx.post(f"{running.url}/pipeline", json=[["GET", "k"], ["GET", "k"]], headers=headers)
        assert running.billed_commands == 3
        assert running.requests == 2
        running.reset_billing()
        assert running.billed_commands == 0
        running.flush()
        assert httpx.get(f"{running.url}/get/k", headers=headers).json() == {"result": None}
        readonly = {"Authorization": "Bearer api-ro-token"}
        assert httpx.get(f"{running.url}/get/k", headers=readonly).status_code == 200
        assert "api-token" not in repr(running) and "api-ro-token" not in repr(running)
        url = running.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/ping", headers={"Authorization": "Bearer api-token"})


def test_defaults_to_the_dev_token_and_a_random_read_only_token() -> None:
    with EmulatorServer() as one, EmulatorServer() as two:
        assert one.token == two.token == DEFAULT_TOKEN
        assert one.readonly_token != two.readonly_token
        assert one.url != two.url
        # Two emulators are two databases.
        auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        httpx.get(f"{one.url}/set/k/one", headers=auth)
        assert httpx.get(f"{two.url}/get/k", headers=auth).json() == {"result": None}


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty token"):
        EmulatorServer(token="")
