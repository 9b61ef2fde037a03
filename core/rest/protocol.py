"""The Upstash REST protocol without any I/O: commands to requests, responses to replies.

Every transport (httpx sync and async, the Workers fetch API) shares this module, so the
encoding rules and the error mapping live in exactly one place:

- every request asks for ``Upstash-Encoding: base64`` so binary results come back exact;
  results are decoded here (strings are base64, the status ``"OK"`` stays raw);
- text arguments travel as a JSON array; a command whose argument is bytes that are not
  valid UTF-8 uses the raw-body path form (``POST /set/<key>?EX=60`` with the value as
  the body), the only binary-safe way to send a value, when its path reaches the server
  as sent; when it would not (a key ``.``, ``..``, empty, or with a ``/``), the command
  travels as JSON inside a small script that hex-decodes the value (``EVAL``, billed as
  two commands);
- a batch is planned into as few requests as possible, order preserved: consecutive
  JSON-able commands share one ``/pipeline`` request;
- HTTP status, non-JSON bodies, ``{"message": ...}`` shapes, quota text, NOPERM,
  NOSCRIPT and discarded transactions map to the ``continuum.errors`` tree in :func:`parse`;
  every error text a server sends passes :class:`Redactor` first, so a server or proxy
  that echoes the Authorization header cannot put a token into an exception;
- the latest ``upstash-sync-token`` is echoed per client, under a lock.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

from continuum.codec import MAX_JSON_DEPTH, json_too_deep
from continuum.config import mask_token
from continuum.errors import (
    AuthenticationFailed,
    CacheError,
    CommandError,
    NoScriptError,
    PermissionDenied,
    QuotaExceeded,
    ServerError,
    TransactionAborted,
    ValidationError,
)
from continuum.record import Record
from continuum.rest.scripts import register as register_script

__all__ = [
    "Arg",
    "Command",
    "HttpRequest",
    "HttpResponse",
    "PlannedRequest",
    "Redactor",
    "Reply",
    "RestProtocol",
    "Script",
    "SyncTokens",
    "command_error",
    "is_write",
    "plan",
    "repeatable",
]

Arg = str | bytes | int | float
Command = Sequence[Arg]
Reply = None | int | str | bytes | list["Reply"]

#: Commands that never change data; everything else counts as a write for retries.
READ_COMMANDS = frozenset(
    {
        "GET",
        "MGET",
        "EXISTS",
        "TTL",
        "PTTL",
        "TYPE",
        "STRLEN",
        "GETRANGE",
        "HGET",
        "HGETALL",
        "HMGET",
        "HEXISTS",
        "HLEN",
        "HKEYS",
        "HVALS",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "SMEMBERS",
        "SISMEMBER",
        "SCARD",
        "ZRANGE",
        "ZSCORE",
        "ZCARD",
        "ZCOUNT",
        "ZRANGEBYSCORE",
        "ZRANK",
        "SCAN",
        "SSCAN",
        "HSCAN",
        "ZSCAN",
        "KEYS",
        "DBSIZE",
        "PING",
        "ECHO",
        "TIME",
        "INFO",
        "EVAL_RO",
        "EVALSHA_RO",
        "SCRIPT",
    }
)
#: Writes whose second run leaves what the first left: one may be repeated (on another
#: store) when it is unknown whether the server ran it; any other write may not.
REPEATABLE_WRITES = frozenset(
    {"SET", "DEL", "UNLINK", "EXPIRE", "PEXPIRE", "PERSIST", "FLUSHDB", "FLUSHALL"}
)
_BASE64 = "base64"


class HttpRequest:
    """One HTTP request relative to the database URL; ``headers`` include the token.

    This and the two records below are plain slotted classes, not dataclasses: a
    dataclass costs about 0.5 ms at import, which every cold start pays (bench_coldstart).
    """

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:  # headers carry the token, the body the user's data
        return f"HttpRequest(method={self.method!r}, path={self.path!r})"


class HttpResponse:
    """One HTTP response; ``headers`` answers lower-case names (it may be case-insensitive)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:  # a body may echo the token back (see Redactor)
        return f"HttpResponse(status={self.status!r}, body=<{len(self.body)} bytes>)"


class PlannedRequest:
    """A request and the positions of the batch's commands it carries.

    ``kind`` is ``single`` (``POST /``, one command), ``raw`` (path form, binary body),
    ``pipeline`` or ``transaction``. ``scripted`` names the positions sent in the script
    form (see :func:`plan`), whose replies come back wrapped.
    """

    __slots__ = ("kind", "positions", "request", "scripted")

    def __init__(
        self,
        request: HttpRequest,
        positions: tuple[int, ...],
        kind: str,
        scripted: frozenset[int] = frozenset(),
    ) -> None:
        self.request = request
        self.positions = positions
        self.kind = kind
        self.scripted = scripted

    def __repr__(self) -> str:
        return f"PlannedRequest({self.request!r}, positions={self.positions!r}, kind={self.kind!r})"


class Script(Record):
    """A Lua script and its SHA1: sent as EVAL until the database holds it, then as
    EVALSHA (see :mod:`continuum.rest.scripts`). Frozen (see :mod:`continuum.record`)."""

    __slots__ = ("sha1", "source")
    __match_args__ = ("source", "sha1")
    source: str
    sha1: str

    def __init__(self, source: str, sha1: str) -> None:
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "sha1", sha1)
        # so the executor can send EVAL where the database does not hold it yet
        register_script(sha1, source)

    @classmethod
    def from_source(cls, source: str) -> Script:
        return cls(source, hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest())


#: Longest sync token echoed back; Upstash's are a few dozen characters.
MAX_SYNC_TOKEN = 1024


def _echoable(token: str) -> bool:
    """Whether a sync token can go back in a header: a lying server's non-ASCII, control
    characters or a huge value would otherwise break (or bloat) every later request."""
    return len(token) <= MAX_SYNC_TOKEN and token.isascii() and token.isprintable()


class SyncTokens:
    """The latest ``upstash-sync-token`` seen by one client, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        token = headers.get("upstash-sync-token")
        if token and _echoable(token):
            with self._lock:
                self._token = token

    @property
    def current(self) -> str | None:
        with self._lock:
            return self._token


def is_write(command: Command) -> bool:
    """Whether a command may change data (unknown commands are assumed to)."""
    name = command[0]
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
    return text.upper() not in READ_COMMANDS


def repeatable(command: Command) -> bool:
    """Whether running ``command`` twice leaves the data as running it once does (reads,
    and the writes in ``REPEATABLE_WRITES``)."""
    name = _command_name(command)
    return name in READ_COMMANDS or name in REPEATABLE_WRITES


def _command_name(command: Command) -> str:
    name = command[0]
    return (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)).upper()


def _json_arg(arg: Arg) -> str | None:
    """The JSON-array form of an argument, or None when only the raw body can carry it."""
    if isinstance(arg, str):
        return arg
    if isinstance(arg, bytes):
        try:
            return arg.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(arg, bool):
        raise ValidationError("booleans are ambiguous as Redis arguments; pass 0/1 or a string")
    if isinstance(arg, int):
        return str(arg)
    if isinstance(arg, float):
        return repr(arg)
    raise ValidationError(f"unsupported argument type {type(arg).__name__}")


def _path_segment(arg: Arg, command: str) -> str:
    text = _json_arg(arg)
    if text is None:
        raise ValidationError(
            f"{command}: only one argument may be binary (non-UTF-8) bytes; encode the others"
        )
    return quote(text, safe="")


def _binary_at(command: Command) -> int:
    """Where the one binary argument of a command for the raw-body form is; refuses a
    command that form cannot carry."""
    binary = [i for i, a in enumerate(command) if isinstance(a, bytes) and _json_arg(a) is None]
    at = binary[0]
    if len(binary) > 1 or len(command[at + 1 :]) % 2:
        raise ValidationError(
            f"{_command_name(command)}: a binary value must be followed only by "
            "option/value pairs (EX 60)"
        )
    return at


def _raw_request(command: Command, headers: Mapping[str, str]) -> HttpRequest:
    """``POST /<cmd>/<args...>?<pairs>`` with the binary argument as the body."""
    name = _command_name(command)
    at = _binary_at(command)
    tail = list(command[at + 1 :])
    path = "/" + "/".join(_path_segment(a, name) for a in command[:at])
    if tail:
        pairs = [
            f"{_path_segment(tail[i], name)}={_path_segment(tail[i + 1], name)}"
            for i in range(0, len(tail), 2)
        ]
        path += "?" + "&".join(pairs)
    body = command[at]
    assert isinstance(body, bytes)
    return HttpRequest("POST", path, headers, _checked(body, "the value"))


def _survives(segment: str) -> bool:
    """Whether a path segment reaches the server as sent: ``.`` and ``..`` are removed by
    URL normalisation (httpx's, or a proxy's), an empty one merged away, and a ``/`` or
    ``\\`` (sent as ``%2F``, ``%5C``) splits it on a server that decodes before routing."""
    return segment not in ("", ".", "..") and "/" not in segment and "\\" not in segment


#: The form of a binary command whose path would not survive: EVAL with the binary
#: argument hex-encoded (JSON carries only text), decoded and run by the script. ARGV[1]
#: is the position of the hex argument among the rest, the command itself. The reply is
#: wrapped so that a status ("OK") and a nil come back as what they were, whatever a
#: server does with a script's status reply: ``{"status", s}``, ``{"nil"}`` or
#: ``{"value", reply}``; an error is returned as it is.
_BINARY_SCRIPT = (
    "local a = {} for i = 2, #ARGV do a[i - 1] = ARGV[i] end "
    "local at = tonumber(ARGV[1]) "
    "a[at] = (a[at]:gsub('%x%x', function(h) return string.char(tonumber(h, 16)) end)) "
    "local r = redis.pcall(unpack(a)) "
    "if type(r) == 'table' and r.err then return r end "
    "if type(r) == 'table' and r.ok then return {'status', r.ok} end "
    "if r == false then return {'nil'} end "
    "return {'value', r}"
)


def _unwrap(reply: Reply | CommandError) -> Reply | CommandError:
    """A script-form reply as the command itself would have answered."""
    if isinstance(reply, CommandError):
        return reply
    if isinstance(reply, list) and reply:
        kind = reply[0]
        if kind == b"status" and len(reply) == 2 and isinstance(reply[1], bytes | str):
            status = reply[1]
            return status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if kind == b"nil" and len(reply) == 1:
            return None
        if kind == b"value" and len(reply) == 2:
            return reply[1]
    raise ServerError("the server answered a binary command's script with an unexpected shape")


def _binary_form(command: Command) -> list[str] | None:
    """None when the raw-body path form carries ``command`` exactly; otherwise the same
    command as a script whose arguments are all text (one extra billed call)."""
    at = _binary_at(command)
    name = _command_name(command)
    if all(_survives(str(_json_arg(a))) for a in command[:at]):
        return None
    value = command[at]
    assert isinstance(value, bytes)
    texts = [str(_json_arg(a)) for a in command]
    texts[at] = value.hex()
    return ["EVAL_RO" if name in READ_COMMANDS else "EVAL", _BINARY_SCRIPT, "0", str(at + 1),
            *texts]  # fmt: skip


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json_body(args: Sequence[str]) -> bytes:
    return _ENCODER.encode(args).encode("utf-8")


def _array(bodies: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(bodies) + b"]"


#: Upstash refuses requests over 10 MB; a pipeline is split below that.
MAX_REQUEST_BYTES = 10 * 1024 * 1024


def _checked(body: bytes, what: str) -> bytes:
    if len(body) > MAX_REQUEST_BYTES:
        raise ValidationError(
            f"{what} is {len(body)} bytes, over Upstash's {MAX_REQUEST_BYTES}-byte request limit"
        )
    return body


def plan(
    commands: Sequence[Command],
    headers: Mapping[str, str],
    *,
    transaction: bool = False,
    max_request_bytes: int = MAX_REQUEST_BYTES,
) -> list[PlannedRequest]:
    """Split a batch into requests, preserving order.

    A transaction is one ``/multi-exec`` request (binary values cannot take part).
    Otherwise consecutive JSON-able commands share a ``/pipeline`` (or ``POST /`` when
    alone) and a command with a binary value goes on its own raw-body request. A
    pipeline that would pass Upstash's request size limit is split; a single command or
    transaction over it is refused before anything is sent.
    """
    if not commands:
        return []
    for command in commands:
        if not command:
            raise ValidationError("empty command")
    json_headers = {**headers, "Content-Type": "application/json"}
    if len(commands) == 1 and not transaction:
        # The common case (one command, text arguments) without the general machinery.
        args = [_json_arg(a) for a in commands[0]]
        if None not in args:
            body = _checked(_json_body(args), "the command")  # type: ignore[arg-type]
            request = HttpRequest("POST", "/", json_headers, body)
            return [PlannedRequest(request, (0,), "single")]
    # Each JSON-able command encoded once; a pipeline body is these joined in an array.
    encoded: list[bytes | None] = []
    scripted: set[int] = set()
    for position, command in enumerate(commands):
        args = [_json_arg(a) for a in command]
        texts = [a for a in args if a is not None]
        if len(texts) == len(args):
            encoded.append(_json_body(texts))
        elif transaction or (script := _binary_form(command)) is None:
            encoded.append(None)  # the raw-body path form (refused in a transaction)
        else:
            encoded.append(_json_body(script))
            scripted.add(position)
    if transaction:
        if any(e is None for e in encoded):
            raise ValidationError("binary (non-UTF-8) values cannot be sent in a transaction")
        body = _checked(_array([e for e in encoded if e is not None]), "the transaction")
        request = HttpRequest("POST", "/multi-exec", json_headers, body)
        return [PlannedRequest(request, tuple(range(len(commands))), "transaction")]
    planned: list[PlannedRequest] = []
    group: list[int] = []
    group_size = 2

    def close_group() -> None:
        nonlocal group_size
        if not group:
            return
        wrapped = frozenset(scripted.intersection(group))
        if len(group) == 1:
            body = _checked(encoded[group[0]] or b"", "the command")
            request = HttpRequest("POST", "/", json_headers, body)
            planned.append(PlannedRequest(request, (group[0],), "single", wrapped))
        else:
            body = _array([encoded[i] or b"" for i in group])
            request = HttpRequest("POST", "/pipeline", json_headers, body)
            planned.append(PlannedRequest(request, tuple(group), "pipeline", wrapped))
        group.clear()
        group_size = 2

    for position, piece in enumerate(encoded):
        if piece is None:
            close_group()
            raw_headers = {**headers, "Content-Type": "application/octet-stream"}
            request = _raw_request(commands[position], raw_headers)
            planned.append(PlannedRequest(request, (position,), "raw"))
        else:
            if group and group_size + len(piece) + 1 > max_request_bytes:
                close_group()
            group.append(position)
            group_size += len(piece) + 1
    close_group()
    return planned


class Redactor:
    """Takes the client's tokens out of text a server sent, before it becomes part of an
    exception: each token, as sent and percent-encoded, becomes what ``mask_token``
    shows (``****`` and at most its last four characters)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: dict[str, str] = {}
        for secret in secrets:
            if secret:
                forms[secret] = forms[quote(secret, safe="")] = mask_token(secret)
        # the longest first, so a token containing another is masked whole
        self._forms = sorted(forms.items(), key=lambda item: -len(item[0]))

    def __repr__(self) -> str:
        return f"Redactor({len(self._forms)} forms)"

    def __call__(self, text: object) -> str:
        clean = str(text)
        for form, mask in self._forms:
            if form in clean:
                clean = clean.replace(form, mask)
        return clean


_NOTHING = Redactor(())


def command_error(text: str, command: str | None = None) -> CommandError:
    """The most specific :class:`CommandError` for a server error text."""
    upper = text.upper()
    if upper.startswith("NOSCRIPT"):
        return NoScriptError(text, command=command)
    if upper.startswith("NOPERM"):
        return PermissionDenied(text, command=command)
    return CommandError(text, command=command)


def _is_quota(text: str) -> bool:
    lower = text.lower()
    return "limit exceeded" in lower and ("request" in lower or "max" in lower)


def _decode_value(value: object) -> Reply:
    """Undo ``Upstash-Encoding: base64``: strings are base64, ``"OK"`` is the raw status."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        if value == "OK":
            return "OK"
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raise ServerError("the server returned a result that is not base64") from None
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    if isinstance(value, float):
        return int(value) if value.is_integer() else repr(value).encode()
    raise ServerError(f"unexpected {type(value).__name__} in a REST result")


def _item(
    obj: object, command: Command, clean: Redactor, scripted: bool = False
) -> Reply | CommandError:
    if isinstance(obj, dict):
        if "error" in obj:
            return command_error(clean(obj["error"]), _command_name(command))
        if "result" in obj:
            reply = _decode_value(obj["result"])
            return _unwrap(reply) if scripted else reply
    raise ServerError("the server answered a shape that is not Upstash's JSON")


def _load(body: bytes) -> object:
    """The parsed body, or ``_NOT_JSON`` (also for nesting no Upstash answer has: a lying
    server must not crash the parser, nor a Pyodide isolate's stack)."""
    if json_too_deep(body, MAX_JSON_DEPTH + 2):  # the envelope adds two levels
        return _NOT_JSON
    try:
        return json.loads(body.decode("utf-8"))  # Upstash answers UTF-8; skip detection
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


_NOT_JSON = object()


def _status_error(status: int, data: object, body: bytes) -> CacheError:
    """Map a non-2xx answer that is not a plain command error."""
    text = ""
    if isinstance(data, dict):
        text = str(data.get("error") or data.get("message") or "")
    elif data is _NOT_JSON:
        text = body[:200].decode("utf-8", "replace")
    if _is_quota(text) or status == 429:
        return QuotaExceeded(f"Upstash refused the request: plan limit reached ({status})")
    if status in (401, 403):
        return AuthenticationFailed(
            f"Upstash refused the token (HTTP {status}); check UPSTASH_REDIS_REST_TOKEN"
        )
    if status >= 500:
        return ServerError(f"Upstash answered HTTP {status}", status=status)
    if status == 413:
        return CommandError("the request is larger than Upstash accepts (HTTP 413)")
    return ServerError(f"unexpected HTTP {status} from the REST endpoint", status=status)


def parse(
    planned: PlannedRequest,
    response: HttpResponse,
    commands: Sequence[Command],
    clean: Redactor = _NOTHING,
) -> list[Reply | CommandError]:
    """Turn one response into one reply (or error instance) per carried command.

    Raises a :class:`CacheUnavailable` subclass when the request as a whole failed,
    :class:`TransactionAborted` for a discarded transaction, and a :class:`CommandError`
    for a non-pipelined command error status. ``commands`` is the whole batch; the
    planned request says which of them it carried. ``clean`` redacts every error text
    the server sent before it goes into an exception.
    """
    data = _load(response.body)
    status = response.status
    command = _command_name(commands[planned.positions[0]]) if planned.kind != "pipeline" else None
    if status == 400 and isinstance(data, dict) and "error" in data:
        text = clean(data["error"])
        if _is_quota(text):
            raise _status_error(status, data, response.body)
        if planned.kind == "transaction":
            raise TransactionAborted(f"transaction discarded: {text}")
        if planned.kind == "pipeline":
            raise command_error(f"pipeline refused: {text}")
        return [command_error(text, command)]
    if not 200 <= status < 300:
        raise _status_error(status, data, response.body)
    if data is _NOT_JSON:
        raise ServerError("the REST endpoint answered a body that is not JSON", status=status)
    if planned.kind in ("pipeline", "transaction"):
        if isinstance(data, dict) and "error" in data:
            if planned.kind == "transaction":
                raise TransactionAborted(f"transaction discarded: {clean(data['error'])}")
            raise command_error(f"pipeline refused: {clean(data['error'])}")
        if not isinstance(data, list) or len(data) != len(planned.positions):
            raise ServerError("the pipeline answer does not match the commands sent")
        items = zip(data, planned.positions, strict=True)
        return [_item(obj, commands[at], clean, at in planned.scripted) for obj, at in items]
    at = planned.positions[0]
    return [_item(data, commands[at], clean, at in planned.scripted)]


class RestProtocol:
    """Per-client protocol state: the token's header, the latest sync token, and the
    tokens to keep out of error messages (``token`` and any in ``secrets``: a client
    passes every database it is configured with)."""

    def __init__(self, token: str, *, secrets: Iterable[str] = ()) -> None:
        self._auth = {"Authorization": f"Bearer {token}", "Upstash-Encoding": _BASE64}
        self.redact = Redactor([token, *secrets])
        self.sync = SyncTokens()
        self._cached: tuple[str | None, dict[str, str]] = (None, self._auth)

    def __repr__(self) -> str:
        return "RestProtocol(token=****)"

    def headers(self) -> dict[str, str]:
        """The headers for the next request (rebuilt only when the sync token changes)."""
        token = self.sync.current
        seen, headers = self._cached
        if token != seen:
            headers = {**self._auth, "Upstash-Sync-Token": token} if token else self._auth
            self._cached = (token, headers)
        return headers

    def plan(
        self, commands: Sequence[Command], *, transaction: bool = False
    ) -> list[PlannedRequest]:
        return plan(commands, self.headers(), transaction=transaction)

    def parse(
        self, planned: PlannedRequest, response: HttpResponse, commands: Sequence[Command]
    ) -> list[Reply | CommandError]:
        self.sync.observe(response.headers)
        return parse(planned, response, commands, self.redact)
