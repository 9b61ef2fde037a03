"""The Lua sandbox scripts get on fakeredis: Redis's, enforced by the emulator.

fakeredis runs every script in one shared lupa runtime whose globals and library tables
any script can change (``string.lower = ...`` reached every later script of every
client), whose ``redis.call`` is a Python object, and which knows no read-only scripts.
So the emulator gives fakeredis a runtime of its own making (``sandboxed_lupa``): lupa
with no ``python`` global and no attribute access on Python objects, and an ``execute``
that runs a prepared script as Redis would:

- in a fresh environment per run, where every global and library table is a read-only
  view (``string.lower = f``, ``_G.x = 1``, ``rawset(string, ...)`` change nothing that
  outlives the run) and the string metatable is out of reach;
- with a ``redis`` table of plain Lua functions whose calls go through Python, which
  counts them for billing and refuses writes from a read-only script, whatever path the
  script took to reach them (``_G.redis``, ``rawget``, a saved reference, ``pcall``);
- with a deadline tick on every loop iteration and function entry
  (``continuum.emulator.lua``) and a memory cap on the runtime.

The text fakeredis receives for ``EVAL`` is a marker naming a prepared script; anything
else reaching ``execute`` (only fakeredis's own housekeeping does) is refused.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import ResponseError

from continuum.emulator.lua import instrument
from continuum.emulator.scripts import TICK, TIMEOUT, Wrapper, hidden

READ_ONLY_WRITE = "ERR Write commands are not allowed from read-only scripts."
UNKNOWN_IN_SCRIPT = "ERR Unknown Redis command called from script"
# Lua's share of the emulator's memory: past it a script fails with "not enough memory".
MAX_LUA_BYTES = 512 * 1024 * 1024
_HOUSEKEEPING = frozenset({"collectgarbage()", b"collectgarbage()"})

#: Run once, with the runtime's own globals: it keeps private references to what it
#: needs and returns the two functions the emulator uses. Scripts never see this scope.
_BOOTSTRAP = b"""
local loadstring, setfenv, setmetatable = loadstring, setfenv, setmetatable
local getmetatable, error, xpcall, pcall = getmetatable, error, xpcall, pcall
local type, tostring, pairs, select, unpack = type, tostring, pairs, select, unpack
local strlib, mathlib, tablib, colib = {}, {}, {}, {}
for k, v in pairs(string) do strlib[k] = v end
for k, v in pairs(math) do mathlib[k] = v end
for k, v in pairs(table) do tablib[k] = v end
for k, v in pairs(coroutine) do colib[k] = v end
local rep, max_string = string.rep, 100 * 1024 * 1024
strlib.rep = function(s, n, ...)
  if type(n) == "number" and #tostring(s) * n > max_string then
    error("string.rep: result over the emulator's 100 MB limit", 2)
  end
  return rep(s, n, ...)
end
-- Method calls on strings ("x"):lower() use the private copy; the metatable is hidden.
local string_meta = getmetatable("")
string_meta.__index = strlib
string_meta.__metatable = false

local function readonly() error("Attempt to modify a readonly table", 2) end
-- Read-only views and what they show, so rawget/rawset treat them as Redis treats its
-- read-only tables (rawset refused, rawget sees the contents).
local shown = setmetatable({}, {__mode = "k"})
local function view(t)
  local v = setmetatable({}, {__index = t, __newindex = readonly, __metatable = false})
  shown[v] = t
  return v
end
local real_rawget, real_rawset = rawget, rawset
local plain = {"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
  "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type",
  "unpack", "xpcall", "gcinfo", "_VERSION"}
local builtins = {}
for _, name in pairs(plain) do builtins[name] = _G[name] end

local cjson_encode, cjson_decode, cjson_null = cjson.encode, cjson.decode, cjson.null
local function wrapped(f)
  return function(...)
    local result = {pcall(f, ...)}
    if not result[1] then error(tostring(result[2]), 2) end
    return select(2, unpack(result))
  end
end
local cjsonlib = {encode = wrapped(cjson_encode), decode = wrapped(cjson_decode), null = cjson_null}

local function environment(api, keys, argv)
  local base = {string = view(strlib), math = view(mathlib), table = view(tablib),
    coroutine = view(colib), cjson = view(cjsonlib), redis = view(api), KEYS = keys, ARGV = argv}
  for name, value in pairs(builtins) do base[name] = value end
  local env
  base.rawget = function(t, k)
    local inner = (t == env and base) or shown[t]
    if inner ~= nil then return inner[k] end
    return real_rawget(t, k)
  end
  base.rawset = function(t, k, v)
    if t == env or shown[t] ~= nil then error("Attempt to modify a readonly table", 0) end
    return real_rawset(t, k, v)
  end
  base.setmetatable = function(t, meta)
    if t == env or shown[t] ~= nil then error("Attempt to modify a readonly table", 0) end
    return setmetatable(t, meta)
  end
  env = setmetatable({}, {
    __index = function(_, name)
      local value = base[name]
      if value == nil then
        local shown = tostring(name)
        error("Script attempted to access nonexistent global variable '" .. shown .. "'", 2)
      end
      return value
    end,
    __newindex = readonly,
    __metatable = false,
  })
  base._G = env
  base.loadstring = function(code, name)
    local chunk, message = loadstring(code, name)
    if chunk then setfenv(chunk, env) end
    return chunk, message
  end
  return env
end

local function redis_api(py_call, log, sha1hex)
  local api = {log = wrapped(log), LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3}
  api.call = function(...)
    local ok, value = py_call(...)
    if ok then return value end
    error({err = value}, 2)
  end
  api.pcall = function(...)
    local ok, value = py_call(...)
    if ok then return value end
    return {err = value}
  end
  api.sha1hex = wrapped(sha1hex)
  api.error_reply = function(message) return {err = message} end
  api.status_reply = function(message) return {ok = message} end
  api.setresp = function() end
  api.set_repl = function() end
  api.replicate_commands = function() return true end
  return api
end

local function compile(text)
  local chunk, message = loadstring(text, "@user_script")
  if not chunk then return nil, message end
  return chunk
end

local function run(chunk, keys, argv, py_call, log, sha1hex, tick)
  local env = environment(redis_api(py_call, log, sha1hex), keys, argv)
  shown[env] = nil
  setfenv(chunk, env)
  local ok, result = xpcall(function() return chunk(tick) end, function(e)
    if type(e) == "table" and e.err ~= nil then return e end
    return tostring(e)
  end)
  if ok then return true, result end
  if type(result) == "table" then return false, tostring(result.err), true end
  return false, result, false
end

-- (through _G: several of these names are locals of this chunk)
for _, name in pairs({"os", "io", "debug", "python", "package", "require", "dofile",
    "loadfile", "module", "getfenv", "setfenv"}) do _G[name] = nil end
return {compile = compile, run = run}
"""


# The deadline check a script's ticks call: the clock (Python) is asked every 1000th tick,
# and once late every tick raises, so a pcall cannot keep the script going.
_TICKS = (
    "function(late, message) local n = 0 local over = false "
    "return function() if over then error({err = message}) end n = n + 1 "
    "if n >= 1000 then n = 0 if late() then over = true error({err = message}) end end "
    "end end"
)
SYNTAX_ERROR = b"--syntax-error:"


@dataclass(frozen=True)
class Prepared:
    """A script ready to run: its compiled chunk and whether it may write."""

    chunk: Any
    read_only: bool
    billed: bool = True


class Counter(threading.local):
    """redis.call()s made by scripts in this thread (fakeredis runs them in the caller's)."""

    calls = 0


def _no_python_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("scripts cannot reach Python objects")


class SandboxRuntime:
    """fakeredis's Lua runtime, with ``execute`` running prepared scripts in the sandbox."""

    def __init__(self, runtime: Any, server: Any, is_write: Callable[[list[bytes]], bool]) -> None:
        self._runtime = runtime
        self._server = server
        self._is_write = is_write
        self._prepared: dict[bytes, Prepared] = {}
        self._lock = threading.Lock()
        self._nonce = secrets.token_hex(16).encode()
        self._sandbox: Any = None
        self._ticks: Any = None
        self.seconds = 5.0
        self.counter = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def prepare(self, text: bytes, read_only: bool, *, billed: bool = True) -> bytes:
        """The marker text fakeredis is sent for ``text`` (compiled once, kept). The calls
        of an unbilled script (the emulator's own) are not counted."""
        mode = (b"ro" if read_only else b"rw") + (b"" if billed else b"-free")
        marker = b"--" + self._nonce + b":" + mode + b":" + text
        with self._lock:
            if marker not in self._prepared:
                chunk, message, *_ = _values(self._bootstrap().compile(text), 2)
                if chunk is None:
                    raise ScriptSyntaxError(_text(message))
                self._prepared[marker] = Prepared(chunk, read_only, billed)
        return marker

    def _bootstrap(self) -> Any:
        if self._sandbox is None:
            self._sandbox = self._runtime.execute(_BOOTSTRAP)
        return self._sandbox

    def execute(self, script: Any) -> Any:
        from fakeredis._helpers import SimpleError

        if script in _HOUSEKEEPING:
            return self._runtime.execute(script)
        prepared = self._prepared.get(script) if isinstance(script, bytes) else None
        if prepared is None:
            if isinstance(script, bytes) and script.startswith(SYNTAX_ERROR):
                message = script[len(SYNTAX_ERROR) :].decode("utf-8", "replace")
                raise SimpleError(f"ERR Error compiling script (new function): {message}")
            raise SimpleError("ERR scripts reach this backend only through the emulator")
        return self._run(prepared)

    def _run(self, prepared: Prepared) -> Any:
        from fakeredis._helpers import SimpleError

        lua_globals = self._runtime.globals()
        deadline = time.monotonic() + self.seconds
        message = TIMEOUT.format(seconds=self.seconds)
        over = [False]

        def tick_clock() -> bool:
            if not over[0] and time.monotonic() > deadline:
                over[0] = True
            return over[0]

        if self._ticks is None:
            self._ticks = self._runtime.eval(_TICKS)
        tick = self._ticks(tick_clock, message)
        ok, value, is_reply_error = _values(
            self._bootstrap().run(
                prepared.chunk,
                lua_globals.KEYS,
                lua_globals.ARGV,
                self._caller(prepared.read_only, prepared.billed),
                lua_globals.redis.log,
                _sha1hex,
                tick,
            ),
            3,
        )
        if ok:
            return value
        text = _text(value)
        raise SimpleError(text if is_reply_error else f"ERR {text}")

    def _caller(self, read_only: bool, billed: bool) -> Callable[..., tuple[bool, Any]]:
        from fakeredis._helpers import SimpleError

        forward = self._server._lua_redis_call_wrapper
        counter = self.counter
        is_write = self._is_write

        def call(*args: Any) -> tuple[bool, Any]:
            if billed:
                counter.calls += 1
            if read_only and args and is_write([_as_bytes(a) for a in args[:2]]):
                return False, READ_ONLY_WRITE
            try:
                return True, forward(*args)
            except SimpleError as error:
                if error.value.startswith("ERR unknown command"):
                    return False, UNKNOWN_IN_SCRIPT  # redis-server's words
                return False, error.value

        return call


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _values(returned: Any, count: int) -> tuple[Any, ...]:
    """A Lua function's return values as a ``count``-tuple (lupa gives one value bare)."""
    values = returned if isinstance(returned, tuple) else (returned,)
    return (*values, *([None] * (count - len(values))))[:count]


def _sha1hex(value: Any) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.sha1(data).hexdigest().encode()  # noqa: S324 - Redis's redis.sha1hex


class ScriptSyntaxError(Exception):
    """A script that does not compile (reported as the EVAL's error)."""


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


class FakeWrapper(Wrapper):
    """fakeredis: the instrumented body, prepared in the sandbox, named by a marker."""

    def __init__(self, runtime: SandboxRuntime) -> None:
        self._runtime = runtime
        self._open = b"local " + TICK + b" = ... local " + hidden(b"result") + b" = (function() "
        self._close = b"\nend)() return " + hidden(b"result")

    def internal(self, body: bytes) -> bytes:
        return self._runtime.prepare(body, False, billed=False)

    def wrap(self, body: bytes, read_only: bool) -> bytes:
        text = self._open + instrument(body, TICK) + self._close
        try:
            return self._runtime.prepare(text, read_only)
        except ScriptSyntaxError as error:
            return _failing(str(error))


def _failing(message: str) -> bytes:
    """A marker that answers the compile error when fakeredis runs it."""
    return SYNTAX_ERROR + message.encode("utf-8", "replace")


class _SandboxedLupa:
    """fakeredis's lupa module, but every ``LuaRuntime`` it makes gives Lua no way into
    Python and a memory cap, and is wrapped in a ``SandboxRuntime``."""

    def __init__(self, module: Any, server: Any, is_write: Callable[[list[bytes]], bool]) -> None:
        self._module = module
        self._server = server
        self._is_write = is_write
        self.runtime: SandboxRuntime | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def LuaRuntime(self, *args: Any, **kwargs: Any) -> Any:  # lupa's name, kept
        kwargs.update(
            register_eval=False,
            register_builtins=False,
            attribute_filter=_no_python_attributes,
            max_memory=MAX_LUA_BYTES,
        )
        self.runtime = SandboxRuntime(
            self._module.LuaRuntime(*args, **kwargs), self._server, self._is_write
        )
        return self.runtime


_INSTALLING = threading.Lock()


def install(server: Any, client: Any, is_write: Callable[[list[bytes]], bool]) -> SandboxRuntime:
    """Give ``server`` (a fakeredis FakeServer) the sandboxed runtime and return it.

    fakeredis builds its runtime on the first script and keeps it on the server object:
    that first script runs here with lupa's module swapped for the sandboxed one. A
    fakeredis that builds it elsewhere leaves the emulator without scripts (it says so)
    rather than unsandboxed."""
    from fakeredis.commands_mixins import scripting_mixin

    module = scripting_mixin.LUA_MODULE
    sandboxed = _SandboxedLupa(module, server, is_write)
    with _INSTALLING:
        scripting_mixin.LUA_MODULE = sandboxed  # type: ignore[assignment]
        try:
            client.eval("return 1", 0)  # builds the runtime; the unprepared script is refused
        except ResponseError:
            pass
        finally:
            scripting_mixin.LUA_MODULE = module
    runtime = sandboxed.runtime
    if not isinstance(runtime, SandboxRuntime):
        raise RuntimeError("fakeredis built no Lua runtime: it could not be sandboxed")
    if getattr(server, "_lua_runtime", None) is not runtime:
        raise RuntimeError("fakeredis keeps its Lua runtime elsewhere: it could not be sandboxed")
    return cast(SandboxRuntime, runtime)
