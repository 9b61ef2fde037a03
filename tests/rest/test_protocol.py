"""The sans-I/O protocol on its own: every encoding and error rule of UPSTASH_REST.md.

No server is needed (the module does no I/O): requests are inspected as built, responses
are the exact bodies Upstash sends.
"""

from __future__ import annotations

import base64
import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from continuum.errors import (
    AuthenticationFailed,
    CommandError,
    NoScriptError,
    PermissionDenied,
    QuotaExceeded,
    ServerError,
    TransactionAborted,
    ValidationError,
)
from continuum.rest.protocol import HttpResponse, RestProtocol, Script, is_write

TOKEN = "AXXXsecret-token-value-1234"


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def respond(status: int, body: object, headers: dict[str, str] | None = None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, headers or {}, raw)


@pytest.fixture
def proto() -> RestProtocol:
    return RestProtocol(TOKEN)


def one(proto: RestProtocol, command: list[object], status: int, body: object) -> object:
    [planned] = proto.plan([command])  # type: ignore[list-item]
    return proto.parse(planned, respond(status, body), [command])[0]  # type: ignore[list-item]


# -- requests ---------------------------------------------------------------------------


def test_every_request_asks_for_base64_and_carries_the_token(proto: RestProtocol) -> None:
    [planned] = proto.plan([["GET", "k"]])
    assert planned.request.headers["Upstash-Encoding"] == "base64"
    assert planned.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert planned.request.path == "/"
    assert json.loads(planned.request.body) == ["GET", "k"]


def test_numbers_and_utf8_bytes_travel_as_json_text(proto: RestProtocol) -> None:
    [planned] = proto.plan([["SET", "clé", "välue".encode(), "EX", 60, "PX", 1.5]])
    assert json.loads(planned.request.body) == ["SET", "clé", "välue", "EX", "60", "PX", "1.5"]


def test_booleans_are_refused_as_ambiguous(proto: RestProtocol) -> None:
    with pytest.raises(ValidationError):
        proto.plan([["SET", "k", True]])


def test_binary_value_uses_the_raw_body_path_form(proto: RestProtocol) -> None:
    value = b"\xff\x00\xfe binary"
    [planned] = proto.plan([["SET", "a key/with?odd#chars", value, "EX", 100]])
    assert planned.kind == "raw"
    assert planned.request.path == "/SET/a%20key%2Fwith%3Fodd%23chars?EX=100"
    assert planned.request.body == value
    assert planned.request.headers["Upstash-Encoding"] == "base64"


def test_binary_value_must_be_followed_only_by_pairs(proto: RestProtocol) -> None:
    with pytest.raises(ValidationError):
        proto.plan([["SET", "k", b"\xff", "NX"]])
    with pytest.raises(ValidationError):
        proto.plan([["MSET", "a", b"\xff", "b", b"\xfe"]])


def test_batch_is_split_in_order_around_binary_writes(proto: RestProtocol) -> None:
    commands: list[list[object]] = [
        ["SET", "a", "1"],
        ["GET", "a"],
        ["SET", "b", b"\xff"],
        ["GET", "b"],
    ]
    planned = proto.plan(commands)  # type: ignore[arg-type]
    assert [p.kind for p in planned] == ["pipeline", "raw", "single"]
    assert [p.positions for p in planned] == [(0, 1), (2,), (3,)]
    assert json.loads(planned[0].request.body) == [["SET", "a", "1"], ["GET", "a"]]
    assert planned[0].request.path == "/pipeline"


def test_transactions_go_to_multi_exec_and_refuse_binary(proto: RestProtocol) -> None:
    [planned] = proto.plan([["INCR", "n"], ["GET", "n"]], transaction=True)
    assert planned.request.path == "/multi-exec"
    with pytest.raises(ValidationError):
        proto.plan([["SET", "k", b"\xff"]], transaction=True)


def test_empty_commands_are_refused(proto: RestProtocol) -> None:
    assert proto.plan([]) == []
    with pytest.raises(ValidationError):
        proto.plan([[]])


def test_the_latest_sync_token_is_echoed(proto: RestProtocol) -> None:
    [planned] = proto.plan([["GET", "k"]])
    assert "Upstash-Sync-Token" not in planned.request.headers
    proto.parse(
        planned, respond(200, {"result": None}, {"upstash-sync-token": "t1"}), [["GET", "k"]]
    )
    proto.parse(
        planned, respond(200, {"result": None}, {"upstash-sync-token": "t2"}), [["GET", "k"]]
    )
    [again] = proto.plan([["GET", "k"]])
    assert again.request.headers["Upstash-Sync-Token"] == "t2"


@pytest.mark.parametrize("hostile", ["t\u00e9", "a\r\nX-Injected: 1", "\x00", "x" * 70_000])
def test_a_sync_token_that_cannot_be_echoed_is_ignored(proto: RestProtocol, hostile: str) -> None:
    # A lying server's token would otherwise break (non-ASCII: UnicodeEncodeError in
    # httpx) or bloat every later request of this client.
    [planned] = proto.plan([["GET", "k"]])
    for token in ("good-1", hostile):
        response = respond(200, {"result": None}, {"upstash-sync-token": token})
        proto.parse(planned, response, [["GET", "k"]])
    [again] = proto.plan([["GET", "k"]])
    assert again.request.headers["Upstash-Sync-Token"] == "good-1"


def test_sync_tokens_are_safe_across_threads(proto: RestProtocol) -> None:
    def observe(n: int) -> None:
        for i in range(200):
            proto.sync.observe({"upstash-sync-token": f"{n}-{i}"})

    threads = [threading.Thread(target=observe, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proto.sync.current is not None and proto.sync.current.endswith("-199")


def test_the_token_stays_out_of_reprs(proto: RestProtocol) -> None:
    [planned] = proto.plan([["GET", "k"]])
    assert TOKEN not in repr(proto)
    assert TOKEN not in repr(planned)


# -- replies ----------------------------------------------------------------------------


def test_results_are_base64_decoded_exactly(proto: RestProtocol) -> None:
    assert one(proto, ["GET", "k"], 200, {"result": b64(b"\xff\x00v")}) == b"\xff\x00v"
    assert one(proto, ["GET", "k"], 200, {"result": None}) is None
    assert one(proto, ["INCR", "k"], 200, {"result": 7}) == 7
    assert one(proto, ["SET", "k", "v"], 200, {"result": "OK"}) == "OK"
    assert one(proto, ["PING"], 200, {"result": b64("PONG")}) == b"PONG"


def test_nested_arrays_are_decoded_recursively(proto: RestProtocol) -> None:
    body = {"result": [b64("0"), [b64("a"), b64("b")]]}
    assert one(proto, ["SCAN", "0"], 200, body) == [b"0", [b"a", b"b"]]


def test_a_result_that_is_not_base64_is_a_server_error(proto: RestProtocol) -> None:
    with pytest.raises(ServerError):
        one(proto, ["GET", "k"], 200, {"result": "not base64!"})


def test_command_errors_are_returned_in_their_slot(proto: RestProtocol) -> None:
    error = one(proto, ["INCR", "k"], 400, {"error": "ERR value is not an integer"})
    assert isinstance(error, CommandError) and error.command == "INCR"
    assert isinstance(
        one(
            proto,
            ["EVALSHA", "x", 0],
            400,
            {"error": "NOSCRIPT No matching script. Please use EVAL."},
        ),
        NoScriptError,
    )
    assert isinstance(
        one(proto, ["SET", "k", "v"], 400, {"error": "NOPERM this user has no permissions"}),
        PermissionDenied,
    )


def test_pipeline_keeps_every_item(proto: RestProtocol) -> None:
    commands = [["SET", "k", "v"], ["INCR", "k"], ["GET", "k"]]
    [planned] = proto.plan(commands)
    body = [{"result": "OK"}, {"error": "ERR value is not an integer"}, {"result": b64("v")}]
    replies = proto.parse(planned, respond(200, body), commands)
    assert replies[0] == "OK" and replies[2] == b"v"
    assert isinstance(replies[1], CommandError)


def test_pipeline_answer_of_the_wrong_length_is_refused(proto: RestProtocol) -> None:
    commands = [["GET", "a"], ["GET", "b"]]
    [planned] = proto.plan(commands)
    with pytest.raises(ServerError):
        proto.parse(planned, respond(200, [{"result": None}]), commands)


def test_discarded_transaction_raises_aborted(proto: RestProtocol) -> None:
    commands = [["SET", "k", "v"], ["BOGUS"]]
    [planned] = proto.plan(commands, transaction=True)
    with pytest.raises(TransactionAborted):
        proto.parse(planned, respond(400, {"error": "ERR unknown command 'bogus'"}), commands)
    with pytest.raises(TransactionAborted):
        proto.parse(planned, respond(200, {"error": "ERR EXECABORT"}), commands)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"error": "Unauthorized"}, AuthenticationFailed),
        (401, b"WRONGPASS invalid or missing auth token", AuthenticationFailed),
        (403, {"message": "forbidden"}, AuthenticationFailed),
        (500, {"message": "internal"}, ServerError),
        (502, b"<html><body>Bad Gateway</body></html>", ServerError),
        (503, b"", ServerError),
        (200, b"<html>captive portal</html>", ServerError),
        (200, b'{"result": "trunc', ServerError),
        (200, {"unexpected": 1}, ServerError),
        (
            400,
            {"error": "ERR max daily request limit exceeded. Limit: 10000, Usage: 10001."},
            QuotaExceeded,
        ),
        (429, {"error": "too many requests"}, QuotaExceeded),
        (404, b"not found", ServerError),
    ],
)
def test_whole_request_failures_map_to_one_tree(
    proto: RestProtocol, status: int, body: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        one(proto, ["GET", "k"], status, body)
    assert TOKEN not in str(info.value)


def test_server_errors_carry_the_status(proto: RestProtocol) -> None:
    with pytest.raises(ServerError) as info:
        one(proto, ["GET", "k"], 502, b"<html>")
    assert info.value.status == 502


# -- helpers ----------------------------------------------------------------------------


def test_script_knows_its_sha1() -> None:
    script = Script.from_source("return 1")
    assert script.sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"


def test_reads_and_writes_are_classified() -> None:
    assert not is_write(["GET", "k"]) and not is_write([b"scan", "0"])
    assert is_write(["INCR", "k"]) and is_write(["EVAL", "x", 0]) and is_write(["UNKNOWN"])


@given(st.binary(max_size=300))
def test_any_bytes_survive_the_base64_reply_path(data: bytes) -> None:
    proto = RestProtocol(TOKEN)
    assert one(proto, ["GET", "k"], 200, {"result": b64(data)}) == data


@given(st.binary(min_size=1, max_size=300), st.text(min_size=1, max_size=40))
def test_any_value_is_carried_exactly(data: bytes, key: str) -> None:
    proto = RestProtocol(TOKEN)
    [planned] = proto.plan([["SET", key, data]])
    if planned.kind == "raw":
        assert planned.request.body == data
    else:
        assert json.loads(planned.request.body)[2].encode("utf-8") == data


def test_a_pipeline_is_split_below_the_request_limit() -> None:
    from continuum.rest.protocol import plan

    commands = [["SET", f"k{i}", "x" * 100] for i in range(10)]
    planned = plan(commands, {}, max_request_bytes=500)  # type: ignore[arg-type]
    assert len(planned) > 1
    assert all(len(p.request.body) <= 500 for p in planned)
    assert [i for p in planned for i in p.positions] == list(range(10))
    carried = [cmd for p in planned for cmd in _commands_in(p)]
    assert carried == commands


def _commands_in(planned: object) -> list[list[str]]:
    body = json.loads(planned.request.body)  # type: ignore[attr-defined]
    return body if planned.kind == "pipeline" else [body]  # type: ignore[attr-defined]


def test_requests_over_upstash_limit_are_refused_before_sending(proto: RestProtocol) -> None:
    huge = "x" * (10 * 1024 * 1024 + 1)
    with pytest.raises(ValidationError, match="request limit"):
        proto.plan([["SET", "k", huge]])
    with pytest.raises(ValidationError, match="request limit"):
        proto.plan([["SET", "k", b"\xff" * (10 * 1024 * 1024 + 1)]])
    with pytest.raises(ValidationError, match="request limit"):
        proto.plan([["SET", "a", huge], ["GET", "a"]], transaction=True)
