"""Configuration: modes, the REST-only refusal, named databases, URL safety, token hiding."""

from __future__ import annotations

import ast
import json
import re
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
from continuum.app import ApiSettings
from continuum.config import LocalModeWarning

TOKEN = "AYNgASQgsecret-token-XYZW"
URL = "https://eu1-happy-cat-12345.upstash.io"
ROOT = Path(__file__).resolve().parents[1]


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
    assert str(local_warnings[0].message) == (
        "Upstash is not configured (UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN are "
        "unset): using an in-memory cache local to this process. Set mode='local' to "
        "silence this warning."
    )


def test_explicit_local_mode_is_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert UpstashCache(mode="local").current_backend is CacheBackend.LOCAL


def rest_only(mode: str) -> str:
    return (
        f"mode={mode!r} asks for the Redis protocol, but Continuum is REST-only by design "
        "(serverless functions cannot keep sockets). Use mode='rest' with "
        "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN, or mode='local' for an "
        "in-memory store."
    )


@pytest.mark.parametrize(
    ("mode", "named"), [("redis", "redis"), ("REDIS", "redis"), ("tcp", "tcp")]
)
def test_redis_mode_is_refused_with_an_explanation(mode: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashCache(mode=mode)
    assert str(caught.value) == rest_only(named)


def test_the_seeds_redis_mode_example_gets_the_rest_only_explanation() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashCache(mode="redis", pool_size=10)
    assert str(caught.value) == rest_only("redis")


def test_unknown_options_are_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashCache(mode="local", pool_size=10)
    assert str(caught.value) == "unknown cache options: pool_size"


def test_redis_url_argument_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashCache(redis_url="rediss://default:pw@eu1.upstash.io:6379")
    assert str(caught.value) == (
        "redis_url asks for the Redis protocol, but Continuum is REST-only: pass rest_url "
        "and rest_token (or set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)"
    )


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
    assert str(info.value) == (
        "only UPSTASH_REDIS_URL (a Redis-protocol URL) is set, but Continuum speaks only the "
        "Upstash REST API: set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN instead "
        "(Upstash console, 'REST API' section)."
    )


def test_rest_mode_without_settings_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashCache(mode="rest")
    assert str(caught.value) == (
        "mode='rest' needs the Upstash REST endpoint: set UPSTASH_REDIS_REST_URL and "
        "UPSTASH_REDIS_REST_TOKEN"
    )


def test_half_configured_rest_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig(rest_url=URL)
    assert str(caught.value) == (
        "the Upstash REST token is missing; set both UPSTASH_REDIS_REST_URL and "
        "UPSTASH_REDIS_REST_TOKEN"
    )


def plain_http(host: str) -> str:
    return (
        f"the REST URL of database 'primary' uses plain http:// to {host}; tokens must travel "
        "over TLS. Use https:// (http:// is accepted only for loopback hosts such as the "
        "emulator)."
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://eu1-happy-cat.upstash.io", plain_http("eu1-happy-cat.upstash.io")),
        ("http://10.0.0.5:8080", plain_http("10.0.0.5")),
        ("ftp://x.io", "the REST URL of database 'primary' must be an https:// URL, got ftp://"),
        ("not a url", "the REST URL of database 'primary' must be an https:// URL, got ?://"),
        (
            "https://user:secret@eu1.upstash.io",
            "the REST URL of database 'primary' must not carry credentials; pass the token "
            "separately",
        ),
        # names are never resolved to decide: these may answer 127.0.0.1 today only
        ("http://127.0.0.1.nip.io:8079", plain_http("127.0.0.1.nip.io")),
        ("http://localtest.me:8079", plain_http("localtest.me")),
        ("http://localhost.evil.example:8079", plain_http("localhost.evil.example")),
        ("http://[::ffff:10.0.0.1]:9", plain_http("::ffff:10.0.0.1")),
        ("http://0.0.0.0:8079", plain_http("0.0.0.0")),
    ],
)
def test_insecure_or_odd_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig(rest_url=url, rest_token=TOKEN)
    assert str(caught.value) == message


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
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig.from_env({**env, "UPSTASH_FEDERATION_REST_URL": "https://f.upstash.io"})
    assert str(caught.value) == (
        "set both UPSTASH_FEDERATION_REST_URL and UPSTASH_FEDERATION_REST_TOKEN"
    )


def test_token_never_shown_in_full() -> None:
    config = UpstashConfig(rest_url=URL, rest_token=TOKEN)
    for text in (repr(config), str(config), repr(config.database()), repr(UpstashCache(config))):
        assert TOKEN not in text
        assert TOKEN[:-4] not in text
    assert repr(config) == (
        "UpstashConfig(mode='auto', fallback=True, databases=[Database(name='primary', "
        f"url='{URL}', token='****XYZW')], timeout=0.5, budget=1.0, use_msgpack=False)"
    )


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
    ("content", "problem"),
    [
        ("{not json", " is not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1]", " must hold a JSON object"),
        ('{"unknown_key": 1}', ": unknown keys ['unknown_key']"),
        (
            '{"databases": {"primary": {"url": "https://x.io"}}}',
            ": database 'primary' needs a token or token_env",
        ),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig.from_file(path)
    assert str(caught.value) == f"config file {path}{problem}"


def test_missing_config_file() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig.from_file("/nonexistent/continuum.json")
    assert str(caught.value) == (
        "cannot read config file /nonexistent/continuum.json: No such file or directory"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timeout": 0}, "timeout must be a positive number of seconds"),
        ({"budget": -1}, "budget must be a positive number of seconds"),
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"max_value_size": 0}, "max_value_size must be positive"),
    ],
)
def test_bad_numbers_are_refused(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig(rest_url=URL, rest_token=TOKEN, **changes)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_bad_fallback_flag() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig.from_env({"CONTINUUM_CACHE_FALLBACK": "maybe"})
    assert str(caught.value) == "CONTINUUM_CACHE_FALLBACK must be true or false, got 'maybe'"


def test_msgpack_values_round_trip_in_local_mode() -> None:
    cache = UpstashCache(mode="local", use_msgpack=True)
    cache.set("k", {"a": [1, 2, b"\x00"]})
    assert cache.get("k") == {"a": [1, 2, b"\x00"]}


@pytest.mark.parametrize(
    "token", ["tökén-0123456789abcdef", "abc\r\nX-Injected: 1", "two words here"]
)
def test_tokens_http_cannot_carry_are_refused_without_being_shown(token: str) -> None:
    def refused(database: str) -> str:
        return (
            f"the REST token of database {database!r} holds characters no Upstash token has "
            "(spaces, control characters or non-ASCII); copy it again from the Upstash console"
        )

    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig(rest_url=URL, rest_token=token)
    assert str(caught.value) == refused("primary")
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig.from_env(
            {"UPSTASH_REDIS_REST_URL": URL, "UPSTASH_REDIS_REST_TOKEN": TOKEN,
             "UPSTASH_SESSIONS_REST_URL": URL, "UPSTASH_SESSIONS_REST_TOKEN": token}
        )  # fmt: skip
    assert str(caught.value) == refused("sessions")


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


def test_the_timing_settings_come_from_the_environment() -> None:
    config = UpstashConfig.from_env(
        {
            "CONTINUUM_CONNECT_TIMEOUT": "0.1",
            "CONTINUUM_ATTEMPT_TIMEOUT": "2",
            "CONTINUUM_BUDGET": " 7.5 ",
            "CONTINUUM_MAX_RETRIES": "0",
            "CONTINUUM_FAILURE_THRESHOLD": "5",
            "CONTINUUM_PROBE_INTERVAL": "60",
        }
    )
    assert (config.connect_timeout, config.timeout, config.budget) == (0.1, 2.0, 7.5)
    assert (config.max_retries, config.failure_threshold, config.probe_interval) == (0, 5, 60.0)
    assert ApiSettings.from_env({"CONTINUUM_TIMEOUT": "1.5"}).timeout == 1.5


SECONDS = "must be a number of seconds, got"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONTINUUM_ATTEMPT_TIMEOUT": "1e3"}, f"CONTINUUM_ATTEMPT_TIMEOUT {SECONDS} '1e3'"),
        (
            {"CONTINUUM_CONNECT_TIMEOUT": "0"},
            "connect_timeout must be a positive number of seconds",
        ),
        ({"CONTINUUM_BUDGET": "inf"}, f"CONTINUUM_BUDGET {SECONDS} 'inf'"),
        ({"CONTINUUM_MAX_RETRIES": "²"}, "CONTINUUM_MAX_RETRIES must be a whole number, got '²'"),
        ({"CONTINUUM_FAILURE_THRESHOLD": "0"}, "failure_threshold must be at least 1"),
        ({"CONTINUUM_PROBE_INTERVAL": "-1"}, f"CONTINUUM_PROBE_INTERVAL {SECONDS} '-1'"),
    ],
)
def test_bad_timing_settings_say_which_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        UpstashConfig.from_env(env)
    assert str(caught.value) == message


@pytest.mark.parametrize("raw", ["0", "-1", "1.5s", "nan", "½"])
def test_a_bad_api_timeout_is_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ApiSettings.from_env({"CONTINUUM_TIMEOUT": raw})
    assert (
        str(caught.value) == f"CONTINUUM_TIMEOUT must be a positive number of seconds, not {raw!r}"
    )


def test_the_readme_table_of_timing_defaults_is_the_code_s() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Timing: what an outage may cost", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| [^|]+ \| ([0-9.]+)( s)? \| `(\w+)` \((`[\w.]+`)\) \|$", section, re.M)
    documented = {variable: float(value) for value, _, variable, _ in rows}
    config, api = UpstashConfig(), ApiSettings()
    assert documented == {
        "CONTINUUM_TIMEOUT": api.timeout,
        "CONTINUUM_BUDGET": config.budget,
        "CONTINUUM_ATTEMPT_TIMEOUT": config.timeout,
        "CONTINUUM_CONNECT_TIMEOUT": config.connect_timeout,
        "CONTINUUM_MAX_RETRIES": config.max_retries,
        "CONTINUUM_FAILURE_THRESHOLD": config.failure_threshold,
        "CONTINUUM_PROBE_INTERVAL": config.probe_interval,
    }
    # A Worker can set each of them (its entry module imports only inside a Worker).
    entry = ast.parse((ROOT / "platforms" / "cloudflare" / "entry.py").read_text("utf-8"))
    names = next(
        ast.literal_eval(node.value)
        for node in entry.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ENV_NAMES"
    )
    assert set(documented) <= set(names)
