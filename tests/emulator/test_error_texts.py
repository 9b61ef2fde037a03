"""The emulator's error texts, whole, whatever redis-py release it runs on.

Redis's error line reaches the emulator through redis-py, whose releases format
exceptions differently (the code stripped or kept, kept twice since 8.2). These are the
texts Upstash answers, compared whole, in every shape a command can take: a single
command, a pipeline, a transaction and a script, on fakeredis and on a real redis-server.
``test_lowest_versions.py`` runs this module again on the lowest redis-py and fakeredis
that pyproject.toml allows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOGROUP = "NOGROUP No such key 'st' or consumer group 'nog' in XREADGROUP with GROUP option"
BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
NOT_INTEGER = "ERR value is not an integer or out of range"

FAILING = [  # (command, its whole error text)
    (["LPUSH", "s", "x"], WRONGTYPE),
    (["XGROUP", "CREATE", "st", "g", "$"], BUSYGROUP),
    (["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "st", ">"], NOGROUP),
    (["INCR", "s"], NOT_INTEGER),
    (["EVAL", "return {err='boom'}", "0"], "boom"),
    (["EVAL", "return redis.error_reply('MYCODE went wrong')", "0"], "MYCODE went wrong"),
    (["EVAL", "return redis.pcall('LPUSH', KEYS[1], 'x')", "1", "s"], WRONGTYPE),
]


@pytest.fixture
def http(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=10) as client:
        assert client.post("/", json=["SET", "s", "v"]).json() == {"result": "OK"}
        created = client.post("/", json=["XGROUP", "CREATE", "st", "g", "$", "MKSTREAM"])
        assert created.json() == {"result": "OK"}
        yield client


@pytest.mark.parametrize(("command", "text"), FAILING, ids=[t for _, t in FAILING])
def test_a_single_command_answers_the_whole_error(
    http: httpx.Client, command: list[str], text: str
) -> None:
    answer = http.post("/", json=command)
    assert (answer.status_code, answer.json()) == (400, {"error": text})


def test_an_unknown_script_answers_noscript(http: httpx.Client) -> None:
    answer = http.post("/", json=["EVALSHA", "a" * 40, "0"])
    assert (answer.status_code, answer.json()) == (400, {"error": NOSCRIPT})


def test_a_pipeline_answers_each_error_in_its_slot(http: httpx.Client) -> None:
    commands = [command for command, _ in FAILING] + [["EVALSHA", "a" * 40, "0"], ["GET", "s"]]
    answer = http.post("/pipeline", json=commands)
    expected = [{"error": text} for _, text in FAILING] + [{"error": NOSCRIPT}, {"result": "v"}]
    assert (answer.status_code, answer.json()) == (200, expected)


def test_a_transaction_answers_each_error_in_its_slot(http: httpx.Client) -> None:
    commands = [command for command, _ in FAILING] + [["GET", "s"]]
    answer = http.post("/multi-exec", json=commands)
    expected = [{"error": text} for _, text in FAILING] + [{"result": "v"}]
    assert (answer.status_code, answer.json()) == (200, expected)


def test_a_script_raising_a_command_error_answers_it(
    http: httpx.Client, emulator: EmulatorHandle, request: pytest.FixtureRequest
) -> None:
    script = "return redis.call('LPUSH', KEYS[1], 'x')"
    answer = http.post("/", json=["EVAL", script, "1", "s"])
    text = WRONGTYPE
    if request.node.callspec.params["emulator"] == "redis":  # Redis 7 names the script
        text += f" script: {hashlib.sha1(script.encode()).hexdigest()}, on @user_script:1."
    assert (answer.status_code, answer.json()) == (400, {"error": text})
