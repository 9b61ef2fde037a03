"""The JSON module on fakeredis, answering as RedisJSON (and so Upstash) does.

fakeredis's JSON commands mimic redis-py's client-side shaping rather than the server:
``JSON.GET k $.a`` comes back unwrapped, ``JSON.NUMINCRBY`` as numbers rather than JSON
text, recursive descent (``$..a``) in the opposite order, ``JSON.RESP`` missing. These
commands keep fakeredis's storage (the decoded JSON value on the key) and reply as
RedisJSON 2 does under RESP2: a JSONPath (``$...``) answers one entry per match, in
RedisJSON's order (a node's descendants before the node, siblings in document order);
a legacy path (``.a``, ``a``) answers its first match and fails when there is none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fakeredis._commands import Key
from fakeredis._core import CommandItem
from fakeredis._helpers import OK, SimpleError, SimpleString
from jsonpath_ng import DatumInContext, Fields, Index
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse  # type: ignore[attr-defined]

from continuum.emulator.extension import command

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_WRONG_TYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
_MISSING = object()


def dump(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def _load(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SimpleError("ERR expected value at line 1 column 1") from None


def _is_json_path(path: bytes) -> bool:
    return path.startswith(b"$")


def _normal(path: bytes) -> str:
    text = path.decode("utf-8", "replace")
    if text in (".", "$", ""):
        return "$"
    if text.startswith("$"):
        return text
    return "$" + text if text.startswith((".", "[")) else "$." + text


def _matches(document: Any, path: bytes) -> list[DatumInContext]:
    """Matches of ``path`` in RedisJSON's order."""
    try:
        found = parse(_normal(path)).find(document)
    except (JsonPathParserError, Exception) as error:
        if isinstance(error, SimpleError):
            raise
        raise SimpleError(f"ERR Path '{path.decode('utf-8', 'replace')}' does not exist") from None
    return sorted(found, key=lambda match: _order(document, match))


def _steps(match: DatumInContext) -> list[Any]:
    steps: list[Any] = []
    node: DatumInContext | None = match
    while node is not None and node.context is not None:
        path = node.path
        if isinstance(path, Fields):
            steps.append(path.fields[0])
        elif isinstance(path, Index):
            indices = getattr(path, "indices", None)
            steps.append(indices[0] if indices else getattr(path, "index", 0))
        node = node.context
    return list(reversed(steps))


def _order(document: Any, match: DatumInContext) -> tuple[float, ...]:
    """RedisJSON's order: a match is found while visiting its parent, after everything
    found below the parent's children; so the parent's position, then infinity, then the
    match's rank among its siblings."""
    ranks: list[float] = []
    node = document
    for step in _steps(match):
        if isinstance(node, dict):
            ranks.append(list(node).index(step) if step in node else 0)
        elif isinstance(node, list) and isinstance(step, int):
            ranks.append(step if step >= 0 else len(node) + step)
        node = node[step] if isinstance(node, (dict, list)) else None
    if not ranks:
        return ()
    return (*ranks[:-1], float("inf"), ranks[-1])


def _replace(document: Any, match: DatumInContext, value: Any) -> Any:
    """``document`` with the matched node replaced by ``value`` (the root too)."""
    steps = _steps(match)
    if not steps:
        return value
    parent = document
    for step in steps[:-1]:
        parent = parent[step]
    parent[steps[-1]] = value
    return document


def _remove(document: Any, match: DatumInContext) -> None:
    steps = _steps(match)
    parent = document
    for step in steps[:-1]:
        parent = parent[step]
    del parent[steps[-1]]


def _type_name(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"boolean"
    if isinstance(value, int):
        return b"integer"
    if isinstance(value, float):
        return b"number"
    if isinstance(value, str):
        return b"string"
    if isinstance(value, list):
        return b"array"
    if isinstance(value, dict):
        return b"object"
    return b"null"


def _resp(value: Any) -> Any:
    if isinstance(value, bool):
        return SimpleString(b"true" if value else b"false")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return dump(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        return [b"[", *(_resp(item) for item in value)]
    if isinstance(value, dict):
        out: list[Any] = [b"{"]
        for name, item in value.items():
            out += [name.encode(), _resp(item)]
        return out
    return None


class JsonCommands:
    """Mixed into the emulator's fakeredis socket."""

    def _document(self, key: CommandItem) -> Any:
        value = key.value
        if value is None:
            return _MISSING
        if isinstance(value, (bytes, set)) or type(value).__name__ in _REDIS_TYPES:
            raise SimpleError(_WRONG_TYPE)
        return value

    def _existing(self, key: CommandItem) -> Any:
        document = self._document(key)
        if document is _MISSING:
            raise SimpleError("ERR could not perform this operation on a key that doesn't exist")
        return document

    def _each(
        self, key: CommandItem, path: bytes, apply: Callable[[Any], Any], *, legacy_error: str
    ) -> Any:
        """``apply`` to every match: the list for a JSONPath, the first result otherwise."""
        document = self._existing(key)
        found = _matches(document, path)
        results = [apply(match.value) for match in found]
        if _is_json_path(path):
            return results
        if not found:
            raise SimpleError(f"ERR Path '{_normal(path)}' does not exist")
        if results[0] is None:
            raise SimpleError(legacy_error.format(path=_normal(path)))
        return results[0]

    def _mutate(
        self,
        key: CommandItem,
        path: bytes,
        change: Callable[[Any], tuple[Any, Any]],
        *,
        legacy_error: str,
    ) -> Any:
        """``change(value) -> (new value or _MISSING, result)`` on every match."""
        document = self._existing(key)
        found = _matches(document, path)
        results = []
        for match in found:
            new, result = change(match.value)
            if new is not _MISSING:
                document = _replace(document, match, new)
            results.append(result)
        key.update(document)
        if _is_json_path(path):
            return results
        if not found:
            raise SimpleError(f"ERR Path '{_normal(path)}' does not exist")
        if results[0] is None:
            raise SimpleError(legacy_error.format(path=_normal(path)))
        return results[-1]

    @command("json.get", (Key(),), (bytes,))
    def json_get(self, key: CommandItem, *args: bytes) -> Any:
        paths = [a for a in args if a.upper() not in (b"NOESCAPE",) and not _is_format(a)]
        document = self._document(key)
        if document is _MISSING:
            return None
        if not paths:
            return dump(document)
        if len(paths) == 1:
            return self._get_one(document, paths[0])
        if all(not _is_json_path(p) for p in paths):
            return dump({p.decode(): json.loads(self._get_one(document, p)) for p in paths})
        return dump({p.decode(): [m.value for m in _matches(document, p)] for p in paths})

    def _get_one(self, document: Any, path: bytes) -> bytes:
        found = _matches(document, path)
        if _is_json_path(path):
            return dump([match.value for match in found])
        if not found:
            raise SimpleError(f"ERR Path '{_normal(path)}' does not exist")
        return dump(found[0].value)

    @command("json.mget", (bytes, bytes), (bytes,))
    def json_mget(self, *args: bytes) -> list[Any]:
        *keys, path = args
        out: list[Any] = []
        for name in keys:
            value = self._db.get(name)  # type: ignore[attr-defined]
            document = None if value is None else value.value
            if document is None or isinstance(document, (bytes, set)):
                out.append(None)
                continue
            try:
                out.append(self._get_one(document, path))
            except SimpleError:
                out.append(None)
        return out

    @command("json.set", (Key(), bytes, bytes), (bytes,))
    def json_set(self, key: CommandItem, path: bytes, raw: bytes, *args: bytes) -> Any:
        value = _load(raw)
        options = {a.upper() for a in args}
        if not options <= {b"NX", b"XX"} or len(options) > 1:
            raise SimpleError("ERR syntax error")
        document = self._document(key)
        if _normal(path) == "$":
            if (b"NX" in options and document is not _MISSING) or (
                b"XX" in options and document is _MISSING
            ):
                return None
            key.update(value)
            return OK
        if document is _MISSING:
            raise SimpleError("ERR new objects must be created at the root")
        found = _matches(document, path)
        if found:
            if b"NX" in options:
                return None
            for match in found:
                document = _replace(document, match, json.loads(raw))
            key.update(document)
            return OK
        if b"XX" in options:
            return None
        return self._create(key, document, path, value)

    def _create(self, key: CommandItem, document: Any, path: bytes, value: Any) -> Any:
        text = _normal(path)
        parent_path, _, name = text.rpartition(".")
        if not name or "[" in name or "*" in name or not parent_path:
            raise SimpleError("ERR Err: wrong static path")
        parents = _matches(document, parent_path.encode())
        made = False
        for parent in parents:
            if isinstance(parent.value, dict):
                parent.value[name.strip("'\"")] = json.loads(dump(value))
                made = True
        if not made:
            if _is_json_path(path) and parents:
                return None
            raise SimpleError("ERR Err: wrong static path")
        key.update(document)
        return OK

    @command("json.mset", (Key(), bytes, bytes), (Key(), bytes, bytes))
    def json_mset(self, *args: Any) -> Any:
        for i in range(0, len(args), 3):
            self.json_set(args[i], args[i + 1], args[i + 2])
        return OK

    @command("json.merge", (Key(), bytes, bytes), ())
    def json_merge(self, key: CommandItem, path: bytes, raw: bytes) -> Any:
        patch = _load(raw)
        document = self._document(key)
        if document is _MISSING:
            if _normal(path) != "$":
                raise SimpleError("ERR new objects must be created at the root")
            key.update(_merged({}, patch) if isinstance(patch, dict) else patch)
            return OK
        for match in _matches(document, path):
            document = _replace(document, match, _merged(match.value, patch))
        key.update(document)
        return OK

    @command("json.type", (Key(),), (bytes,))
    def json_type(self, key: CommandItem, path: bytes = b".") -> Any:
        document = self._document(key)
        if document is _MISSING:
            return None if not _is_json_path(path) else []
        found = _matches(document, path)
        if _is_json_path(path):
            return [_type_name(m.value) for m in found]
        return SimpleString(_type_name(found[0].value)) if found else None

    @command("json.strlen", (Key(),), (bytes,))
    def json_strlen(self, key: CommandItem, path: bytes = b".") -> Any:
        def length(value: Any) -> Any:
            return len(value) if isinstance(value, str) else None

        return self._each(key, path, length, legacy_error=_NOT(b"string"))

    @command("json.arrlen", (Key(),), (bytes,))
    def json_arrlen(self, key: CommandItem, path: bytes = b".") -> Any:
        def length(value: Any) -> Any:
            return len(value) if isinstance(value, list) else None

        return self._each(key, path, length, legacy_error=_NOT(b"array"))

    @command("json.objlen", (Key(),), (bytes,))
    def json_objlen(self, key: CommandItem, path: bytes = b".") -> Any:
        def length(value: Any) -> Any:
            return len(value) if isinstance(value, dict) else None

        return self._each(key, path, length, legacy_error=_NOT(b"object"))

    @command("json.objkeys", (Key(),), (bytes,))
    def json_objkeys(self, key: CommandItem, path: bytes = b".") -> Any:
        def names(value: Any) -> Any:
            return [name.encode() for name in value] if isinstance(value, dict) else None

        return self._each(key, path, names, legacy_error=_NOT(b"object"))

    @command("json.strappend", (Key(), bytes), (bytes,))
    def json_strappend(self, key: CommandItem, first: bytes, *rest: bytes) -> Any:
        path, raw = (first, rest[0]) if rest else (b".", first)
        text = _load(raw)
        if not isinstance(text, str):
            raise SimpleError("ERR wrong type of value: expected a string")

        def append(value: Any) -> tuple[Any, Any]:
            if not isinstance(value, str):
                return _MISSING, None
            return value + text, len(value + text)

        return self._mutate(key, path, append, legacy_error=_NOT(b"string"))

    def _arith(
        self, key: CommandItem, path: bytes, raw: bytes, op: Callable[[Any, Any], Any]
    ) -> Any:
        operand = _load(raw)
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise SimpleError("ERR expected a number")

        def apply(value: Any) -> tuple[Any, Any]:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return _MISSING, None
            result = op(value, operand)
            if isinstance(result, float) and result.is_integer() and isinstance(value, int):
                result = float(result)
            return result, result

        results = self._mutate(key, path, apply, legacy_error=_NOT(b"number"))
        return dump(results)

    @command("json.numincrby", (Key(), bytes, bytes))
    def json_numincrby(self, key: CommandItem, path: bytes, raw: bytes) -> Any:
        return self._arith(key, path, raw, lambda a, b: a + b)

    @command("json.nummultby", (Key(), bytes, bytes))
    def json_nummultby(self, key: CommandItem, path: bytes, raw: bytes) -> Any:
        return self._arith(key, path, raw, lambda a, b: a * b)

    @command("json.toggle", (Key(),), (bytes,))
    def json_toggle(self, key: CommandItem, path: bytes = b".") -> Any:
        def flip(value: Any) -> tuple[Any, Any]:
            if not isinstance(value, bool):
                return _MISSING, None
            return (not value), int(not value)

        result = self._mutate(key, path, flip, legacy_error=_NOT(b"boolean"))
        if _is_json_path(path):
            return result
        return b"true" if result else b"false"

    @command("json.clear", (Key(),), (bytes,))
    def json_clear(self, key: CommandItem, path: bytes = b"$") -> int:
        document = self._existing(key)
        cleared = 0
        for match in _matches(document, path):
            value = match.value
            if isinstance(value, (dict, list)) and value:
                value.clear()
                cleared += 1
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0:
                document = _replace(document, match, 0)
                cleared += 1
        key.update(document)
        return cleared

    @command("json.del", (Key(),), (bytes,))
    def json_del(self, key: CommandItem, path: bytes = b"$") -> int:
        document = self._document(key)
        if document is _MISSING:
            return 0
        if _normal(path) == "$":
            key.value = None
            return 1
        found = _matches(document, path)
        for match in sorted(found, key=lambda m: _order(document, m), reverse=True):
            _remove(document, match)
        key.update(document)
        return len(found)

    @command("json.forget", (Key(),), (bytes,))
    def json_forget(self, key: CommandItem, path: bytes = b"$") -> int:
        return self.json_del(key, path)

    @command("json.arrappend", (Key(), bytes), (bytes,))
    def json_arrappend(self, key: CommandItem, path: bytes, *raws: bytes) -> Any:
        if not raws:
            raise SimpleError("ERR wrong number of arguments for 'json.arrappend' command")
        values = [_load(raw) for raw in raws]

        def append(value: Any) -> tuple[Any, Any]:
            if not isinstance(value, list):
                return _MISSING, None
            value.extend(json.loads(dump(values)))
            return _MISSING, len(value)

        return self._mutate(key, path, append, legacy_error=_NOT(b"array"))

    @command("json.arrinsert", (Key(), bytes, bytes), (bytes,))
    def json_arrinsert(self, key: CommandItem, path: bytes, raw_index: bytes, *raws: bytes) -> Any:
        index = _integer(raw_index)
        values = [_load(raw) for raw in raws]

        def insert(value: Any) -> tuple[Any, Any]:
            if not isinstance(value, list):
                return _MISSING, None
            at = index if index >= 0 else len(value) + index
            if not 0 <= at <= len(value):
                raise SimpleError("ERR index out of bounds")
            value[at:at] = json.loads(dump(values))
            return _MISSING, len(value)

        return self._mutate(key, path, insert, legacy_error=_NOT(b"array"))

    @command("json.arrindex", (Key(), bytes, bytes), (bytes,))
    def json_arrindex(self, key: CommandItem, path: bytes, raw: bytes, *bounds: bytes) -> Any:
        wanted = _load(raw)
        start = _integer(bounds[0]) if bounds else 0
        stop = _integer(bounds[1]) if len(bounds) > 1 else 0

        def find(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            size = len(value)
            low = max(0, start + size if start < 0 else start)
            high = size if stop == 0 else min(size, stop + size if stop < 0 else stop)
            for i in range(low, high):
                if _same(value[i], wanted):
                    return i
            return -1

        return self._each(key, path, find, legacy_error=_NOT(b"array"))

    @command("json.arrpop", (Key(),), (bytes,))
    def json_arrpop(self, key: CommandItem, path: bytes = b".", raw_index: bytes = b"-1") -> Any:
        index = _integer(raw_index)

        def pop(value: Any) -> tuple[Any, Any]:
            if not isinstance(value, list):
                return _MISSING, None
            if not value:
                return _MISSING, None
            at = max(0, min(len(value) - 1, index if index >= 0 else len(value) + index))
            return _MISSING, dump(value.pop(at))

        return self._mutate(key, path, pop, legacy_error=_NOT(b"array"))

    @command("json.arrtrim", (Key(), bytes, bytes, bytes))
    def json_arrtrim(self, key: CommandItem, path: bytes, raw_start: bytes, raw_stop: bytes) -> Any:
        start, stop = _integer(raw_start), _integer(raw_stop)

        def trim(value: Any) -> tuple[Any, Any]:
            if not isinstance(value, list):
                return _MISSING, None
            size = len(value)
            low = max(0, start + size if start < 0 else start)
            high = min(size - 1, stop + size if stop < 0 else stop)
            value[:] = value[low : high + 1] if low <= high and low < size else []
            return _MISSING, len(value)

        return self._mutate(key, path, trim, legacy_error=_NOT(b"array"))

    @command("json.resp", (Key(),), (bytes,))
    def json_resp(self, key: CommandItem, path: bytes = b".") -> Any:
        document = self._document(key)
        if document is _MISSING:
            return None
        found = _matches(document, path)
        if _is_json_path(path):
            return [_resp(match.value) for match in found]
        if not found:
            raise SimpleError(f"ERR Path '{_normal(path)}' does not exist")
        return _resp(found[0].value)


_REDIS_TYPES = frozenset({"ZSet", "Hash", "XStream", "ExpiringMembersSet", "BloomFilter"})


def _NOT(kind: bytes) -> str:
    return (
        "ERR Path '{path}' does not exist or not "
        + ("an " if kind[0] in b"aeiou" else "a ")
        + kind.decode()
    )


def _is_format(arg: bytes) -> bool:
    return arg.upper() in (b"INDENT", b"NEWLINE", b"SPACE")


def _integer(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SimpleError("ERR value is not an integer or out of range") from None


def _same(a: Any, b: Any) -> bool:
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b
    )  # fmt: skip


def _merged(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch: ``null`` removes a member, objects merge, the rest replaces."""
    if not isinstance(patch, dict):
        return json.loads(dump(patch))
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merged(result.get(name), value)
    return result
