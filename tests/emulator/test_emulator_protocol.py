"""The emulator speaks Upstash's REST protocol byte for byte, on both backends.

Raw HTTP (httpx) rather than an SDK, so each rule of the protocol is pinned on its own:
path form, raw bodies, pipelines, transactions, base64, sync tokens, auth, read-only
tokens, pub/sub over server-sent events, scripts, refusals and billing.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum.emulator import EmulatorServer
from continuum.emulator.pytest_plugin import EmulatorHandle

B64 = {"Upstash-Encoding": "base64"}


@pytest.fixture
def http(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {emulator.token}"}, timeout=10
    ) as client:
        yield client


def b64(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode()


def test_single_command_and_path_form_in_any_case(http: httpx.Client) -> None:
    assert http.post("/", json=["SET", "foo", "bar", "EX", 100]).json() == {"result": "OK"}
    assert http.get("/GeT/foo").json() == {"result": "bar"}
    assert http.post("/set/other/value").json() == {"result": "OK"}
    assert http.put("/get/other").json() == {"result": "value"}
    head = http.head("/get/other")
    assert head.status_code == 200 and head.content == b""
    assert http.get("/get/other").json() == {"result": "value"}  # keep-alive still in step


def test_raw_body_is_the_last_argument_and_query_pairs_follow(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    response = http.post("/set/page", params={"EX": "100"}, content=b"<html>hi</html>")
    assert response.json() == {"result": "OK"}
    assert emulator.redis.get("page") == b"<html>hi</html>"
    assert 0 < emulator.redis.ttl("page") <= 100


def test_path_segments_are_percent_decoded(http: httpx.Client, emulator: EmulatorHandle) -> None:
    assert http.get("/set/a%2Fb/x%20y%00z").json() == {"result": "OK"}
    assert emulator.redis.get(b"a/b") == b"x y\x00z"


def test_every_byte_value_survives_a_raw_body_and_base64(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    payload = bytes(range(256))
    assert http.post("/set/bin", content=payload).json() == {"result": "OK"}
    assert emulator.redis.get("bin") == payload
    assert base64.b64decode(http.get("/get/bin", headers=B64).json()["result"]) == payload
    # Without base64, invalid UTF-8 comes back lossy (U+FFFD), as Upstash does.
    assert "\ufffd" in http.get("/get/bin").json()["result"]


def test_base64_rules(http: httpx.Client) -> None:
    assert http.post("/", json=["SET", "k", "OK"], headers=B64).json() == {"result": "OK"}
    assert http.post("/", json=["GET", "k"], headers=B64).json() == {"result": b64("OK")}
    assert http.post("/", json=["PING"], headers=B64).json() == {"result": b64("PONG")}
    assert http.post("/", json=["INCR", "n"], headers=B64).json() == {"result": 1}
    assert http.post("/", json=["GET", "missing"], headers=B64).json() == {"result": None}
    http.post("/", json=["RPUSH", "l", "a", "b"])
    assert http.post("/", json=["LRANGE", "l", 0, -1], headers=B64).json() == {
        "result": [b64("a"), b64("b")]
    }
    error = http.post("/", json=["INCR", "k"], headers=B64)
    assert error.status_code == 400
    assert error.json() == {"error": "ERR value is not an integer or out of range"}
    batch = http.post("/pipeline", json=[["SET", "x", "1"], ["GET", "x"]], headers=B64).json()
    assert batch == [{"result": "OK"}, {"result": b64("1")}]


def test_pipeline_errors_stay_in_their_slot(http: httpx.Client) -> None:
    response = http.post(
        "/pipeline", json=[["SET", "k", "v"], ["INCR", "k"], ["BLPOP", "k", 0], ["GET", "k"]]
    )
    assert response.status_code == 200
    assert response.json() == [
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"error": "ERR Command is not available: 'BLPOP'"},
        {"result": "v"},
    ]


def test_transaction_runtime_error_fills_only_its_slot(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    response = http.post("/multi-exec", json=[["SET", "k", "v"], ["INCR", "k"], ["SET", "j", "w"]])
    assert response.status_code == 200
    assert response.json() == [
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"result": "OK"},
    ]
    assert emulator.redis.get("j") == b"w"


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (["SET", "k"], "ERR wrong number of arguments for 'set' command"),
        (["WATCH", "k"], "ERR Command is not available: 'WATCH'"),
        (["BRPOP", "k", 1], "ERR Command is not available: 'BRPOP'"),
    ],
)
def test_discarded_transaction_is_one_error_and_nothing_runs(
    http: httpx.Client, emulator: EmulatorHandle, bad: list[object], error: str
) -> None:
    response = http.post("/multi-exec", json=[["SET", "first", "1"], bad])
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert emulator.redis.exists("first") == 0


def test_every_response_carries_a_fresh_sync_token(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    responses = [
        http.post("/", json=["SET", "k", "v"]),
        http.post("/pipeline", json=[["GET", "k"]]),
        http.post("/multi-exec", json=[["GET", "k"]]),
        http.post("/", json=["EVAL", "return 1", 0]),
        http.post("/", json=["INCR", "k"]),
        httpx.get(f"{emulator.url}/get/k"),
    ]
    tokens = [r.headers.get("upstash-sync-token") for r in responses]
    assert None not in tokens and len(set(tokens)) == len(tokens)


def test_auth_by_bearer_or_query_token(emulator: EmulatorHandle) -> None:
    url = f"{emulator.url}/set/k/v"
    for response in (
        httpx.get(url),
        httpx.get(url, headers={"Authorization": "Bearer wrong"}),
        httpx.get(url, headers={"Authorization": f"Basic {emulator.token}"}),
        httpx.get(url, params={"_token": "wrong"}),
        httpx.post(emulator.url, json=["SET", "k", "v"]),
    ):
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}
    assert emulator.redis.exists("k") == 0
    assert httpx.get(url, params={"_token": emulator.token}).json() == {"result": "OK"}
    # The token is not an argument: the value stays "v".
    assert emulator.redis.get("k") == b"v"


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["SET", "k", "x"], "set"),
        (["SCAN", 0], "scan"),
        (["KEYS", "*"], "keys"),
        (["EVAL", "return 1", 0], "eval"),
        (["FLUSHALL"], "flushall"),
    ],
)
def test_read_only_token_refuses_writes_scan_and_keys(
    emulator: EmulatorHandle, command: list[object], name: str
) -> None:
    emulator.redis.set("k", "v")
    headers = {"Authorization": f"Bearer {emulator.readonly_token}"}
    response = httpx.post(emulator.url, json=command, headers=headers)
    assert response.status_code == 400
    expected = f"NOPERM this user has no permissions to run the '{name}' command or its subcommand"
    assert response.json() == {"error": expected}
    assert emulator.redis.get("k") == b"v"
    assert httpx.post(emulator.url, json=["GET", "k"], headers=headers).json() == {"result": "v"}


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(emulator: EmulatorHandle, method: str) -> None:
    response = httpx.request(
        method, f"{emulator.url}/get/k", headers={"Authorization": f"Bearer {emulator.token}"}
    )
    assert response.status_code == 405


def test_publish_reaches_a_server_sent_events_subscriber(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    with (
        httpx.Client(timeout=10) as listener,
        listener.stream(
            "POST",
            f"{emulator.url}/subscribe/chat",
            headers={
                "Authorization": f"Bearer {emulator.readonly_token}",
                "Accept": "text/event-stream",
            },
        ) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = (line for line in stream.iter_lines() if line)
        assert next(lines) == "data: subscribe,chat,1"
        assert http.post("/publish/chat/hi").json() == {"result": 1}
        assert http.post("/", json=["PUBLISH", "chat", "ünï"], headers=B64).json() == {"result": 1}
        assert next(lines) == "data: message,chat,hi"
        assert next(lines) == "data: message,chat,ünï"  # SSE is never base64


def test_a_subscriber_that_leaves_stops_counting(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    """PUBLISH reports receivers: one that hung up must drop out promptly, not only at the
    next keepalive (15 s later)."""
    with (
        httpx.Client(timeout=10) as listener,
        listener.stream(
            "POST",
            f"{emulator.url}/subscribe/leaving",
            headers={"Authorization": f"Bearer {emulator.token}"},
        ) as stream,
    ):
        lines = (line for line in stream.iter_lines() if line)  # held: dropping it hangs up
        assert next(lines) == "data: subscribe,leaving,1"
        assert http.post("/publish/leaving/x").json() == {"result": 1}
        assert next(lines) == "data: message,leaving,x"
    deadline = time.monotonic() + 5
    while http.post("/publish/leaving/y").json() != {"result": 0}:
        assert time.monotonic() < deadline, "the subscription outlived its client"
        time.sleep(0.05)  # polling a condition with a deadline, not waiting for an event


def test_a_quiet_subscriber_still_gets_later_messages(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    """While a stream is idle the server checks the client is still there; that check must
    not stall the stream (a message after a quiet spell arrives at once)."""
    with (
        httpx.Client(timeout=5) as listener,
        listener.stream(
            "POST",
            f"{emulator.url}/subscribe/quiet",
            headers={"Authorization": f"Bearer {emulator.token}"},
        ) as stream,
    ):
        lines = (line for line in stream.iter_lines() if line)
        assert next(lines) == "data: subscribe,quiet,1"
        time.sleep(1)  # the quiet spell is the scenario under test, not a synchronisation
        assert http.post("/publish/quiet/later").json() == {"result": 1}
        assert next(lines) == "data: message,quiet,later"  # read timeout: 5 s


def test_pattern_subscription(http: httpx.Client, emulator: EmulatorHandle) -> None:
    with (
        httpx.Client(timeout=10) as listener,
        listener.stream(
            "GET", f"{emulator.url}/psubscribe/news.*", params={"_token": emulator.token}
        ) as stream,
    ):
        lines = (line for line in stream.iter_lines() if line)
        assert next(lines) == "data: psubscribe,news.*,1"
        http.post("/publish/news.tech/launch")
        assert next(lines) == "data: pmessage,news.*,news.tech,launch"


def test_scripts_strip_the_shebang_but_keep_the_original_sha(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    script = "#!lua flags=allow-key-locking\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
    sha = hashlib.sha1(script.encode()).hexdigest()
    assert http.post("/", json=["SCRIPT", "LOAD", script]).json() == {"result": sha}
    assert http.post("/", json=["EVALSHA", sha, 1, "n", 5]).json() == {"result": 5}
    assert http.post("/", json=["EVAL", script, 1, "n", 2]).json() == {"result": 7}
    refused = http.post("/", json=["EVALSHA_RO", sha, 1, "n", 1])
    assert refused.status_code == 400
    # (on redis-server a redis.call error is placed on line 1, the emulator's prelude)
    assert refused.json() == {"error": _read_only_refusal(emulator.backend, script)}
    assert http.post("/", json=["SCRIPT", "EXISTS", sha, "0" * 40]).json() == {"result": [1, 0]}
    missing = http.post("/", json=["EVALSHA", "a" * 40, 0])
    assert missing.status_code == 400
    assert missing.json() == {"error": "NOSCRIPT No matching script. Please use EVAL."}
    for value in ("boom", "MYCODE went wrong"):  # error values pass verbatim, no "ERR" added
        failed = http.post("/", json=["EVAL", f"return {{err='{value}'}}", 0])
        assert failed.status_code == 400 and failed.json() == {"error": value}
    ro = "#!lua\nreturn redis.call('GET', KEYS[1])"
    assert http.post("/", json=["EVAL_RO", ro, 1, "n"]).json() == {"result": "7"}
    assert emulator.redis.get("n") == b"7"


def _read_only_refusal(backend: str, script: str, line: int = 1) -> str:
    message = "ERR Write commands are not allowed from read-only scripts."
    if backend == "redis":  # redis-server names the script (by the SHA1 the client sent)
        sha = hashlib.sha1(script.encode()).hexdigest()
        return f"{message} script: {sha}, on @user_script:{line}."
    return message


@pytest.mark.parametrize(
    "script",
    [
        "return redis.call('DEL', KEYS[1])",
        "return redis.call('set', KEYS[1], 'x')",
        "local r = redis.pcall('INCR', KEYS[1]) "
        "if type(r) == 'table' and r.err then return redis.call('DEL', KEYS[1]) end return r",
    ],
)
def test_read_only_scripts_cannot_write(
    http: httpx.Client, emulator: EmulatorHandle, script: str
) -> None:
    """EVAL_RO refuses writes on both backends, so a read-only token cannot write through it."""
    emulator.redis.set("guarded", "1")
    sha = http.post("/", json=["SCRIPT", "LOAD", script]).json()["result"]
    readonly = {"Authorization": f"Bearer {emulator.readonly_token}"}
    for command in (["EVAL_RO", script, 1, "guarded"], ["EVALSHA_RO", sha, 1, "guarded"]):
        refused = http.post("/", json=command, headers=readonly)
        assert refused.status_code == 400
        assert refused.json() == {"error": _read_only_refusal(emulator.backend, script)}
    assert emulator.redis.get("guarded") == b"1"
    assert http.post("/", json=["EVAL", script, 1, "guarded"]).status_code == 200


def test_script_errors_name_the_script_the_client_sent(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    script = "return redis.call('NOSUCHCOMMAND')"
    failed = http.post("/", json=["EVAL", script, 0])
    assert failed.status_code == 400
    # the script's call is unknown, not EVAL: Redis's words, not Upstash's refusal
    if emulator.backend == "redis":
        sha = hashlib.sha1(script.encode()).hexdigest()
        expected = f"ERR Unknown Redis command called from script script: {sha}, on @user_script:1."
    else:
        expected = "ERR Unknown Redis command called from script"
    assert failed.json() == {"error": expected}


@pytest.mark.parametrize(
    "escape",
    [
        "return os.execute('touch {marker}')",
        "return io.open('{marker}', 'w')",
        "return require('os').execute('touch {marker}')",
        "return loadstring('return os')().execute('touch {marker}')",
        'return python.eval(\'open("{marker}", "w")\')',
        "return debug.getregistry()",
        "return dofile('{marker}')",
        "return getfenv(0).os.execute('touch {marker}')",
        # the Python objects fakeredis hands to scripts led to the interpreter's builtins
        "return _G.redis.call.__globals__.get('__builtins__')",
        "local ok, e = pcall(_G.redis.call, 'NOPE') return e.__traceback__.tb_frame",
        "return cjson.null.__class__",
        "local ok, e = pcall(cjson.decode, '[1,') return e.args",
    ],
    ids=[
        "os",
        "io",
        "require",
        "loadstring",
        "python",
        "debug",
        "dofile",
        "getfenv",
        "call-globals",
        "error-traceback",
        "null-class",
        "decode-error",
    ],
)
def test_scripts_get_redis_sandbox_not_the_machine(
    http: httpx.Client, emulator: EmulatorHandle, escape: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Redis (and Upstash) give scripts no os, io, debug, require or file loading; on
    fakeredis the Lua runtime had them all, so any client holding the token could run
    commands on the developer's machine. Both backends refuse, and nothing is written."""
    marker = tmp_path / "escaped"
    answer = http.post("/", json=["EVAL", escape.format(marker=marker), 0])
    # refused, or (Redis: indexing an error string) nothing at all; never a Python object
    assert answer.status_code == 400 or answer.json() == {"result": None}, answer.text
    assert not marker.exists()
    # scripts still run, and the emulator keeps serving
    assert http.post("/", json=["EVAL", "return cjson.encode({1, 2})", 0]).json() == {
        "result": "[1,2]"
    }


@pytest.mark.parametrize(
    "command",
    [
        ["BLPOP", "k", 0],
        ["MULTI"],
        ["EXEC"],
        ["DISCARD"],
        ["UNWATCH"],
        ["SUBSCRIBE", "c"],
        ["CLIENT", "LIST"],
        ["CONFIG", "GET", "*"],
        ["SELECT", 1],
        ["AUTH", "x"],
        ["MONITOR"],
        ["DEBUG", "SLEEP", 0],
        ["SHUTDOWN"],
        ["CLUSTER", "INFO"],
        ["XREAD", "BLOCK", 0, "STREAMS", "s", "$"],
        ["NOTACOMMAND"],
    ],
)
def test_commands_upstash_refuses(http: httpx.Client, command: list[object]) -> None:
    response = http.post("/", json=command)
    assert response.status_code == 400
    assert response.json() == {"error": f"ERR Command is not available: '{command[0]}'"}
    assert http.post("/", json=["PING"]).json() == {"result": "PONG"}


def test_billing_counts_like_upstash(http: httpx.Client, emulator: EmulatorHandle) -> None:
    http.post("/", json=["MSET", "a", "1", "b", "2"])
    http.post("/", json=["MGET", "a", "b"])
    http.post("/", json=["DEL", "a", "b"])
    http.post("/pipeline", json=[["SET", "x", "1"], ["GET", "x"], ["INCR", "x"]])
    http.post("/multi-exec", json=[["GET", "x"], ["GET", "x"]])
    http.post("/", json=["SCAN", 0])
    http.post("/", json=["EVAL", "return redis.call('GET', KEYS[1])", 1, "x"])
    assert emulator.billed() == 3 + 3 + 2 + 1 + 2  # the EVAL and its redis.call
    stats = http.get("/__emulator/stats").json()
    assert stats == {
        "billed_commands": 11,
        "requests": 7,
        "requests_by_endpoint": {"command": 5, "pipeline": 1, "multi-exec": 1, "subscribe": 0},
    }
    assert httpx.get(f"{emulator.url}/__emulator/stats").status_code == 401
    readonly = {"Authorization": f"Bearer {emulator.readonly_token}"}
    assert http.get("/__emulator/stats", headers=readonly).json()["billed_commands"] == 11
    refused = http.post("/__emulator/reset", headers=readonly)
    assert refused.status_code == 403
    assert refused.json() == {"error": "NOPERM the read-only token may not reset the counters"}
    assert emulator.billed() == 11
    assert http.post("/__emulator/reset").json() == {"result": "OK"}
    assert emulator.billed() == 0
    assert emulator.requests_by_endpoint() == dict.fromkeys(
        ["command", "pipeline", "multi-exec", "subscribe"], 0
    )


def test_a_script_loaded_behind_the_emulator_is_unknown_until_sent_through_it(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    """A real Redis may be shared: a script another client loaded there is not run unseen
    (its calls would go unbilled); EVALSHA answers NOSCRIPT, so the client sends the text."""
    script = "return redis.call('INCR', KEYS[1])"
    sha = emulator.redis.script_load(script)  # straight into the backend
    assert http.post("/", json=["SCRIPT", "EXISTS", sha]).json() == {"result": [0]}
    refused = http.post("/", json=["EVALSHA", sha, 1, "n"])
    assert refused.status_code == 400
    assert refused.json() == {"error": "NOSCRIPT No matching script. Please use EVAL."}
    in_tx = http.post("/multi-exec", json=[["EVALSHA", sha, 1, "n"], ["GET", "n"]]).json()
    assert in_tx == [
        {"error": "NOSCRIPT No matching script. Please use EVAL."},
        {"result": None},
    ]
    assert http.post("/", json=["EVAL", script, 1, "n"]).json() == {"result": 1}
    assert http.post("/", json=["SCRIPT", "EXISTS", sha, "0" * 40]).json() == {"result": [1, 0]}
    before = emulator.billed()
    assert http.post("/", json=["EVALSHA", sha, 1, "n"]).json() == {"result": 2}
    assert emulator.billed() - before == 2  # EVALSHA and its INCR


def test_scripts_are_billed_with_every_redis_call(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    script = "#!lua\nredis.call('INCR', KEYS[1])\nredis.pcall('INCR', KEYS[1])\nreturn 'done'"
    sha = http.post("/", json=["SCRIPT", "LOAD", script]).json()["result"]
    emulator.reset_billing()
    assert http.post("/", json=["EVALSHA", sha, 1, "n"]).json() == {"result": "done"}
    assert emulator.billed() == 3
    assert http.post("/", json=["EVAL", "return 1", 0]).json() == {"result": 1}
    assert emulator.billed() == 4
    http.post("/pipeline", json=[["EVALSHA", sha, 1, "n"], ["GET", "n"]])
    assert emulator.billed() == 4 + 3 + 1
    assert http.post("/multi-exec", json=[["EVALSHA", sha, 1, "n"]]).json() == [{"result": "done"}]
    assert emulator.billed() == 8 + 3
    assert emulator.redis.get("n") == b"6"
    extra = http.post("/", json=["EVAL", "return redis.call('INCR', KEYS[1])", 1, "n", "x"])
    assert extra.json() == {"result": 7}  # extra ARGV are fine; the call is billed
    assert emulator.billed() == 11 + 2


def test_daily_limit_answers_upstash_quota_error() -> None:
    with (
        EmulatorServer(daily_limit=2) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}
        ) as http,
    ):
        assert http.post("/pipeline", json=[["INCR", "n"], ["INCR", "n"]]).status_code == 200
        refused = http.post("/", json=["INCR", "n"])
        assert refused.status_code == 400
        assert refused.json() == {
            "error": "ERR max daily request limit exceeded. Limit: 2, Usage: 3. See "
            "https://upstash.com/docs/redis/troubleshooting/max_daily_request_limit for details"
        }
        server.reset_billing()
        assert http.post("/", json=["GET", "n"]).json() == {"result": "2"}


SCRIPT_ADD = "#!lua\nlocal v = redis.call('INCR', KEYS[1])\nreturn redis.call('SADD', KEYS[2], v)"


def test_concurrent_clients_never_lose_a_write(emulator: EmulatorHandle) -> None:
    import threading

    def hammer() -> None:
        with httpx.Client(
            base_url=emulator.url, headers={"Authorization": f"Bearer {emulator.token}"}
        ) as client:
            for _ in range(50):
                client.post("/pipeline", json=[["INCR", "n"], ["SADD", "s", "x"]])
                client.post("/multi-exec", json=[["INCR", "n"], ["INCR", "m"]])
                client.post("/", json=["EVAL", SCRIPT_ADD, 2, "e", "seen"])

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert emulator.redis.get("n") == b"600"
    assert emulator.redis.get("m") == b"300"
    assert emulator.redis.scard("seen") == 300  # every EVAL saw its own counter value
    assert emulator.billed() == 6 * 50 * (2 + 2 + 3)


def test_tokens_never_reach_the_log(
    emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="emulator"):
        httpx.get(f"{emulator.url}/get/k", params={"_token": emulator.token})
        httpx.get(f"{emulator.url}/get/k", params={"_token": "guess-" + emulator.token})
        httpx.get(f"{emulator.url}/get/k", headers={"Authorization": f"Bearer {emulator.token}"})
        httpx.get(f"{emulator.url}/__emulator/stats", params={"_token": emulator.token})
    # (httpx's own client log shows the URL it was given; only the server's log is ours.)
    server_log = "\n".join(r.getMessage() for r in caplog.records if r.name == "emulator")
    assert "/get/k" in server_log  # the requests were logged...
    assert emulator.token not in server_log  # ...without the token


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.binary(min_size=1, max_size=64),
    value=st.binary(min_size=1, max_size=512),
    text=st.text(max_size=64),
)
def test_any_bytes_round_trip(
    http: httpx.Client, emulator: EmulatorHandle, key: bytes, value: bytes, text: str
) -> None:
    """Keys in the path and values as raw bodies are binary-safe (an empty body is no
    argument at all: ``POST /get/k`` is ``GET k``). Dots are sent as ``%2E``: a segment
    ``.`` or ``..`` would be removed by httpx's URL normalisation before it left."""
    segment = quote(key, safe="").replace(".", "%2E")
    path = "/set/" + segment
    assert http.post(path, content=value).json() == {"result": "OK"}
    assert emulator.redis.get(key) == value
    echoed = http.post("/", json=["ECHO", text], headers=B64).json()["result"]
    assert base64.b64decode(echoed) == text.encode()
    encoded = http.get("/get/" + segment, headers=B64).json()["result"]
    assert base64.b64decode(encoded) == value
