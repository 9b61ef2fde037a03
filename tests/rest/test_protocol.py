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
    with pytest.raises(ValidationError) as caught:
        proto.plan([["SET", "k", True]])
    assert str(caught.value) == "booleans are ambiguous as Redis arguments; pass 0/1 or a string"


def test_binary_value_uses_the_raw_body_path_form(proto: RestProtocol) -> None:
    value = b"\xff\x00\xfe binary"
    [planned] = proto.plan([["SET", "a key:with?odd#chars%", value, "EX", 100]])
    assert planned.kind == "raw"
    assert planned.request.path == "/SET/a%20key%3Awith%3Fodd%23chars%25?EX=100"
    assert planned.request.body == value
    assert planned.request.headers["Upstash-Encoding"] == "base64"


@pytest.mark.parametrize("key", [".", "..", "", "a/../b", "/", "back\\slash"])
def test_a_key_the_path_would_not_carry_goes_in_the_script_form(
    proto: RestProtocol, key: str
) -> None:
    [planned] = proto.plan([["SET", key, b"\xff\x00", "EX", 100]])
    assert (planned.kind, planned.request.path, planned.scripted) == ("single", "/", {0})
    [name, script, numkeys, at, *args] = json.loads(planned.request.body)
    assert (name, numkeys, at) == ("EVAL", "0", "3")  # the third of SET, key, value, ...
    assert args == ["SET", key, "ff00", "EX", "100"]
    assert script.startswith("local a = {} for i = 2, #ARGV do")
    [read] = proto.plan([["GETRANGE", ".", 0, -1], ["SET", ".", b"\x80"], ["GET", "."]])
    assert (read.kind, read.scripted) == ("pipeline", {1})
    [scan] = proto.plan([["SSCAN", ".", 0, "MATCH", b"\xfe"]])
    assert json.loads(scan.request.body)[0] == "EVAL_RO"  # a read, for a read-only token


def test_script_form_replies_come_back_as_the_command_answers(proto: RestProtocol) -> None:
    commands = [["SET", ".", b"\xff"], ["GET", "k"], ["SET", "..", b"\xff", "NX", "GET"]]
    [planned] = proto.plan(commands)  # type: ignore[arg-type]
    answer = [
        {"result": [b64("status"), "OK"]}, {"result": b64("v")}, {"result": [b64("nil")]},
    ]  # fmt: skip
    assert proto.parse(planned, respond(200, answer), commands) == ["OK", b"v", None]  # type: ignore[arg-type]
    answer[0] = {"result": [b64("value"), [b64("x"), 3]]}
    assert proto.parse(planned, respond(200, answer), commands)[0] == [b"x", 3]  # type: ignore[arg-type]
    answer[0] = {"result": b64("unwrapped")}
    with pytest.raises(ServerError) as caught:
        proto.parse(planned, respond(200, answer), commands)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "the server answered a binary command's script with an unexpected shape"
    )


def test_binary_value_must_be_followed_only_by_pairs(proto: RestProtocol) -> None:
    pairs_only = "a binary value must be followed only by option/value pairs (EX 60)"
    with pytest.raises(ValidationError) as caught:
        proto.plan([["SET", "k", b"\xff", "NX"]])
    assert str(caught.value) == f"SET: {pairs_only}"
    with pytest.raises(ValidationError) as caught:
        proto.plan([["MSET", "a", b"\xff", "b", b"\xfe"]])
    assert str(caught.value) == f"MSET: {pairs_only}"


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
    with pytest.raises(ValidationError) as caught:
        proto.plan([["SET", "k", b"\xff"]], transaction=True)
    assert str(caught.value) == "binary (non-UTF-8) values cannot be sent in a transaction"


def test_empty_commands_are_refused(proto: RestProtocol) -> None:
    assert proto.plan([]) == []
    with pytest.raises(ValidationError) as caught:
        proto.plan([[]])
    assert str(caught.value) == "empty command"


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
    with pytest.raises(ServerError) as caught:
        one(proto, ["GET", "k"], 200, {"result": "not base64!"})
    assert str(caught.value) == "the server returned a result that is not base64"


def test_command_errors_are_returned_in_their_slot(proto: RestProtocol) -> None:
    error = one(proto, ["INCR", "k"], 400, {"error": "ERR value is not an integer"})
    assert isinstance(error, CommandError)
    assert (str(error), error.command) == ("ERR value is not an integer", "INCR")
    noscript = "NOSCRIPT No matching script. Please use EVAL."
    error = one(proto, ["EVALSHA", "x", 0], 400, {"error": noscript})
    assert isinstance(error, NoScriptError) and str(error) == noscript
    noperm = "NOPERM this user has no permissions"
    error = one(proto, ["SET", "k", "v"], 400, {"error": noperm})
    assert isinstance(error, PermissionDenied) and str(error) == noperm


def test_pipeline_keeps_every_item(proto: RestProtocol) -> None:
    commands = [["SET", "k", "v"], ["INCR", "k"], ["GET", "k"]]
    [planned] = proto.plan(commands)
    body = [{"result": "OK"}, {"error": "ERR value is not an integer"}, {"result": b64("v")}]
    replies = proto.parse(planned, respond(200, body), commands)
    assert replies[0] == "OK" and replies[2] == b"v"
    assert isinstance(replies[1], CommandError)
    assert (str(replies[1]), replies[1].command) == ("ERR value is not an integer", "INCR")


def test_pipeline_answer_of_the_wrong_length_is_refused(proto: RestProtocol) -> None:
    commands = [["GET", "a"], ["GET", "b"]]
    [planned] = proto.plan(commands)
    with pytest.raises(ServerError) as caught:
        proto.parse(planned, respond(200, [{"result": None}]), commands)
    assert str(caught.value) == "the pipeline answer does not match the commands sent"


def test_discarded_transaction_raises_aborted(proto: RestProtocol) -> None:
    commands = [["SET", "k", "v"], ["BOGUS"]]
    [planned] = proto.plan(commands, transaction=True)
    with pytest.raises(TransactionAborted) as caught:
        proto.parse(planned, respond(400, {"error": "ERR unknown command 'bogus'"}), commands)
    assert str(caught.value) == "transaction discarded: ERR unknown command 'bogus'"
    with pytest.raises(TransactionAborted) as caught:
        proto.parse(planned, respond(200, {"error": "ERR EXECABORT"}), commands)
    assert str(caught.value) == "transaction discarded: ERR EXECABORT"


REFUSED = "Upstash refused the token (HTTP {}); check UPSTASH_REDIS_REST_TOKEN"
NOT_JSON = "the REST endpoint answered a body that is not JSON"
QUOTA = "Upstash refused the request: plan limit reached ({})"


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (401, {"error": "Unauthorized"}, AuthenticationFailed, REFUSED.format(401)),
        (
            401,
            b"WRONGPASS invalid or missing auth token",
            AuthenticationFailed,
            REFUSED.format(401),
        ),
        (403, {"message": "forbidden"}, AuthenticationFailed, REFUSED.format(403)),
        (500, {"message": "internal"}, ServerError, "Upstash answered HTTP 500"),
        (502, b"<html><body>Bad Gateway</body></html>", ServerError, "Upstash answered HTTP 502"),
        (503, b"", ServerError, "Upstash answered HTTP 503"),
        (200, b"<html>captive portal</html>", ServerError, NOT_JSON),
        (200, b'{"result": "trunc', ServerError, NOT_JSON),
        (
            200,
            {"unexpected": 1},
            ServerError,
            "the server answered a shape that is not Upstash's JSON",
        ),
        (
            400,
            {"error": "ERR max daily request limit exceeded. Limit: 10000, Usage: 10001."},
            QuotaExceeded,
            QUOTA.format(400),
        ),
        (429, {"error": "too many requests"}, QuotaExceeded, QUOTA.format(429)),
        (404, b"not found", ServerError, "unexpected HTTP 404 from the REST endpoint"),
    ],
)
def test_whole_request_failures_map_to_one_tree(
    proto: RestProtocol, status: int, body: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        one(proto, ["GET", "k"], status, body)
    assert str(info.value) == message  # (and so it never carries the token)


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
    elif planned.scripted:
        assert bytes.fromhex(json.loads(planned.request.body)[6]) == data
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
    limit = 10 * 1024 * 1024
    huge = "x" * (limit + 1)
    over = f"over Upstash's {limit}-byte request limit"
    with pytest.raises(ValidationError) as caught:
        proto.plan([["SET", "k", huge]])
    # the JSON text ["SET","k","<huge>"] adds 14 bytes
    assert str(caught.value) == f"the command is {limit + 1 + 14} bytes, {over}"
    with pytest.raises(ValidationError) as caught:
        proto.plan([["SET", "k", b"\xff" * (limit + 1)]])
    assert str(caught.value) == f"the value is {limit + 1} bytes, {over}"
    with pytest.raises(ValidationError) as caught:
        proto.plan([["SET", "a", huge], ["GET", "a"]], transaction=True)
    # [["SET","a","<huge>"],["GET","a"]] adds 28 bytes
    assert str(caught.value) == f"the transaction is {limit + 1 + 28} bytes, {over}"
