"""The neutral request and response: what they show when printed or logged."""

from __future__ import annotations

import pytest

from continuum.app import ApiSettings, Request, Response, json_response

KEY = "neutral-secret-api-key-5d1c0e"


def test_a_request_repr_never_shows_the_api_key() -> None:
    """Reprs end up in tracebacks, debuggers and error reports: no header may appear."""
    request = Request.build(
        "PUT",
        "/v1/cache/query/k",
        headers={"Authorization": f"Bearer {KEY}"},
        body=b'{"value": 1}',
    )
    assert request.headers["authorization"] == f"Bearer {KEY}"
    shown = repr(request) + str(request)
    assert KEY not in shown, shown
    assert "PUT" in shown and "/v1/cache/query/k" in shown, "still says which request it is"


def test_a_response_repr_shows_its_status_not_its_body() -> None:
    response = json_response(200, {"value": KEY})
    assert isinstance(response, Response) and response.json() == {"value": KEY}
    assert "200" in repr(response) and KEY not in repr(response)


def test_a_client_chosen_request_id_is_bounded() -> None:
    request = Request.build("GET", "/health", headers={"x-request-id": "r" * 10_000})
    assert 0 < len(request.request_id) <= 128


def test_settings_never_show_their_keys_and_cannot_be_changed_in_place() -> None:
    settings = ApiSettings.from_env(
        {"CONTINUUM_API_KEYS": f" {KEY} , ,other-key ", "CONTINUUM_RATE_LIMIT": "7"}
    )
    assert settings.api_keys == (KEY, "other-key") and settings.rate_limit == 7
    assert KEY not in repr(settings) and "2 keys" in repr(settings), repr(settings)
    with pytest.raises(AttributeError):
        settings.rate_limit = 1
    widened = settings.replace(api_keys=(*settings.api_keys, "dev-key"))
    assert widened.api_keys[-1] == "dev-key" and widened.rate_limit == 7
    assert settings.api_keys == (KEY, "other-key"), "replace made a copy"


def test_a_body_may_come_as_none_or_any_bytes_like_object() -> None:
    """Adapters hand over what their platform has: nothing, a bytearray, a memoryview."""
    for given, expected in [(None, b""), (bytearray(b"ab"), b"ab"), (memoryview(b"cd"), b"cd")]:
        request = Request.build("PUT", "/v1/cache/query/k", body=given)
        assert request.body == expected and type(request.body) is bytes
