"""Configuration: modes, the REST-only refusal, named databases, URL safety, token hiding."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from continuum import (
    CacheBackend,
    ConfigurationError,
    ConnectionMode,
    UpstashCache,
    UpstashConfig,
)
from continuum.config import LocalModeWarning

TOKEN = "AYNgASQgsecret-token-XYZW"
URL = "https://eu1-happy-cat-12345.upstash.io"


def test_rest_from_the_environment() -> None:
    config = UpstashConfig.from_env(
        {"UPSTASH_REDIS_REST_URL": URL + "/", "UPSTASH_REDIS_REST_TOKEN": TOKEN}
    )
    assert config.resolved_mode is ConnectionMode.REST
    assert config.database().url == URL
    assert config.database("sessions").url == URL  # falls back to primary


def test_auto_without_settings_is_local_with_one_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = UpstashCache()
    assert cache.current_backend is CacheBackend.LOCAL
    local_warnings = [w for w in caught if issubclass(w.category, LocalModeWarning)]
    assert len(local_warnings) == 1
    assert "UPSTASH_REDIS_REST_URL" in str(local_warnings[0].message)


def test_explicit_local_mode_is_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert UpstashCache(mode="local").current_backend is CacheBackend.LOCAL


@pytest.mark.parametrize("mode", ["redis", "REDIS", "tcp"])
def test_redis_mode_is_refused_with_an_explanation(mode: str) -> None:
    with pytest.raises(ConfigurationError, match="REST-only"):
        UpstashCache(mode=mode)


def test_the_seeds_redis_mode_example_gets_the_rest_only_explanation() -> None:
    with pytest.raises(ConfigurationError, match="REST-only"):
        UpstashCache(mode="redis", pool_size=10)


def test_unknown_options_are_named() -> None:
    with pytest.raises(ConfigurationError, match="pool_size"):
        UpstashCache(mode="local", pool_size=10)


def test_redis_url_argument_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="UPSTASH_REDIS_REST_URL"):
        UpstashCache(redis_url="rediss://default:pw@eu1.upstash.io:6379")


def test_the_seeds_upstash_mode_means_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", URL)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", TOKEN)
    monkeypatch.setenv("CONTINUUM_CACHE_MODE", "upstash")
    monkeypatch.setenv("CONTINUUM_CACHE_FALLBACK", "true")
    config = UpstashConfig.from_env()
    assert config.mode is ConnectionMode.REST and config.fallback is True


def test_only_the_redis_protocol_url_names_the_rest_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_URL", "rediss://default:secretpw@eu1.upstash.io:6379")
    with pytest.raises(ConfigurationError) as info:
        UpstashCache()
    text = str(info.value)
    assert "UPSTASH_REDIS_REST_URL" in text and "UPSTASH_REDIS_REST_TOKEN" in text
    assert "secretpw" not in text


def test_rest_mode_without_settings_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="UPSTASH_REDIS_REST_URL"):
        UpstashCache(mode="rest")


def test_half_configured_rest_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="token"):
        UpstashConfig(rest_url=URL)


@pytest.mark.parametrize(
    "url",
    [
        "http://eu1-happy-cat.upstash.io",
        "http://10.0.0.5:8080",
        "ftp://x.io",
        "not a url",
        "https://user:secret@eu1.upstash.io",
        # names are never resolved to decide: these may answer 127.0.0.1 today only
        "http://127.0.0.1.nip.io:8079",
        "http://localtest.me:8079",
        "http://localhost.evil.example:8079",
        "http://[::ffff:10.0.0.1]:9",
        "http://0.0.0.0:8079",
    ],
)
def test_insecure_or_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        UpstashConfig(rest_url=url, rest_token=TOKEN)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.2:8080",
        "http://localhost:1",
        "http://LOCALHOST.:1",
        "http://[::1]:9",
    ],
)
def test_plain_http_is_fine_on_loopback(url: str) -> None:
    assert UpstashConfig(rest_url=url, rest_token=TOKEN).database().url == url


def test_named_databases_from_the_environment() -> None:
    env = {
        "UPSTASH_REDIS_REST_URL": URL,
        "UPSTASH_REDIS_REST_TOKEN": TOKEN,
        "UPSTASH_SESSIONS_REST_URL": "https://sessions.upstash.io",
        "UPSTASH_SESSIONS_REST_TOKEN": "sessions-token-0001",
    }
    config = UpstashConfig.from_env(env)
    assert config.database("sessions").url == "https://sessions.upstash.io"
    assert config.database("federation").url == URL
    with pytest.raises(ConfigurationError):
        UpstashConfig.from_env({**env, "UPSTASH_FEDERATION_REST_URL": "https://f.upstash.io"})


def test_token_never_shown_in_full() -> None:
    config = UpstashConfig(rest_url=URL, rest_token=TOKEN)
    for text in (repr(config), str(config), repr(config.database()), repr(UpstashCache(config))):
        assert TOKEN not in text
        assert TOKEN[:-4] not in text
    assert "****XYZW" in repr(config)


def test_config_file_with_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "mode": "rest",
                "timeout": 1.5,
                "use_msgpack": True,
                "databases": {
                    "primary": {"url": URL, "token_env": "MY_TOKEN"},
                    "federation": {"url": "https://fed.upstash.io", "token": "fed-token-1234"},
                },
            }
        )
    )
    config = UpstashConfig.from_file(path)
    assert config.timeout == 1.5 and config.use_msgpack
    assert config.database().token == TOKEN
    assert config.database("federation").url == "https://fed.upstash.io"


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1]",
        '{"unknown_key": 1}',
        '{"databases": {"primary": {"url": "https://x.io"}}}',
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=str(path)):
        UpstashConfig.from_file(path)


def test_missing_config_file() -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        UpstashConfig.from_file("/nonexistent/continuum.json")


@pytest.mark.parametrize(
    "changes", [{"timeout": 0}, {"budget": -1}, {"max_retries": -1}, {"max_value_size": 0}]
)
def test_bad_numbers_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        UpstashConfig(rest_url=URL, rest_token=TOKEN, **changes)  # type: ignore[arg-type]


def test_bad_fallback_flag() -> None:
    with pytest.raises(ConfigurationError, match="CONTINUUM_CACHE_FALLBACK"):
        UpstashConfig.from_env({"CONTINUUM_CACHE_FALLBACK": "maybe"})


def test_msgpack_values_round_trip_in_local_mode() -> None:
    cache = UpstashCache(mode="local", use_msgpack=True)
    cache.set("k", {"a": [1, 2, b"\x00"]})
    assert cache.get("k") == {"a": [1, 2, b"\x00"]}


@pytest.mark.parametrize(
    "token", ["tökén-0123456789abcdef", "abc\r\nX-Injected: 1", "two words here"]
)
def test_tokens_http_cannot_carry_are_refused_without_being_shown(token: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig(rest_url=URL, rest_token=token)
    assert token.split()[0] not in str(caught.value)
    with pytest.raises(ConfigurationError):
        UpstashConfig.from_env(
            {"UPSTASH_REDIS_REST_URL": URL, "UPSTASH_REDIS_REST_TOKEN": TOKEN,
             "UPSTASH_SESSIONS_REST_URL": URL, "UPSTASH_SESSIONS_REST_TOKEN": token}
        )  # fmt: skip


def test_a_pasted_newline_around_the_token_or_a_trailing_slash_is_tidied() -> None:
    config = UpstashConfig.from_env(
        {"UPSTASH_REDIS_REST_URL": URL + "/", "UPSTASH_REDIS_REST_TOKEN": TOKEN + "\n",
         "UPSTASH_SESSIONS_REST_URL": URL + "/", "UPSTASH_SESSIONS_REST_TOKEN": " " + TOKEN}
    )  # fmt: skip
    assert config.database("primary").token == TOKEN == config.database("sessions").token
    assert config.database("sessions").url == URL == config.rest_url


def test_explicit_local_mode_ignores_a_leftover_redis_protocol_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_URL", "rediss://default:secret@eu1-x.upstash.io:6379")
    assert UpstashCache(mode="local").current_backend is CacheBackend.LOCAL
    monkeypatch.setenv("CONTINUUM_CACHE_MODE", "local")
    assert UpstashCache().current_backend is CacheBackend.LOCAL
