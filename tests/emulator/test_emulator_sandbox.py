"""Attacks on the emulator's Lua sandbox, on fakeredis and on a real redis-server.

Each escape below once worked against the emulator (issue 13): a read-only token writing
through a script, a script changing the sandbox for every later script, a script the
time limit could not stop. Every reply is compared whole. On redis-server an error a
script raises ends with Redis's `` script: <sha>, on @user_script:1.``, naming the
script by the SHA1 the client sent.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import httpx
import pytest

from continuum.emulator import EmulatorServer
from continuum.emulator.pytest_plugin import EmulatorHandle


def _script_error(emulator_backend: str, script: str, message: str, where: str = "") -> str:
    """The whole error text for ``message`` raised by ``script`` on this backend (on
    redis-server, ``where`` names a chunk other than the script: loadstring's)."""
    if emulator_backend == "redis":
        sha = hashlib.sha1(script.encode()).hexdigest()
        return f"{message} script: {sha}, on {where or '@user_script'}:1."
    return message


READ_ONLY = "ERR Write commands are not allowed from read-only scripts."


@pytest.fixture
def readonly(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulator.readonly_token}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    "script",
    [
        "return redis.call('SET', 'guarded', 'pwned')",
        "return _G.redis.call('SET', 'guarded', 'pwned')",
        "return rawget(_G, 'redis').call('SET', 'guarded', 'pwned')",
        "local call = redis.call return call('SET', 'guarded', 'pwned')",
        "return coroutine.wrap(function() return redis.call('SET', 'guarded', 'pwned') end)()",
        "return loadstring(\"return redis.call('SET', 'guarded', 'pwned')\")()",
        "return redis.call('FLUSHALL')",
        "return redis.call('XGROUP', 'CREATE', 's', 'g', '$', 'MKSTREAM')",
    ],
    ids=["call", "_G", "rawget", "saved", "coroutine", "loadstring", "flushall", "xgroup"],
)
def test_the_read_only_token_cannot_write_through_any_path(
    emulator: EmulatorHandle, readonly: httpx.Client, script: str
) -> None:
    emulator.redis.set("guarded", "1")
    # redis-server names a loadstring chunk by its source
    where = "return redis.call('SET', 'guarded', 'pwned')" if "loadstring" in script else ""
    refusal = {"error": _script_error(emulator.backend, script, READ_ONLY, where)}
    answer = readonly.post("/", json=["EVAL_RO", script, 0])
    assert answer.status_code == 400
    assert answer.json() == refusal
    # SCRIPT LOAD (allowed to the read-only token) then EVALSHA_RO: the same refusal
    sha = readonly.post("/", json=["SCRIPT", "LOAD", script]).json()["result"]
    assert readonly.post("/", json=["EVALSHA_RO", sha, 0]).json() == refusal
    assert emulator.redis.get("guarded") == b"1" and emulator.redis.dbsize() == 1


@pytest.mark.parametrize(
    ("script", "name"),
    [
        ("return __emu_redis.call('SET', 'guarded', 'pwned')", "__emu_redis"),
        ("return __emu_calls", "__emu_calls"),
        ("return debug.sethook()", "debug"),
    ],
)
def test_scripts_see_nothing_of_the_emulator(
    emulator: EmulatorHandle, readonly: httpx.Client, script: str, name: str
) -> None:
    """The emulator's own names (the old bridge's included) are not there to reach."""
    answer = readonly.post("/", json=["EVAL_RO", script, 0])
    message = f"ERR user_script:1: Script attempted to access nonexistent global variable '{name}'"
    assert answer.json() == {"error": _script_error(emulator.backend, script, message)}


def test_a_script_cannot_reach_the_real_redis_table(
    emulator: EmulatorHandle, readonly: httpx.Client
) -> None:
    script = "return getmetatable(redis)"
    assert readonly.post("/", json=["EVAL_RO", script, 0]).json() == {"result": None}
    # redis-server hands out its (read-only) string metatable; fakeredis's is hidden
    strings = readonly.post("/", json=["EVAL_RO", "return getmetatable('')", 0]).json()
    assert strings == ({"result": []} if emulator.backend == "redis" else {"result": None})
    assert emulator.redis.dbsize() == 0


@pytest.mark.parametrize(
    "change",
    [
        "string.lower = function() return 'x' end",
        "math.ceil = function() return 0 end",
        "table.concat = nil",
        "_G.redis = nil",
        "cjson.encode = nil",
        "x = 1",
    ],
)
def test_no_script_changes_the_sandbox_for_later_scripts(
    emulator: EmulatorHandle, change: str
) -> None:
    """Globals and library tables are read-only, as Redis makes them; a change that a
    backend lets a script make to its own view does not outlive the script."""
    headers = {"Authorization": f"Bearer {emulator.token}"}
    attempt = httpx.post(emulator.url, json=["EVAL", change, 0], headers=headers)
    message = "ERR user_script:1: Attempt to modify a readonly table"
    assert attempt.json() == {"error": _script_error(emulator.backend, change, message)}
    probe = (
        "return {string.lower('ABC'), math.ceil(1.5), table.concat({'a', 'b'}), "
        "cjson.encode({1}), type(redis.call), type(rawget(_G, 'x'))}"
    )
    after = httpx.post(emulator.url, json=["EVAL", probe, 0], headers=headers)
    assert after.json() == {"result": ["abc", 2, "ab", "[1]", "function", "nil"]}


@pytest.mark.parametrize(
    "script",
    [
        "rawset(string, 'lower', function() return 'x' end) return string.lower('A')",
        "rawset(_G, 'x', 1) return x",
        "setmetatable(string, {}) return 1",
    ],
)
def test_raw_access_cannot_change_the_sandbox(emulator: EmulatorHandle, script: str) -> None:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    first = httpx.post(emulator.url, json=["EVAL", script, 0], headers=headers).json()
    message = "ERR Attempt to modify a readonly table"
    assert first == {"error": _script_error(emulator.backend, script, message)}
    later = httpx.post(emulator.url, json=["EVAL", "return string.lower('A')", 0], headers=headers)
    assert later.json() == {"result": "a"}


@pytest.fixture(params=["fakeredis", "redis"])
def impatient(request: pytest.FixtureRequest) -> Iterator[tuple[str, EmulatorServer]]:
    """An emulator whose scripts are stopped after 1 s."""
    target = request.getfixturevalue("redis_url") if request.param == "redis" else "fakeredis"
    with EmulatorServer(target, script_timeout=1.0) as emu:
        emu.flush()
        yield request.param, emu


@pytest.mark.parametrize(
    "script",
    [
        "while true do end",
        "coroutine.wrap(function() while true do end end)()",
        "while true do pcall(function() while true do end end) end",
        "redis.call('SET', 'written', '1') while true do end",
        "local function f() return f() end return f()",
        "repeat until false",
        "local co = coroutine.create(function() while true do end end) "
        "while true do coroutine.resume(co) end",
    ],
    ids=["loop", "coroutine", "pcall", "after-a-write", "tail-call", "repeat", "resume"],
)
def test_a_runaway_script_ends_with_the_timeout_error(
    impatient: tuple[str, EmulatorServer], script: str
) -> None:
    """Whatever the script does (a coroutine, a pcall around the loop, a write first,
    which redis-server's SCRIPT KILL cannot stop), it ends with the emulator's timeout
    error, and the backend serves again."""
    backend, emu = impatient
    headers = {"Authorization": f"Bearer {emu.token}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=60) as http:
        answer = http.post("/", json=["EVAL", script, 0])
        message = "ERR script timed out: it ran for more than 1 s and was stopped by the emulator"
        assert answer.status_code == 400
        assert answer.json() == {"error": _script_error(backend, script, message)}
        assert http.post("/", json=["PING"]).json() == {"result": "PONG"}


def test_other_clients_are_served_while_a_script_runs(
    impatient: tuple[str, EmulatorServer],
) -> None:
    """The server is not wedged by a running script: what needs no Redis is answered at
    once, and commands are answered as soon as the script ends."""
    _, emu = impatient
    headers = {"Authorization": f"Bearer {emu.token}"}
    started = threading.Event()
    finished: list[httpx.Response] = []

    def runaway() -> None:
        with httpx.Client(base_url=emu.url, headers=headers, timeout=60) as http:
            started.set()
            finished.append(http.post("/", json=["EVAL", "while true do end", 0]))

    thread = threading.Thread(target=runaway)
    thread.start()
    started.wait(10)
    with httpx.Client(base_url=emu.url, headers=headers, timeout=60) as http:
        assert http.get("/__emulator/stats").status_code == 200
        assert http.post("/", json=["SET", "k", "v"]).json() == {"result": "OK"}
    thread.join(60)
    assert finished and finished[0].status_code == 400


def test_a_read_only_scripts_loop_is_stopped_too(impatient: tuple[str, EmulatorServer]) -> None:
    backend, emu = impatient
    headers = {"Authorization": f"Bearer {emu.readonly_token}"}
    script = "while true do end"
    answer = httpx.post(emu.url, json=["EVAL_RO", script, 0], headers=headers, timeout=60)
    message = "ERR script timed out: it ran for more than 1 s and was stopped by the emulator"
    assert answer.json() == {"error": _script_error(backend, script, message)}


def test_a_script_cannot_grow_the_emulator_without_bound(
    upstash_emulator: EmulatorHandle,
) -> None:
    """On fakeredis scripts run in the emulator's own process: huge strings are refused
    and Lua's memory is capped (on redis-server it is Redis's memory, and Redis's call)."""
    headers = {"Authorization": f"Bearer {upstash_emulator.token}"}
    url = upstash_emulator.url
    huge = "return #string.rep('x', 1024 * 1024 * 1024)"
    answer = httpx.post(url, json=["EVAL", huge, 0], headers=headers, timeout=60)
    assert answer.json() == {
        "error": "ERR user_script:1: string.rep: result over the emulator's 100 MB limit"
    }
    doubling = "local s = 'x' for i = 1, 40 do s = s .. s end return #s"
    answer = httpx.post(url, json=["EVAL", doubling, 0], headers=headers, timeout=60)
    assert answer.json() == {"error": "ERR not enough memory"}
    assert httpx.post(url, json=["PING"], headers=headers).json() == {"result": "PONG"}


class _Planted:
    """Unpickling this writes a file: the proof that RESTORE ran a client's code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_fakeredis_refuses_dump_and_restore_by_every_path(
    emulator: EmulatorHandle, tmp_path: pytest.TempPathFactory
) -> None:
    """fakeredis's RESTORE unpickles the payload it is given (its DUMP format is a
    pickle): on fakeredis both are refused, as a request, in a pipeline, in a transaction
    and from a script. On redis-server both work as Redis's own."""
    import base64
    import pickle

    planted = str(tmp_path) + "/planted-by-restore"
    payload = pickle.dumps(_Planted(planted))
    headers = {"Authorization": f"Bearer {emulator.token}"}
    emulator.redis.set("k", "v")
    if emulator.backend == "redis":
        dumped = httpx.post(
            emulator.url, json=["DUMP", "k"], headers={**headers, "Upstash-Encoding": "base64"}
        ).json()["result"]
        restored = httpx.post(
            f"{emulator.url}/restore/k2/0", content=base64.b64decode(dumped), headers=headers
        )
        assert restored.json() == {"result": "OK"}
        assert emulator.redis.get("k2") == b"v"
        return
    refused = {
        name: "ERR the emulator's fakeredis backend does not serve "
        f"'{name}': its payloads are Python pickles, which would let a client run code in "
        "the emulator; run the emulator with --redis-url pointing at a real Redis to use "
        "DUMP and RESTORE"
        for name in ("DUMP", "RESTORE")
    }
    raw = httpx.post(f"{emulator.url}/restore/victim/0", content=payload, headers=headers)
    assert (raw.status_code, raw.json()) == (400, {"error": refused["RESTORE"]})
    dump = httpx.post(emulator.url, json=["DUMP", "k"], headers=headers)
    assert (dump.status_code, dump.json()) == (400, {"error": refused["DUMP"]})
    pipeline = httpx.post(
        f"{emulator.url}/pipeline", json=[["DUMP", "k"], ["GET", "k"]], headers=headers
    )
    assert pipeline.json() == [{"error": refused["DUMP"]}, {"result": "v"}]
    script = "return redis.pcall('RESTORE', KEYS[1], 0, ARGV[1])"
    from_script = httpx.post(
        f"{emulator.url}/eval/{script}/1/victim", content=payload, headers=headers
    )
    assert from_script.json() == {"error": refused["RESTORE"]}
    import os

    assert not os.path.exists(planted), "RESTORE unpickled a client's payload"
