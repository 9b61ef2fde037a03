"""Where Upstash answers differently from Redis, and the commands Upstash serves, on both
backends. Each rule was checked against the official SDKs' tests, which run against
real Upstash; every reply is compared whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle


@pytest.fixture
def http(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=30) as client:
        yield client


def run(http: httpx.Client, *command: object) -> object:
    return http.post("/", json=list(command)).json()


# -- Upstash's own answers -----------------------------------------------------------------


def test_xinfo_consumers_of_a_missing_group_is_empty(http: httpx.Client) -> None:
    run(http, "XADD", "s", "*", "f", "v")
    assert run(http, "XINFO", "CONSUMERS", "s", "nope") == {"result": []}


def test_copy_onto_itself_copies_nothing(http: httpx.Client) -> None:
    run(http, "SET", "k", "v")
    assert run(http, "COPY", "k", "k") == {"result": 0}


def test_scan_pages_exactly_count_keys(http: httpx.Client) -> None:
    keys = [f"key:{i:02}" for i in range(15)]
    run(http, "MSET", *[part for key in keys for part in (key, "v")])
    cursor, page = run(http, "SCAN", 0, "COUNT", 1)["result"]  # type: ignore[index]
    assert cursor != "0" and page == ["key:00"]
    seen, cursor = [], "0"
    while True:
        cursor, page = run(http, "SCAN", cursor, "COUNT", 4)["result"]  # type: ignore[index]
        assert len(page) <= 4
        seen += page
        if cursor == "0":
            break
    assert seen == keys  # each key once
    assert run(http, "SCAN", 0, "MATCH", "key:1*") == {
        "result": ["0", ["key:10", "key:11", "key:12", "key:13", "key:14"]]
    }


def test_scan_without_a_cursor_is_an_arity_error(http: httpx.Client) -> None:
    # The emulator pages SCAN itself; a bare SCAN must still be Redis's arity error.
    arity = {"error": "ERR wrong number of arguments for 'scan' command"}
    response = http.post("/", json=["SCAN"])
    assert (response.status_code, response.json()) == (400, arity)
    assert http.get("/scan").json() == arity
    assert http.post("/pipeline", json=[["SCAN"], ["PING"]]).json() == [
        arity,
        {"result": "PONG"},
    ]


def test_scan_filters_by_type_and_reports_types(http: httpx.Client) -> None:
    run(http, "SET", "a", "1")
    run(http, "HSET", "h", "f", "v")
    run(http, "ZADD", "z", 1, "m")
    assert run(http, "SCAN", 0, "TYPE", "hash") == {"result": ["0", ["h"]]}
    assert run(http, "SCAN", 0, "WITHTYPE") == {
        "result": ["0", ["a", "string", "h", "hash", "z", "zset"]]
    }


@pytest.mark.parametrize(
    ("entries", "command", "trimmed", "left"),
    [
        (130, ["XTRIM", "s", "MAXLEN", "~", 5], 125, 5),
        (120, ["XTRIM", "s", "MAXLEN", "~", 30], 0, 120),
        (100, ["XTRIM", "s", "MAXLEN", "~", 50, "LIMIT", 10], 0, 100),
        (10, ["XTRIM", "s", "MAXLEN", "=", 5], 5, 5),
    ],
    ids=["far-over", "near", "limited", "exact"],
)
def test_approximate_trimming_as_the_sdk_suite_pins_it(
    http: httpx.Client, entries: int, command: list[object], trimmed: int, left: int
) -> None:
    http.post("/pipeline", json=[["XADD", "s", "*", "f", str(i)] for i in range(entries)])
    assert run(http, *command) == {"result": trimmed}
    assert run(http, "XLEN", "s") == {"result": left}


def test_xadd_with_an_approximate_maxlen_trims_like_xtrim(http: httpx.Client) -> None:
    http.post("/pipeline", json=[["XADD", "s", "*", "f", str(i)] for i in range(300)])
    added = run(http, "XADD", "s", "MAXLEN", "~", 30, "*", "f", "new")
    assert isinstance(added, dict) and "-" in added["result"]
    assert run(http, "XLEN", "s") == {"result": 30}


def test_zrangestore_limit_without_byscore(http: httpx.Client) -> None:
    run(http, "ZADD", "src", 1, "member1", 2, "member2", 3, "member3", 4, "member4")
    assert run(http, "ZRANGESTORE", "dst", "src", 0, 2, "LIMIT", 1, 1) == {"result": 1}
    assert run(http, "ZRANGE", "dst", 0, -1, "WITHSCORES") == {"result": ["member2", "2"]}


def test_xreadgroup_noack_creates_no_consumer(http: httpx.Client) -> None:
    run(http, "XADD", "s", "*", "f", "v")
    run(http, "XGROUP", "CREATE", "s", "g", "0")
    read = run(http, "XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">")
    assert isinstance(read, dict) and read["result"][0][0] == "s"
    assert run(http, "XINFO", "CONSUMERS", "s", "g") == {"result": []}
    run(http, "XADD", "s", "*", "f", "w")
    run(http, "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")  # with acks: created
    consumers = run(http, "XINFO", "CONSUMERS", "s", "g")
    assert isinstance(consumers, dict) and [c[1] for c in consumers["result"]] == ["c"]


# -- commands Upstash serves ----------------------------------------------------------------


def test_ttl_is_rounded_to_the_nearest_second(http: httpx.Client) -> None:
    run(http, "SET", "k", "v", "EX", 10)
    assert run(http, "TTL", "k") == {"result": 10}
    assert run(http, "TTL", "missing") == {"result": -2}


def test_touch_bitfield_ro_and_memory_usage(http: httpx.Client) -> None:
    run(http, "SET", "k", "test")
    assert run(http, "TOUCH", "k", "missing") == {"result": 1}
    assert run(http, "BITFIELD_RO", "k", "GET", "u8", 0) == {"result": [116]}
    usage = run(http, "MEMORY", "USAGE", "k")
    assert isinstance(usage, dict) and isinstance(usage["result"], int) and usage["result"] > 4
    assert run(http, "MEMORY", "USAGE", "missing") == {"result": None}


GEO = ["GEOADD", "g", 13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]


def test_geo_replies_are_redis_s(http: httpx.Client) -> None:
    assert run(http, *GEO) == {"result": 2}
    assert run(http, "GEODIST", "g", "Palermo", "Catania") == {"result": "166274.1516"}
    assert run(http, "GEODIST", "g", "Palermo", "Catania", "km") == {"result": "166.2742"}
    assert run(http, "GEOHASH", "g", "Palermo", "Catania") == {
        "result": ["sqc8b49rny0", "sqdtr74hyu0"]
    }
    assert run(http, "ZSCORE", "g", "Palermo") == {"result": "3479099956230698"}
    position = run(http, "GEOPOS", "g", "Palermo", "nowhere")
    assert isinstance(position, dict)
    (lon, lat), missing = position["result"]
    assert (round(float(lon), 12), round(float(lat), 12), missing) == (
        13.361389338970,
        38.115556395496,
        None,
    )
    assert run(http, "GEORADIUS", "g", 15, 37, 200, "km") == {"result": ["Palermo", "Catania"]}
    search = ["GEOSEARCH", "g", "FROMLONLAT", 15, 37, "BYBOX", 400, 400, "km", "ASC", "WITHDIST"]
    assert run(http, *search) == {"result": [["Catania", "56.4413"], ["Palermo", "190.4424"]]}


# -- what the redis-server here lacks (7.0), served on fakeredis ----------------------------


def _lacks(feature: str, need: str, emulator: EmulatorHandle) -> dict[str, str]:
    where = f"redis 7.0.15 ({emulator._app.backend.describe()})"
    return {
        "error": f"ERR the emulator's backend ({where}) lacks '{feature}', which Upstash "
        f"serves: run the emulator on fakeredis (the default) or with --redis-url "
        f"pointing at {need}"
    }


def test_new_bitops(http: httpx.Client, emulator: EmulatorHandle) -> None:
    run(http, "SET", "a", "\x0f")
    run(http, "SET", "b", "\x3c")
    cases = {"DIFF": "\x03", "DIFF1": "\x30", "ANDOR": "\x0c", "ONE": "\x33"}
    for op, expected in cases.items():
        answer = run(http, "BITOP", op, "d", "a", "b")
        if emulator.backend == "redis":
            assert answer == _lacks(f"BITOP {op}", "Redis 8.2 or later", emulator)
            continue
        assert answer == {"result": 1}
        assert run(http, "GET", "d") == {"result": expected}
    if emulator.backend == "fakeredis":
        assert run(http, "BITOP", "DIFF", "d", "a") == {
            "error": "ERR BITOP DIFF must be called with at least two source keys."
        }


def test_json_module(http: httpx.Client, emulator: EmulatorHandle) -> None:
    answer = run(http, "JSON.SET", "j", "$", '{"a":[1,2],"o":{"a":[3]}}')
    if emulator.backend == "redis":
        need = "a Redis with the JSON module (Redis 8, or Redis Stack)"
        assert answer == _lacks("JSON.SET", need, emulator)
        return
    assert answer == {"result": "OK"}
    assert run(http, "JSON.GET", "j", "$..a") == {"result": "[[3],[1,2]]"}
    assert run(http, "JSON.GET", "j", "$.a") == {"result": "[[1,2]]"}
    assert run(http, "JSON.NUMINCRBY", "j", "$.a[0]", 2) == {"result": "[3]"}
    assert run(http, "JSON.ARRAPPEND", "j", "$..a", 9) == {"result": [2, 3]}
    assert run(http, "JSON.TYPE", "j", "$.o") == {"result": ["object"]}
    assert run(http, "JSON.RESP", "j", "$.o") == {"result": [["{", "a", ["[", 3, 9]]]}


def test_hash_field_expiry(http: httpx.Client, emulator: EmulatorHandle) -> None:
    answer = run(http, "HSETEX", "h", "EX", 100, "FIELDS", 1, "f", "v")
    if emulator.backend == "redis":
        assert answer == _lacks("HSETEX", "Redis 8.0 or later", emulator)
        assert run(http, "HEXPIRE", "h", 10, "FIELDS", 1, "f") == _lacks(
            "HEXPIRE", "Redis 7.4 or later", emulator
        )
        return
    assert answer == {"result": 1}
    assert run(http, "HPERSIST", "h", "FIELDS", 1, "f") == {"result": [1]}
    assert run(http, "HTTL", "h", "FIELDS", 1, "f") == {"result": [-1]}
    assert run(http, "HGETEX", "h", "EX", 100, "FIELDS", 1, "f") == {"result": ["v"]}
    assert run(http, "HGETEX", "h", "PERSIST", "FIELDS", 1, "f") == {"result": ["v"]}
    assert run(http, "HTTL", "h", "FIELDS", 1, "f") == {"result": [-1]}
    assert run(http, "HEXPIRE", "h", 50, "FIELDS", 1, "f") == {"result": [1]}
    assert run(http, "HGETDEL", "h", "FIELDS", 1, "f") == {"result": ["v"]}


def test_hsetex_keepttl_keeps_the_fields_ttl(http: httpx.Client, emulator: EmulatorHandle) -> None:
    at = 4_102_444_800_123  # 2100-01-01, to the millisecond
    run(http, "HSET", "h", "f", "v", "g", "w")
    answer = run(http, "HPEXPIREAT", "h", at, "FIELDS", 2, "f", "g")
    if emulator.backend == "redis":
        assert answer == _lacks("HPEXPIREAT", "Redis 7.4 or later", emulator)
        return
    assert answer == {"result": [1, 1]}
    assert run(http, "HSETEX", "h", "KEEPTTL", "FIELDS", 1, "f", "v2") == {"result": 1}
    assert run(http, "HSETEX", "h", "FIELDS", 1, "g", "w2") == {"result": 1}
    assert run(http, "HPEXPIRETIME", "h", "FIELDS", 2, "f", "g") == {"result": [at, -1]}
    assert run(http, "HGETALL", "h") == {"result": ["f", "v2", "g", "w2"]}


def test_xackdel_deletes_entries_the_group_no_longer_holds(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    for entry in ("1-0", "2-0", "3-0"):
        run(http, "XADD", "s", entry, "f", "v")
    run(http, "XGROUP", "CREATE", "s", "g", "0")
    run(http, "XREADGROUP", "GROUP", "g", "c", "COUNT", 2, "STREAMS", "s", ">")
    run(http, "XACK", "s", "g", "1-0")
    # 1-0 acknowledged already, 2-0 pending, 3-0 never read, 9-0 not in the stream
    answer = run(http, "XACKDEL", "s", "g", "IDS", 4, "1-0", "2-0", "3-0", "9-0")
    if emulator.backend == "redis":
        assert answer == _lacks("XACKDEL", "Redis 8.2 or later", emulator)
        return
    assert answer == {"result": [1, 1, 1, -1]}
    assert run(http, "XLEN", "s") == {"result": 0}
    assert run(http, "XPENDING", "s", "g") == {"result": [0, None, None, None]}


def test_a_command_nobody_serves_is_upstash_s_refusal(http: httpx.Client) -> None:
    assert run(http, "NOTACOMMAND") == {"error": "ERR Command is not available: 'NOTACOMMAND'"}


# -- pub/sub framing ------------------------------------------------------------------------


def _events(lines: Iterator[str]) -> Iterator[tuple[list[str], str]]:
    """Server-sent events as the SSE rules read them: (raw lines, data joined by LF)."""
    raw: list[str] = []
    for line in lines:
        if line == "":
            if raw:
                data = "\n".join(item[len("data: ") :] for item in raw if item.startswith("data: "))
                yield raw, data
            raw = []
        elif not line.startswith(":"):
            raw.append(line)


def test_a_message_cannot_forge_an_event(http: httpx.Client, emulator: EmulatorHandle) -> None:
    """Line breaks inside a message continue its data on new ``data:`` lines, so the
    message stays one event on its own channel whatever it contains."""
    forged = 'hi\n\ndata: message,admin,{"cmd":"shutdown"}'
    with (
        httpx.Client(timeout=10) as listener,
        listener.stream(
            "POST",
            f"{emulator.url}/subscribe/chat",
            headers={"Authorization": f"Bearer {emulator.token}"},
        ) as stream,
    ):
        events = _events(stream.iter_lines())
        assert next(events) == (["data: subscribe,chat,1"], "subscribe,chat,1")
        for message in (forged, "a\rb\r\nc", "nul\x00byte", "last"):
            assert run(http, "PUBLISH", "chat", message) == {"result": 1}
        assert next(events) == (
            [
                "data: message,chat,hi",
                "data: ",
                'data: data: message,admin,{"cmd":"shutdown"}',
            ],
            f"message,chat,{forged}",
        )
        assert next(events) == (
            ["data: message,chat,a", "data: b", "data: c"],
            "message,chat,a\nb\nc",  # CR and CRLF are line breaks to SSE: they arrive as LF
        )
        assert next(events) == (["data: message,chat,nul\x00byte"], "message,chat,nul\x00byte")
        assert next(events) == (["data: message,chat,last"], "message,chat,last")


# -- Redis Functions ------------------------------------------------------------------------

LIBRARY = (
    "#!lua name=mylib\n"
    "redis.register_function('hello', function(keys, args) return 'hi ' .. args[1] end)\n"
    "redis.register_function{function_name='get', flags={'no-writes'},\n"
    "  callback=function(keys) return redis.call('GET', keys[1]) end}\n"
    "redis.register_function('put', function(keys, args)\n"
    "  return redis.call('SET', keys[1], args[1]) end)"
)


@pytest.fixture
def library(http: httpx.Client) -> Iterator[None]:
    run(http, "FUNCTION", "FLUSH")
    assert run(http, "FUNCTION", "LOAD", LIBRARY) == {"result": "mylib"}
    yield
    run(http, "FUNCTION", "FLUSH")


def test_functions_load_and_run(
    http: httpx.Client, emulator: EmulatorHandle, library: None
) -> None:
    assert run(http, "FUNCTION", "LOAD", LIBRARY) == {"error": "ERR Library 'mylib' already exists"}
    assert run(http, "FUNCTION", "LOAD", "REPLACE", LIBRARY) == {"result": "mylib"}
    assert run(http, "FCALL", "hello", 0, "bob") == {"result": "hi bob"}
    emulator.reset_billing()
    assert run(http, "FCALL", "put", 1, "k", "v") == {"result": "OK"}
    assert emulator.billed() == 2  # the FCALL and its redis.call, as Upstash bills
    assert run(http, "FCALL_RO", "get", 1, "k") == {"result": "v"}
    assert run(http, "FCALL", "missing", 0) == {"error": "ERR Function not found"}
    listed = run(http, "FUNCTION", "LIST")
    assert isinstance(listed, dict)
    (entry,) = listed["result"]
    assert entry[:5] == ["library_name", "mylib", "engine", "LUA", "functions"]
    assert sorted(map(tuple, (f[:2] + f[4:5] + [tuple(f[5])] for f in entry[5]))) == [
        ("name", "get", "flags", ("no-writes",)),
        ("name", "hello", "flags", ()),
        ("name", "put", "flags", ()),
    ]
    assert run(http, "FUNCTION", "STATS") == {
        "result": [
            "running_script",
            None,
            "engines",
            ["LUA", ["libraries_count", 1, "functions_count", 3]],
        ]
    }
    assert run(http, "FUNCTION", "DELETE", "mylib") == {"result": "OK"}
    assert run(http, "FUNCTION", "DELETE", "mylib") == {"error": "ERR Library not found"}


def test_fcall_ro_runs_only_no_writes_functions(
    http: httpx.Client, emulator: EmulatorHandle, library: None
) -> None:
    """Upstash's rule (and Redis's): FCALL_RO refuses a function without ``no-writes``;
    the read-only token may FCALL_RO but not FCALL or load libraries."""
    refused = run(http, "FCALL_RO", "put", 1, "k", "v")
    assert refused == {"error": "ERR Can not execute a script with write flag using *_ro command."}
    readonly = {"Authorization": f"Bearer {emulator.readonly_token}"}
    emulator.redis.set("k", "v")
    ro = httpx.post(emulator.url, json=["FCALL_RO", "get", 1, "k"], headers=readonly)
    assert ro.json() == {"result": "v"}
    for command, name in ((["FCALL", "put", 1, "k", "x"], "fcall"),
                          (["FUNCTION", "FLUSH"], "function")):  # fmt: skip
        denied = httpx.post(emulator.url, json=command, headers=readonly)
        assert denied.json() == {
            "error": f"NOPERM this user has no permissions to run the '{name}' command "
            "or its subcommand"
        }
    assert emulator.redis.get("k") == b"v"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("return 1", "ERR Missing library metadata"),
        ("#!lua name=empty\nlocal x = 1", "ERR No functions registered"),
    ],
)
def test_bad_libraries_are_refused(http: httpx.Client, code: str, error: str) -> None:
    assert run(http, "FUNCTION", "LOAD", code) == {"error": error}


def test_info_answers_as_in_upstashs_rest_docs(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    # Upstash's REST docs show `/info`; fakeredis has no INFO. The text varies by server,
    # so its shape is what is pinned: the server section, then the keyspace's counts.
    run(http, "SET", "a", "1")
    run(http, "SET", "b", "2", "EX", 100)
    response = http.post("/info")
    assert response.status_code == 200
    lines = response.json()["result"].split("\r\n")
    assert lines[0] == "# Server" and lines[1].startswith("redis_version:")
    assert "# Keyspace" in lines
    assert any(line.startswith("db0:keys=2,expires=1,avg_ttl=") for line in lines)
    readonly = {"Authorization": f"Bearer {emulator.readonly_token}"}
    assert http.get("/info/keyspace", headers=readonly).status_code == 200


def test_a_redis_command_the_backend_lacks_is_not_called_refused_by_upstash(
    http: httpx.Client, emulator: EmulatorHandle
) -> None:
    run(http, "SET", "k", "hello")
    # neither backend has vector sets (Redis 8): fakeredis is no way out there
    where = "fakeredis"
    if emulator.backend == "redis":
        where = f"redis 7.0.15 ({emulator._app.backend.describe()})"
    assert run(http, "VCARD", "v") == {
        "error": f"ERR the emulator's backend ({where}) lacks 'VCARD', which Upstash "
        "serves: run the emulator with --redis-url pointing at a Redis that has it"
    }
    response = http.post("/", json=["OBJECT", "ENCODING", "k"])
    if emulator.backend == "redis":
        assert response.json() == {"result": "embstr"}
        return
    assert response.status_code == 400
    assert response.json() == {
        "error": "ERR the emulator's backend (fakeredis) lacks 'OBJECT', which Upstash "
        "serves: run the emulator with --redis-url pointing at a Redis that has it"
    }
