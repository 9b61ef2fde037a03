"""``Upstash-Response-Format: resp2``: the reply as a TCP Redis client reads it, on both
backends (Upstash's REST API documentation, "RESP2 Format Responses").

The whole body is compared: the content type is ``application/octet-stream``, a status
reply is ``+OK``, a value a bulk string, errors ``-ERR ...``; ``json`` (the default) and
``resp2`` are the only formats, base64 cannot be combined with ``resp2``, and
``/multi-exec`` answers JSON whatever the header says.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

RESP2 = {"Upstash-Response-Format": "resp2"}
OCTETS = "application/octet-stream"


@pytest.fixture
def http(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=10) as client:
        yield client


def raw(response: httpx.Response) -> tuple[int, str, bytes]:
    return response.status_code, response.headers["content-type"], response.content


def test_single_commands_answer_resp2(http: httpx.Client) -> None:
    assert raw(http.get("/SET/foo/bar", headers=RESP2)) == (200, OCTETS, b"+OK\r\n")
    assert raw(http.get("/GET/foo", headers=RESP2)) == (200, OCTETS, b"$3\r\nbar\r\n")
    assert raw(http.post("/", json=["GET", "missing"], headers=RESP2)) == (
        200,
        OCTETS,
        b"$-1\r\n",
    )
    assert raw(http.post("/", json=["INCR", "n"], headers=RESP2)) == (200, OCTETS, b":1\r\n")
    assert raw(http.post("/", json=["PING"], headers=RESP2)) == (200, OCTETS, b"+PONG\r\n")
    assert raw(http.post("/", json=["TYPE", "foo"], headers=RESP2)) == (
        200,
        OCTETS,
        b"+string\r\n",
    )
    http.post("/", json=["RPUSH", "l", "a", "\u00e9"])
    assert raw(http.post("/", json=["MGET", "foo", "missing", "n"], headers=RESP2)) == (
        200,
        OCTETS,
        b"*3\r\n$3\r\nbar\r\n$-1\r\n$1\r\n1\r\n",
    )
    assert raw(http.post("/", json=["LRANGE", "l", 0, -1], headers=RESP2)) == (
        200,
        OCTETS,
        b"*2\r\n$1\r\na\r\n$2\r\n\xc3\xa9\r\n",
    )


def test_binary_values_and_nested_arrays_come_back_exactly(http: httpx.Client) -> None:
    value = bytes(range(256))
    http.post("/set/bin", content=value)
    assert http.get("/get/bin", headers=RESP2).content == b"$256\r\n" + value + b"\r\n"
    script = "return {1, 'a', {2, 'b'}, redis.call('GET', 'nope')}"
    assert http.post("/", json=["EVAL", script, 0], headers=RESP2).content == (
        b"*4\r\n:1\r\n$1\r\na\r\n*2\r\n:2\r\n$1\r\nb\r\n$-1\r\n"
    )


def test_errors_are_resp2_error_lines_with_status_400(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    http.post("/", json=["SET", "s", "v"])
    assert raw(http.post("/", json=["HGET", "s", "f"], headers=RESP2)) == (
        400,
        OCTETS,
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    )
    assert raw(http.post("/", json=["BLPOP", "l", 0], headers=RESP2)) == (
        400,
        OCTETS,
        b"-ERR Command is not available: 'BLPOP'\r\n",
    )
    readonly = {**RESP2, "Authorization": f"Bearer {emulator.readonly_token}"}
    assert raw(http.post("/", json=["SET", "s", "w"], headers=readonly)) == (
        400,
        OCTETS,
        b"-NOPERM this user has no permissions to run the 'set' command or its subcommand\r\n",
    )
    # Not authenticated: the format was never granted, the answer stays Upstash's JSON.
    unauthorised = http.get("/get/s", headers={**RESP2, "Authorization": "Bearer wrong"})
    assert unauthorised.status_code == 401
    assert unauthorised.json() == {"error": "Unauthorized"}


def test_a_pipeline_is_its_replies_one_after_another(http: httpx.Client) -> None:
    body = [["SET", "k", "1"], ["INCR", "k"], ["HGET", "k", "f"], ["BLPOP", "k", 0], ["GET", "k"]]
    assert raw(http.post("/pipeline", json=body, headers=RESP2)) == (
        200,
        OCTETS,
        b"+OK\r\n:2\r\n"
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        b"-ERR Command is not available: 'BLPOP'\r\n"
        b"$1\r\n2\r\n",
    )


def test_multi_exec_answers_json_whatever_the_format(http: httpx.Client) -> None:
    response = http.post("/multi-exec", json=[["SET", "k", "v"], ["GET", "k"]], headers=RESP2)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [{"result": "OK"}, {"result": "v"}]


def test_json_is_the_default_and_the_only_other_format(http: httpx.Client) -> None:
    explicit = http.get("/set/k/v", headers={"Upstash-Response-Format": "json"})
    assert explicit.json() == {"result": "OK"}
    unknown = http.get("/get/k", headers={"Upstash-Response-Format": "resp3"})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": "ERR unsupported Upstash-Response-Format 'resp3': use json or resp2"
    }
    both = http.get("/get/k", headers={**RESP2, "Upstash-Encoding": "base64"})
    assert both.status_code == 400
    assert both.json() == {
        "error": "ERR Upstash-Encoding: base64 cannot be combined with "
        "Upstash-Response-Format: resp2"
    }
