"""Redis Functions (FUNCTION LOAD|LIST|STATS|DELETE|FLUSH, FCALL, FCALL_RO), served by the emulator.

fakeredis runs functions in a Lua runtime of their own, outside the emulator's sandbox
and time limit, and a function on redis-server that writes and then loops cannot be
stopped. So the emulator keeps the libraries itself and runs a function as a script,
through the same sandbox, ticks and billing as EVAL, on both backends: the script runs
the library's code with a ``redis.register_function`` that collects the functions, then
calls the one asked for with ``(keys, args)``. ``FCALL_RO`` runs only a function flagged
``no-writes`` (as on Redis and Upstash), and such a function cannot write whichever
command runs it. Libraries live as long as the emulator process.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from continuum.emulator.resp import Command, ErrorReply, Reply
from continuum.emulator.scripts import hidden

if TYPE_CHECKING:
    from continuum.emulator.backend import Backend, Fix, Plan

_NAME = re.compile(rb"^#!lua name=([A-Za-z0-9_]+)\s*$")
_NO_WRITES = b"no-writes"
_FLAGS = (b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys")


@dataclass
class Library:
    name: bytes
    code: bytes
    functions: dict[bytes, tuple[list[bytes], bytes | None]] = field(default_factory=dict)


# The library's code runs with ``redis`` showing the load API (register_function, log)
# while it loads, and the script API afterwards, as in Redis.
def _harness(code: bytes, target: bytes | None) -> bytes:
    registered, loading, api, view = (hidden(n) for n in (b"fns", b"loading", b"api", b"view"))
    register = hidden(b"register")
    head = b"".join(
        [
            b"local %s, %s, %s = {}, true, redis " % (registered, loading, api),
            b"local function %s(a, b) local name, cb, flags, desc " % register,
            b"if type(a) == 'table' then name, cb, flags, desc = a.function_name, a.callback, ",
            b"a.flags, a.description else name, cb = a, b end ",
            b"if type(name) ~= 'string' or type(cb) ~= 'function' then ",
            b"error('wrong arguments to redis.register_function', 2) end ",
            b"if %s[name] then error('Function already exists in the library', 2) end "
            % registered,
            b"%s[name] = {cb, flags or {}, desc} end " % registered,
            b"local %s = setmetatable({}, {__index = function(_, k) if %s then " % (view, loading),
            b"if k == 'register_function' then return %s end " % register,
            b"if k == 'log' then return %s.log end return nil end return %s[k] end, " % (api, api),
            b"__newindex = function() error('Attempt to modify a readonly table', 2) end, ",
            b"__metatable = false}) ",
            b"local redis = %s ;(function() " % view,
        ]
    )
    tail = b"\nend)() %s = false " % loading
    if target is None:  # loading: answer {name, flags, description} per function
        tail += b"local out = {} for name, f in pairs(%s) do " % registered
        tail += b"out[#out + 1] = {name, f[2], f[3] or false} end return out"
    else:
        call = target.decode("utf-8", "replace").replace("\\", "\\\\").replace("'", "\\'")
        tail += b"return %s['%s'][1](KEYS, ARGV)" % (registered, call.encode())
    return head + _shebang_free(code) + tail


def _shebang_free(code: bytes) -> bytes:
    newline = code.find(b"\n")
    return b"" if newline < 0 else code[newline:]


class FunctionLibrary:
    """The libraries loaded through this emulator, and the plans that serve them."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._libraries: dict[bytes, Library] = {}
        self._lock = threading.Lock()

    def translate(self, args: Command) -> Plan:
        name = args[0].upper()
        if name in (b"FCALL", b"FCALL_RO"):
            return self._call(args, read_only_command=name == b"FCALL_RO")
        sub = args[1].upper() if len(args) > 1 else b""
        handler = {
            b"LOAD": self._load,
            b"LIST": self._list,
            b"STATS": self._stats,
            b"DELETE": self._delete,
            b"FLUSH": self._flush,
        }.get(sub)
        if handler is None:
            return _answer(ErrorReply("ERR unknown subcommand or wrong number of arguments"))
        return handler(args[2:])

    # -- FUNCTION ------------------------------------------------------------------------

    def _load(self, rest: Command) -> Plan:
        replace = len(rest) == 2 and rest[0].upper() == b"REPLACE"
        if len(rest) != 1 and not replace:
            return _answer(ErrorReply("ERR wrong number of arguments for 'function|load' command"))
        code = rest[-1]
        match = _NAME.match(code.split(b"\n", 1)[0])
        if match is None:
            return _answer(ErrorReply("ERR Missing library metadata"))
        library = match.group(1)
        with self._lock:
            if library in self._libraries and not replace:
                return _answer(ErrorReply(f"ERR Library '{library.decode()}' already exists"))
        text = self._backend.wrap(_harness(code, None), False)
        command = [b"EVAL", text, b"0"]
        return command, self._loaded(library, code, text)

    def _loaded(self, library: bytes, code: bytes, text: bytes) -> Fix:
        wrapper_sha = hashlib.sha1(text).hexdigest()  # noqa: S324 - Redis's script name

        def fix(reply: Reply) -> tuple[Reply, int]:
            if self._backend.kind == "redis" and isinstance(reply, list) and len(reply) == 2:
                reply = reply[1]
            if isinstance(reply, ErrorReply):
                message = reply.message.replace(f" script: {wrapper_sha}", " library: ")
                return ErrorReply(message.split(" library: ")[0]), 0
            functions: dict[bytes, tuple[list[bytes], bytes | None]] = {}
            for entry in reply if isinstance(reply, list) else []:
                if not isinstance(entry, list) or len(entry) < 2:
                    continue
                name, flags = entry[0], entry[1]
                description = entry[2] if len(entry) > 2 and isinstance(entry[2], bytes) else None
                listed = (
                    [f.lower() for f in flags if isinstance(f, bytes)]
                    if isinstance(flags, list)
                    else []
                )
                if any(flag not in _FLAGS for flag in listed):
                    return ErrorReply("ERR unknown flag given"), 0
                if isinstance(name, bytes):
                    functions[name] = (listed, description)
            if not functions:
                return ErrorReply("ERR No functions registered"), 0
            with self._lock:
                for other in self._libraries.values():
                    if other.name != library and set(other.functions) & set(functions):
                        clash = sorted(set(other.functions) & set(functions))[0].decode()
                        return ErrorReply(f"ERR Function {clash} already exists"), 0
                self._libraries[library] = Library(library, code, functions)
            return library, 0

        return fix

    def _list(self, rest: Command) -> Plan:
        pattern: bytes | None = None
        with_code = False
        i = 0
        while i < len(rest):
            option = rest[i].upper()
            if option == b"WITHCODE":
                with_code = True
            elif option == b"LIBRARYNAME" and i + 1 < len(rest):
                pattern = rest[i + 1]
                i += 1
            else:
                return _answer(
                    ErrorReply(f"ERR Unknown argument {rest[i].decode('utf-8', 'replace')}")
                )
            i += 1
        with self._lock:
            libraries = list(self._libraries.values())
        out: list[Reply] = []
        for library in libraries:
            if pattern is not None and not _glob(pattern, library.name):
                continue
            functions: list[Reply] = [
                [b"name", name, b"description", description, b"flags", list(flags)]
                for name, (flags, description) in library.functions.items()
            ]
            entry: list[Reply] = [b"library_name", library.name, b"engine", b"LUA"]
            entry += [b"functions", functions]
            if with_code:
                entry += [b"library_code", library.code]
            out.append(entry)
        return _answer(out)

    def _stats(self, rest: Command) -> Plan:
        with self._lock:
            libraries = len(self._libraries)
            functions = sum(len(lib.functions) for lib in self._libraries.values())
        counts: list[Reply] = [b"libraries_count", libraries, b"functions_count", functions]
        return _answer([b"running_script", None, b"engines", [b"LUA", counts]])

    def _delete(self, rest: Command) -> Plan:
        if len(rest) != 1:
            return _answer(
                ErrorReply("ERR wrong number of arguments for 'function|delete' command")
            )
        with self._lock:
            if self._libraries.pop(rest[0], None) is None:
                return _answer(ErrorReply("ERR Library not found"))
        return _answer(b"OK")

    def _flush(self, rest: Command) -> Plan:
        if len(rest) > 1 or (rest and rest[0].upper() not in (b"ASYNC", b"SYNC")):
            return _answer(ErrorReply("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"))
        with self._lock:
            self._libraries.clear()
        return _answer(b"OK")

    # -- FCALL ---------------------------------------------------------------------------

    def _call(self, args: Command, *, read_only_command: bool) -> Plan:
        if len(args) < 3:
            shown = args[0].decode("utf-8", "replace").lower()
            return _answer(ErrorReply(f"ERR wrong number of arguments for '{shown}' command"))
        found = self._find(args[1])
        if found is None:
            return _answer(ErrorReply("ERR Function not found"))
        library, (flags, _) = found
        read_only = _NO_WRITES in flags
        if read_only_command and not read_only:
            return _answer(
                ErrorReply("ERR Can not execute a script with write flag using *_ro command.")
            )
        text = self._backend.wrap(_harness(library.code, args[1]), read_only)
        native = self._backend.kind == "redis" and read_only
        command = [b"EVAL_RO" if native else b"EVAL", text, *args[2:]]
        sha = hashlib.sha1(library.code).hexdigest()  # noqa: S324 - names the library's code
        return command, self._backend.script_fix(sha, text)

    def _find(self, name: bytes) -> tuple[Library, tuple[list[bytes], bytes | None]] | None:
        with self._lock:
            for library in self._libraries.values():
                if name in library.functions:
                    return library, library.functions[name]
        return None


def _answer(value: Reply) -> Plan:
    """A plan answered by the emulator itself (PING only keeps the batch's shape)."""
    return [b"PING"], lambda reply: (value, 0)


def _glob(pattern: bytes, name: bytes) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(
        name.lower().decode("utf-8", "replace"), pattern.lower().decode("utf-8", "replace")
    )
