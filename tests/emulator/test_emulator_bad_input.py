"""Hostile or broken requests get an Upstash-shaped error, never a 500, and the server lives.

After every refusal the same keep-alive connection must still serve a command: a bad
request may not wedge the connection or the server.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def http(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {emulator.token}"}, timeout=30
    ) as client:
        yield client


def still_serving(http: httpx.Client) -> None:
    assert http.post("/", json=["PING"]).json() == {"result": "PONG"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'["SET", "k"', "not valid JSON"),
        (b"\xff\xfe[]", "not valid JSON"),
        (b'["SET", "k", NaN]', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"command": "GET"}', "must be a JSON array"),
        (b'"GET k"', "must be a JSON array"),
        (b"42", "must be a JSON array"),
        (b"[]", "ERR empty command"),
        (b'["SET", "k", {"a": 1}]', "object is not allowed"),
        (b'["SET", "k", ["v"]]', "array is not allowed"),
        (b'["SET", "k", null]', "null is not allowed"),
        (b'["SET", "k", "\\ud800"]', "lone surrogate"),
    ],
)
def test_malformed_single_command(http: httpx.Client, body: bytes, fragment: str) -> None:
    response = http.post("/", content=body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert response.json()["error"].startswith("ERR")
    still_serving(http)


def test_empty_post_is_an_empty_command(http: httpx.Client) -> None:
    response = http.post("/")
    assert response.status_code == 400
    assert response.json() == {"error": "ERR empty command"}


@pytest.mark.parametrize("path", ["/pipeline", "/multi-exec"])
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[]", "empty pipeline"),
        (b'[["GET", "k"], "GET"]', "must be a JSON array"),
        (b'[["GET", "k"], []]', "empty command"),
        (b'{"GET": "k"}', "array of command arrays"),
        (b"[[", "not valid JSON"),
    ],
)
def test_malformed_batches(http: httpx.Client, path: str, body: bytes, fragment: str) -> None:
    response = http.post(path, content=body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    still_serving(http)


def test_numbers_and_booleans_are_arguments(http: httpx.Client, emulator: EmulatorHandle) -> None:
    assert http.post("/", json=["SET", "int", 42]).json() == {"result": "OK"}
    assert http.post("/", json=["SET", "float", 1.5]).json() == {"result": "OK"}
    assert http.post("/", json=["SET", "whole", 3.0]).json() == {"result": "OK"}
    assert http.post("/", json=["SET", "flag", True]).json() == {"result": "OK"}
    assert http.post("/", json=["EXPIRE", "int", 100]).json() == {"result": 1}
    assert emulator.redis.mget("int", "float", "whole", "flag") == [b"42", b"1.5", b"3", b"true"]


def test_request_over_ten_megabytes(http: httpx.Client, emulator: EmulatorHandle) -> None:
    body = b'["SET","big","' + b"x" * TEN_MB + b'"]'
    response = http.post("/", content=body)
    assert response.status_code == 413  # as Upstash answers an oversized body
    assert response.json() == {
        "error": f"ERR max request size exceeded. Limit: {TEN_MB} bytes, Actual: {len(body)} "
        "bytes. See https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded "
        "for details"
    }
    assert emulator.redis.exists("big") == 0
    still_serving(http)
    # Just under the limit is fine.
    fits = b"y" * (TEN_MB - 100)
    assert http.post("/set/fits", content=fits).json() == {"result": "OK"}
    assert emulator.redis.strlen("fits") == len(fits)


def test_reply_over_ten_megabytes(http: httpx.Client, emulator: EmulatorHandle) -> None:
    """Upstash limits a reply like its request: one command's, and a request's total."""
    half = b"x" * (TEN_MB // 2 + 1)
    emulator.redis.mset({"a": half, "b": half})
    refused = http.post("/", json=["MGET", "a", "b"])
    assert refused.status_code == 400
    assert refused.json() == {
        "error": f"ERR max request size exceeded. Limit: {TEN_MB} bytes, Actual: "
        f"{2 * len(half)} bytes. See https://upstash.com/docs/redis/troubleshooting/"
        "max_request_size_exceeded for details"
    }
    slots = http.post("/pipeline", json=[["MGET", "a", "b"], ["GET", "a"], ["GET", "b"]])
    assert slots.status_code == 200
    first, second, third = slots.json()
    assert first["error"].startswith("ERR max request size exceeded")
    assert len(second["result"]) == len(half)
    assert third == {
        "error": "ERR max response size exceeded: the replies of this request would total "
        f"{2 * len(half)} bytes, over the {TEN_MB} bytes limit. Send fewer or smaller reads "
        "per request"
    }
    assert http.post("/", json=["STRLEN", "a"]).json() == {"result": len(half)}
    still_serving(http)


def test_a_pipeline_of_huge_reads_is_capped_not_built(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    """A read-only token's pipeline of a hundred 9 MB GETs built a 5.4 GB reply: now the
    replies past the request limit are errors, each dropped as it is read, and the
    writes among them still run."""
    emulator.redis.set("big", b"x" * (9 * 1024 * 1024))
    readonly = {"Authorization": f"Bearer {emulator.readonly_token}"}
    batch = [["GET", "big"]] * 100
    slots = http.post("/pipeline", json=batch, headers=readonly).json()
    assert len(slots[0]["result"]) == 9 * 1024 * 1024
    assert all(slot["error"].startswith("ERR max response size exceeded") for slot in slots[1:])
    mixed = http.post("/pipeline", json=[["GET", "big"], ["GET", "big"], ["SET", "after", "1"]])
    assert [list(slot) for slot in mixed.json()] == [["result"], ["error"], ["result"]]
    assert emulator.redis.get("after") == b"1"
    still_serving(http)


def test_key_over_32_kilobytes(http: httpx.Client, emulator: EmulatorHandle) -> None:
    key = "k" * (32 * 1024 + 1)
    response = http.post("/", json=["SET", key, "v"])
    assert response.status_code == 400
    assert response.json() == {
        "error": f"ERR max key size exceeded. Limit: 32768 bytes, Actual: {len(key)} bytes"
    }
    pipeline = http.post("/pipeline", json=[["MSET", "ok", "1", key, "2"], ["GET", "ok"]])
    assert pipeline.json()[0]["error"].startswith("ERR max key size exceeded")
    assert emulator.redis.exists("ok") == 0
    assert http.post("/", json=["SET", "k" * 32 * 1024, "v"]).json() == {"result": "OK"}


def test_unknown_token_with_a_body_does_not_poison_keep_alive(http: httpx.Client) -> None:
    refused = http.post("/", json=["SET", "k", "v"], headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    still_serving(http)


MALFORMED = b'{"error": "ERR malformed HTTP request"}'


@pytest.mark.parametrize(
    ("garbage", "status", "body"),
    [
        (b"\x00\x01\x02 nonsense\r\n\r\n", b"400", MALFORMED),
        (b"GET / HTTP/9.9\r\n\r\n", b"400", MALFORMED),
        (b"GET /get/k HTTP/1.1\r\nno colon here\r\n\r\n", b"400", MALFORMED),
        (b"G" * 70_000 + b"\r\n\r\n", b"400", MALFORMED),
        (b"GET /" + b"k" * 70_000 + b" HTTP/1.1\r\n\r\n", b"400", MALFORMED),
        (
            b"GET /get/k HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
            b"431",
            b'{"error":"ERR too many headers"}',
        ),
        (
            b"GET /get/k HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n",
            b"431",
            b'{"error":"ERR header line too long"}',
        ),
        (
            b"TRACE /get/k HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"405",
            b'{"error":"Method Not Allowed"}',
        ),
    ],
    ids=[
        "binary",
        "http-9",
        "no-colon",
        "no-request-line",
        "long-path",
        "many-headers",
        "long-header",
        "trace",
    ],
)
def test_garbage_on_the_socket_gets_json_and_a_hang_up(
    http: httpx.Client, emulator: EmulatorHandle, garbage: bytes, status: bytes, body: bytes
) -> None:
    """Requests the HTTP layer refuses are answered in the emulator's JSON error shape (not
    a server's HTML or plain text), the connection is closed, and serving goes on."""
    answer = _answer_without_closing(emulator, garbage)
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b"connection: close" in head.lower()
    assert b"content-type: application/json" in head.lower()
    assert rest == body
    still_serving(http)


def _answer_without_closing(emulator: EmulatorHandle, request: bytes) -> bytes:
    """Send ``request`` and read the answer while keeping our side open, as a client that
    is still uploading would; a server waiting for more input fails the recv deadline."""
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = raw.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 99999999999999999999",
        b"Content-Length: -5",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0",
    ],
    ids=["huge-length", "negative-length", "broken-chunks"],
)
def test_lying_body_framing_is_answered_at_once(
    http: httpx.Client, emulator: EmulatorHandle, head: bytes
) -> None:
    auth = f"Authorization: Bearer {emulator.token}\r\n".encode()
    request = b"POST / HTTP/1.1\r\nHost: x\r\n" + auth + head + b'\r\n\r\n["FLUSHALL"]'
    answer = _answer_without_closing(emulator, request)
    head_lines, _, body = answer.partition(b"\r\n\r\n")
    assert head_lines.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert body == MALFORMED  # and nothing after it: the bytes after a bad frame never run
    still_serving(http)


def test_wrong_methods_keep_serving(http: httpx.Client) -> None:
    assert http.request("DELETE", "/", content=b'["FLUSHALL"]').status_code == 405
    assert http.request("TRACE", "/get/k").status_code == 405
    still_serving(http)


def test_chunked_request_body(http: httpx.Client, emulator: EmulatorHandle) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'["SET", "chunked", '
        yield b'"value"]'

    assert http.post("/", content=pieces()).json() == {"result": "OK"}
    assert emulator.redis.get("chunked") == b"value"
    still_serving(http)


def test_http_1_0_client_gets_an_answer_and_a_closed_connection(
    emulator: EmulatorHandle,
) -> None:
    host, port = emulator.url.removeprefix("http://").split(":")
    request = (f"GET /set/old/client?_token={emulator.token} HTTP/1.0\r\nHost: x\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(request)
        answer = b""
        while chunk := raw.recv(65536):  # the server closes: recv returns b""
            answer += chunk
    assert answer.startswith(b"HTTP/1.")
    assert answer.endswith(b'{"result":"OK"}')
    assert emulator.redis.get("old") == b"client"


def test_arguments_that_trip_fakeredis_are_a_command_error(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    # fakeredis raises a Python TypeError for extra SRANDMEMBER arguments; redis-server
    # answers a syntax error. Either way: this command's error, not a 500.
    response = http.post(
        "/pipeline", json=[["SET", "a", "1"], ["SRANDMEMBER", "s", 1, 2, 3], ["GET", "a"]]
    )
    assert response.status_code == 200
    first, middle, last = response.json()
    assert first == {"result": "OK"} and last == {"result": "1"}
    assert middle["error"].startswith("ERR")
    single = http.post("/", json=["SRANDMEMBER", "s", 1, 2, 3])
    assert single.status_code == 400 and single.json()["error"].startswith("ERR")
    still_serving(http)


@pytest.mark.parametrize(
    "command", [["TS.MGET", "x"], ["TS.MGET", "SELECTED_LABELS", "a", "FILTER", "a=b"]]
)
def test_a_command_that_would_loop_forever_answers_and_the_server_stays_up(
    http: httpx.Client, emulator: EmulatorHandle, command: list[str]
) -> None:
    # fakeredis's TS.MGET never returned for these, and it ran on the server's event
    # loop: one request froze every client. redis-server 7.0 has no TimeSeries module.
    response = http.post("/", json=command)
    assert response.status_code == 400
    if emulator.backend == "fakeredis":
        assert response.json() == {"error": "ERR wrong number of arguments for 'ts.mget' command"}
    else:
        assert re.fullmatch(
            r"ERR the emulator's backend \(redis [0-9.]+ \(redis at [^)]+\)\) lacks "
            r"'TS\.MGET', which Upstash serves: run the emulator on fakeredis \(the "
            r"default\) or with --redis-url pointing at a Redis that has it",
            response.json()["error"],
        )
    still_serving(http)
