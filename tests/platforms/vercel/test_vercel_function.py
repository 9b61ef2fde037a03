"""Vercel: the real ``vercel build`` makes the function, and the built function serves.

No mock: the pinned CLI builds offline (uv, Python 3.12, a stub project file), and the
artifact it produced answers the shared behaviour list against the emulator. What is
not Vercel's here is only the caller: ``func_host.py`` plays the proxy that hands the
event to ``vc_handler``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import behaviour
import pytest
from vercel_function import ROOT, Build, FunctionProcess, ServedFunction, build, materialise

from continuum.emulator.pytest_plugin import EmulatorHandle
from tests.bundles import unexpected

pytestmark = [pytest.mark.slow, pytest.mark.node]


@pytest.fixture(scope="session")
def vercel_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build(tmp_path_factory.mktemp("vercel"))


@pytest.fixture(scope="session")
def function_dir(vercel_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise(vercel_build, tmp_path_factory.mktemp("deployed") / "index.func")


@pytest.fixture(scope="session")
def function_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IO[bytes]]:
    with open(tmp_path_factory.mktemp("logs") / "function.log", "wb") as log:
        yield log


MODES = {"server": ServedFunction, "event": FunctionProcess}


@pytest.fixture(scope="session")
def instances() -> Iterator[dict[str, ServedFunction | FunctionProcess]]:
    """Warm function instances, one per runtime mode and configuration, for the session."""
    running: dict[str, ServedFunction | FunctionProcess] = {}
    yield running
    for instance in running.values():
        instance.close()


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    """The runtime's production server mode, and its older event mode."""
    return str(request.param)


def _instance(
    instances: dict[str, ServedFunction | FunctionProcess],
    function_dir: Path,
    log: IO[bytes],
    env: dict[str, str],
    mode: str = "server",
) -> ServedFunction | FunctionProcess:
    key = mode + json.dumps(env, sort_keys=True)
    if key not in instances:
        instances[key] = MODES[mode](function_dir, env, log)
    return instances[key]


@pytest.fixture
def send(
    emulator: EmulatorHandle,
    mode: str,
    instances: dict[str, ServedFunction | FunctionProcess],
    function_dir: Path,
    function_log: IO[bytes],
) -> behaviour.Send:
    env = {**behaviour.ENV, **emulator.env}
    return _instance(instances, function_dir, function_log, env, mode).send


@pytest.fixture
def send_to_dead_upstash(
    dead_upstash_url: str,
    mode: str,
    instances: dict[str, ServedFunction | FunctionProcess],
    function_dir: Path,
    function_log: IO[bytes],
) -> behaviour.Send:
    env = {
        **behaviour.ENV,
        "UPSTASH_REDIS_REST_URL": dead_upstash_url,
        "UPSTASH_REDIS_REST_TOKEN": "dead-token",
    }
    return _instance(instances, function_dir, function_log, env, mode).send


# -- what the build produced ------------------------------------------------------------


def test_build_makes_one_python_function_with_the_configured_limits(vercel_build: Build) -> None:
    declared = json.loads((ROOT / "vercel.json").read_text())["functions"]["api/index.py"]
    config = vercel_build.vc_config()
    assert config["handler"] == "vc__handler__python.vc_handler"
    assert config["runtime"] == "python3.12"
    assert config["memory"] == declared["memory"]
    assert config["maxDuration"] == declared["maxDuration"]
    functions = vercel_build.project / ".vercel" / "output" / "functions"
    assert [p.name for p in functions.rglob("*.func")] == ["index.func"]


def test_every_path_is_routed_to_the_function(vercel_build: Build) -> None:
    routes = vercel_build.output_config()["routes"]
    rewrite = next(r for r in routes if r.get("dest") == "/api/index")
    assert rewrite["src"] in {"^(?:/(.*))$", "^/(.*)$"}, rewrite


def test_no_source_file_is_published_as_a_static_file(vercel_build: Build) -> None:
    static = vercel_build.project / ".vercel" / "output" / "static"
    published = sorted(str(p.relative_to(static)) for p in static.rglob("*") if p.is_file())
    assert published == ["robots.txt"], published


def test_bundle_holds_the_app_its_dependencies_and_nothing_else(vercel_build: Build) -> None:
    """The entry point, the installed package and its runtime dependencies; besides them
    only Vercel's own runtime and the pip its builder seeds into every function."""
    files = vercel_build.bundle()
    wrong = unexpected(
        files,
        lambda name: (vercel_build.project / files[name]).read_bytes(),
        requirements=["continuum-cache[vercel]", "vercel-runtime", "pip"],
        own=lambda name: name == "api/index.py",
        python="3.12",
        site="_vendor/",
        never=("continuum/platforms/aws_lambda/", "continuum/platforms/cloudflare/"),
    )
    assert wrong == [], wrong
    for needed in (
        "api/index.py",
        "_vendor/continuum/platforms/vercel/app.py",
        "_vendor/continuum/app/api.py",
        "_vendor/flask/__init__.py",
        "_vendor/httpx/__init__.py",
    ):
        assert needed in files, f"{needed} is missing from the function"


def test_function_installs_this_project_under_its_import_name() -> None:
    """api/pyproject.toml is what Vercel installs: this folder's package, Python 3.12."""
    function = tomllib.loads((ROOT / "api" / "pyproject.toml").read_text())
    assert function["project"]["dependencies"] == ["continuum-cache[vercel]"]
    source = function["tool"]["uv"]["sources"]["continuum-cache"]
    assert (ROOT / "api" / source["path"]).resolve() == ROOT
    assert function["project"]["requires-python"].lstrip("~=").startswith("3.12")


# -- the built function serving requests ------------------------------------------------


@pytest.mark.parametrize("scenario", behaviour.UP, ids=behaviour.ids(behaviour.UP))
def test_behaviour(scenario: behaviour.Scenario, send: behaviour.Send) -> None:
    scenario.run(behaviour.Client(send))


@pytest.mark.parametrize("scenario", behaviour.DOWN, ids=behaviour.ids(behaviour.DOWN))
def test_behaviour_when_upstash_is_down(
    scenario: behaviour.Scenario, send_to_dead_upstash: behaviour.Send
) -> None:
    scenario.run(behaviour.Client(send_to_dead_upstash))


def test_the_path_is_percent_decoded_exactly_once(send: behaviour.Send) -> None:
    """Vercel hands WSGI the raw path: ``%2541`` is the key ``%41``, never ``A``."""
    client = behaviour.Client(send)
    put = client.call("PUT", "/v1/cache/query/%2541", key="cache", json_body={"value": "pct"})
    assert put.status == 200, put.describe()
    got = client.call("GET", "/v1/cache/query/%2541", key="cache")
    assert got.status == 200 and got.json()["value"] == "pct", got.describe()
    twice = client.call("GET", "/v1/cache/query/A", key="cache")
    assert twice.status == 404, "the path was decoded twice"
    percent = client.call("PUT", "/v1/cache/query/100%25", key="cache", json_body={"value": 1})
    assert percent.status == 200, percent.describe()


def test_methods_flask_would_answer_itself_get_the_api_json(send: behaviour.Send) -> None:
    client = behaviour.Client(send)
    options = client.call("OPTIONS", "/v1/cache/query/k", key="cache")
    assert options.status == 405 and options.error_code() == "method_not_allowed"
    doubled = client.call("GET", "/v1//stats", key="cache")
    assert doubled.status in (400, 404), "no redirect page from Flask's slash merging"


def test_a_bad_setting_is_a_clean_error_that_hides_the_token(
    instances: dict[str, ServedFunction | FunctionProcess],
    function_dir: Path,
    function_log: IO[bytes],
) -> None:
    token = "vercel-test-token-5be1"
    env = {
        **behaviour.ENV,
        "UPSTASH_REDIS_REST_URL": "http://upstash.example.com",
        "UPSTASH_REDIS_REST_TOKEN": token,
    }
    send = _instance(instances, function_dir, function_log, env).send
    status, headers, body = send("GET", "/health", {}, None)
    assert status == 503, body
    payload = json.loads(body)
    assert payload["error"]["code"] == "unavailable" and "https" in payload["error"]["message"]
    assert token.encode() not in body
    assert headers["content-type"].startswith("application/json")
    bad_limit = {
        **env,
        "UPSTASH_REDIS_REST_URL": "https://upstash.example.com",
        "CONTINUUM_RATE_LIMIT": "lots",
    }
    send = _instance(instances, function_dir, function_log, bad_limit).send
    status, _, body = send("GET", "/health", {}, None)
    assert status == 500 and "CONTINUUM_RATE_LIMIT" in json.loads(body)["error"]["message"]
