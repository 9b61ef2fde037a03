"""Configuration: where the cache lives and how patiently we talk to it.

``UpstashConfig`` is built from arguments, from the environment, or from a JSON file.
The toolkit speaks only the Upstash REST API, so a Redis-protocol request (``mode="redis"``
or only ``UPSTASH_REDIS_URL`` set) is refused with an error that says what to set
instead. Tokens never appear in full: ``repr`` and every message show ``****`` plus the
last four characters at most.

    config = UpstashConfig.from_env()          # UPSTASH_REDIS_REST_URL / _TOKEN, ...
    config = UpstashConfig(rest_url="https://eu1-x.upstash.io", rest_token="...")
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from continuum.errors import ConfigurationError
from continuum.numbers import parse_decimal, parse_seconds
from continuum.record import Record

__all__ = [
    "DATABASE_NAMES",
    "CacheBackend",
    "ConnectionMode",
    "Database",
    "LocalModeWarning",
    "UpstashConfig",
    "is_loopback",
    "mask_token",
    "parse_mode",
]

#: Named databases a layer can route to; unset ones fall back to ``primary``.
DATABASE_NAMES = ("primary", "sessions", "federation")

_REST_VARS = "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class ConnectionMode(StrEnum):
    """How the cache reaches its data: ``rest`` (Upstash), ``local`` (memory) or ``auto``."""

    AUTO = "auto"
    REST = "rest"
    LOCAL = "local"


class CacheBackend(StrEnum):
    """Which store served the last decision: Upstash over REST, or the local store."""

    UPSTASH = "upstash"
    LOCAL = "local"


class LocalModeWarning(UserWarning):
    """Auto mode found no Upstash settings and runs on an in-memory store."""


def mask_token(token: str | None) -> str:
    """``****`` plus the last four characters, and only when the token is long enough."""
    if not token:
        return "<none>"
    return "****" + token[-4:] if len(token) >= 16 else "****"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine by its very name: ``localhost`` (a trailing dot
    allowed) or a loopback address. Other names are never resolved to decide: DNS can
    answer 127.0.0.1 today and an attacker's address tomorrow."""
    host = host.strip("[]").lower()
    if host.rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str) -> str:
    """Refuse anything but https (plain http only on loopback, for the emulator)."""
    parts = urlsplit(url.strip())
    if parts.scheme in {"redis", "rediss"}:
        raise ConfigurationError(
            f"{what} is a Redis-protocol URL ({parts.scheme}://); Continuum speaks only the "
            f"Upstash REST API. Set {_REST_VARS} (from the 'REST API' section of the "
            "Upstash console) instead."
        )
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError(f"{what} must be an https:// URL, got {parts.scheme or '?'}://")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{what} uses plain http:// to {parts.hostname}; tokens must travel over TLS. "
            "Use https:// (http:// is accepted only for loopback hosts such as the emulator)."
        )
    if parts.username or parts.password:
        raise ConfigurationError(f"{what} must not carry credentials; pass the token separately")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{what} must not carry a query string or fragment")
    return url.strip().rstrip("/")


def _check_token(token: str, what: str) -> str:
    """A token as HTTP can carry it: surrounding whitespace (a pasted newline) is dropped;
    anything else outside printable ASCII is refused, naming no character of it."""
    token = str(token).strip()
    if not token or any(not 0x21 <= ord(c) <= 0x7E for c in token):
        raise ConfigurationError(
            f"{what} holds characters no Upstash token has (spaces, control characters or "
            "non-ASCII); copy it again from the Upstash console"
        )
    return token


class Database(Record):
    """One Upstash database: its REST URL and token (never shown in full). Frozen (see
    :mod:`continuum.record`)."""

    __slots__ = ("_breaker_key", "name", "token", "url")
    __match_args__ = ("name", "url", "token")
    name: str
    url: str
    token: str
    _breaker_key: str | None

    def __init__(self, name: str, url: str, token: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "_breaker_key", None)

    def __repr__(self) -> str:
        return f"Database(name={self.name!r}, url={self.url!r}, token={mask_token(self.token)!r})"

    @property
    def breaker_key(self) -> str:
        """Whose health a circuit breaker tracks: this URL *with this token*, so a client
        holding a wrong token (401 after 401) cannot open the circuit for the correct
        clients of the same database. Only a digest of the token is kept."""
        key: str | None = self._breaker_key
        if key is None:
            digest = hashlib.sha256(self.token.encode("utf-8", "surrogatepass")).hexdigest()
            key = f"{self.url}#{digest[:16]}"
            object.__setattr__(self, "_breaker_key", key)
        return key


def parse_mode(value: str | ConnectionMode) -> ConnectionMode:
    """A mode from its name; the Redis protocol is refused with an explanation."""
    text = str(value).strip().lower()
    if text in {"redis", "tcp", "traditional"}:
        raise ConfigurationError(
            f"mode={text!r} asks for the Redis protocol, but Continuum is REST-only by design "
            "(serverless functions cannot keep sockets). Use mode='rest' with "
            f"{_REST_VARS}, or mode='local' for an in-memory store."
        )
    if text == "upstash":
        return ConnectionMode.REST
    try:
        return ConnectionMode(text)
    except ValueError:
        raise ConfigurationError(
            f"unknown cache mode {text!r}; expected one of auto, rest, local"
        ) from None


def _parse_size(value: str, what: str) -> int:
    number = parse_decimal(value)
    if number is None or not 0 < number <= 2**40:
        raise ConfigurationError(f"{what} must be a number of bytes, got {value[:40]!r}")
    return number


#: The timing settings read from the environment: variable, field, parser.
_TIMING_VARS: tuple[tuple[str, str, Callable[[str], float | None]], ...] = (
    ("CONTINUUM_CONNECT_TIMEOUT", "connect_timeout", parse_seconds),
    ("CONTINUUM_ATTEMPT_TIMEOUT", "timeout", parse_seconds),
    ("CONTINUUM_BUDGET", "budget", parse_seconds),
    ("CONTINUUM_MAX_RETRIES", "max_retries", parse_decimal),
    ("CONTINUUM_FAILURE_THRESHOLD", "failure_threshold", parse_decimal),
    ("CONTINUUM_PROBE_INTERVAL", "probe_interval", parse_seconds),
)


def _timing_values(env: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for variable, name, parse in _TIMING_VARS:
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        number = parse(raw)
        if number is None:
            what = "a number of seconds" if parse is parse_seconds else "a whole number"
            raise ConfigurationError(f"{variable} must be {what}, got {raw[:40]!r}")
        values[name] = number
    return values


def _parse_bool(value: str, what: str) -> bool:
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{what} must be true or false, got {value!r}")


#: The largest answer read by default: well above any sane reply (Upstash's request limit
#: is 10 MB and values are capped at 1 MB by default), far below a function's memory.
DEFAULT_MAX_RESPONSE_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True, repr=False)  # its own __repr__ masks the token
class UpstashConfig:
    """Everything the client needs; immutable once built.

    ``databases`` holds the named databases that were configured (``primary`` first);
    :meth:`database` resolves a name, falling back to ``primary``.
    """

    rest_url: str | None = None
    rest_token: str | None = field(default=None, repr=False)
    mode: ConnectionMode | str = ConnectionMode.AUTO
    fallback: bool = True
    databases: Mapping[str, Database] = field(default_factory=dict)
    # The timing defaults are chosen together so that an outage costs a request at most
    # about a second (README, "Configuration"): a call gives up after ``budget``, one
    # attempt after ``timeout``, a connect after ``connect_timeout``.
    #: Seconds one HTTP attempt may take, from connecting to the last byte of the answer.
    timeout: float = 0.5
    #: Seconds a whole call may take (retries included) when no request scope sets a deadline.
    budget: float = 1.0
    max_retries: int = 2
    backoff_base: float = 0.05
    backoff_cap: float = 1.0
    max_value_size: int = 1024 * 1024
    #: Bytes of one HTTP answer read at most; a larger one raises ``ResponseTooLarge``.
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE
    compress_threshold: int | None = 1024
    use_msgpack: bool = False
    #: Consecutive failed calls that open a database's circuit.
    failure_threshold: int = 2
    #: Seconds an open circuit waits before one call probes the database again.
    probe_interval: float = 10.0
    #: Seconds to open a connection (TCP and TLS), within the attempt's ``timeout``.
    connect_timeout: float = 0.25

    def __post_init__(self) -> None:
        mode = parse_mode(self.mode)
        object.__setattr__(self, "mode", mode)
        for name in ("timeout", "budget", "connect_timeout"):
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        if self.failure_threshold < 1:
            raise ConfigurationError("failure_threshold must be at least 1")
        if not 0 <= self.probe_interval < math.inf:
            raise ConfigurationError("probe_interval must be a number of seconds >= 0")
        if self.max_value_size <= 0:
            raise ConfigurationError("max_value_size must be positive")
        if self.max_response_size < self.max_value_size:
            raise ConfigurationError(
                "max_response_size must be at least max_value_size, or reading back a "
                "value the client may write would fail"
            )
        databases = dict(self.databases)
        if self.rest_url or self.rest_token:
            if not (self.rest_url and self.rest_token):
                missing = "token" if self.rest_url else "URL"
                raise ConfigurationError(
                    f"the Upstash REST {missing} is missing; set both {_REST_VARS}"
                )
            databases["primary"] = Database("primary", self.rest_url, self.rest_token)
        for name, db in databases.items():
            databases[name] = Database(
                db.name,
                _check_url(db.url, f"the REST URL of database {name!r}"),
                _check_token(db.token, f"the REST token of database {name!r}"),
            )
        if databases and "primary" not in databases:
            raise ConfigurationError("named databases need a primary database too")
        if "primary" in databases:
            object.__setattr__(self, "rest_url", databases["primary"].url)
            object.__setattr__(self, "rest_token", databases["primary"].token)
        object.__setattr__(self, "databases", databases)
        if mode is ConnectionMode.REST and "primary" not in databases:
            raise ConfigurationError(
                f"mode='rest' needs the Upstash REST endpoint: set {_REST_VARS}"
            )

    def __repr__(self) -> str:
        dbs = ", ".join(repr(db) for db in self.databases.values())
        return (
            f"UpstashConfig(mode={str(self.mode)!r}, fallback={self.fallback}, "
            f"databases=[{dbs}], timeout={self.timeout}, budget={self.budget}, "
            f"use_msgpack={self.use_msgpack})"
        )

    @property
    def resolved_mode(self) -> ConnectionMode:
        """``rest`` or ``local``: what auto mode chose."""
        if self.mode is ConnectionMode.AUTO:
            return ConnectionMode.REST if "primary" in self.databases else ConnectionMode.LOCAL
        return ConnectionMode(self.mode)

    def database(self, name: str = "primary") -> Database:
        """The named database, or the primary one when that name was not configured."""
        if name not in DATABASE_NAMES:
            raise ConfigurationError(
                f"unknown database {name!r}; expected one of {', '.join(DATABASE_NAMES)}"
            )
        db = self.databases.get(name) or self.databases.get("primary")
        if db is None:
            raise ConfigurationError(f"no Upstash database configured; set {_REST_VARS}")
        return db

    def with_options(self, **changes: object) -> UpstashConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> UpstashConfig:
        """Build from ``UPSTASH_*``/``CONTINUUM_*`` variables; keyword overrides win.

        ``CONTINUUM_CONFIG`` may name a JSON file read first (see :meth:`from_file`).
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("CONTINUUM_CONFIG"):
            values.update(_file_values(Path(env["CONTINUUM_CONFIG"]), env))
        if env.get("CONTINUUM_CACHE_MODE"):
            values["mode"] = env["CONTINUUM_CACHE_MODE"]
        if env.get("CONTINUUM_CACHE_FALLBACK"):
            values["fallback"] = _parse_bool(
                env["CONTINUUM_CACHE_FALLBACK"], "CONTINUUM_CACHE_FALLBACK"
            )
        if env.get("CONTINUUM_MAX_RESPONSE_SIZE"):
            values["max_response_size"] = _parse_size(
                env["CONTINUUM_MAX_RESPONSE_SIZE"], "CONTINUUM_MAX_RESPONSE_SIZE"
            )
        values.update(_timing_values(env))
        url, token = env.get("UPSTASH_REDIS_REST_URL"), env.get("UPSTASH_REDIS_REST_TOKEN")
        if url or token:
            values["rest_url"], values["rest_token"] = url, token
        databases = dict(values.pop("databases", {}))  # type: ignore[call-overload]
        for name in DATABASE_NAMES[1:]:
            prefix = f"UPSTASH_{name.upper()}_REST_"
            db_url, db_token = env.get(prefix + "URL"), env.get(prefix + "TOKEN")
            if db_url or db_token:
                if not (db_url and db_token):
                    raise ConfigurationError(f"set both {prefix}URL and {prefix}TOKEN")
                databases[name] = Database(name, db_url, db_token)
        if databases:
            values["databases"] = databases
        values.update({k: v for k, v in overrides.items() if v is not None})
        redis_url = env.get("UPSTASH_REDIS_URL")
        has_rest = values.get("rest_url") or "primary" in databases
        local = parse_mode(str(values.get("mode") or "auto")) is ConnectionMode.LOCAL
        if redis_url and not has_rest and not local:  # asking for local mode is explicit
            raise ConfigurationError(
                "only UPSTASH_REDIS_URL (a Redis-protocol URL) is set, but Continuum speaks "
                f"only the Upstash REST API: set {_REST_VARS} instead (Upstash console, "
                "'REST API' section)."
            )
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: str | Path, **overrides: object) -> UpstashConfig:
        """Build from a JSON file.

        Keys are the field names; ``databases`` maps a name to ``{"url", "token"}`` or
        ``{"url", "token_env"}`` (the name of a variable holding the token, so the file
        itself holds no secret).
        """
        values = _file_values(Path(path), os.environ)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def warn_if_local(self) -> None:
        """Auto mode without settings: say so once, clearly, when the cache is created."""
        if self.mode is ConnectionMode.AUTO and self.resolved_mode is ConnectionMode.LOCAL:
            warnings.warn(
                f"Upstash is not configured ({_REST_VARS} are unset): using an in-memory "
                "cache local to this process. Set mode='local' to silence this warning.",
                LocalModeWarning,
                stacklevel=4,  # the line that created the cache
            )


_FILE_FIELDS = {
    "rest_url", "rest_token", "mode", "fallback", "timeout", "budget", "max_retries",
    "backoff_base", "backoff_cap", "max_value_size", "max_response_size",
    "compress_threshold", "use_msgpack", "failure_threshold", "probe_interval",
    "connect_timeout",
}  # fmt: skip


def _file_values(path: Path, env: Mapping[str, str]) -> dict[str, object]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"config file {path} must hold a JSON object")
    unknown = set(raw) - _FILE_FIELDS - {"databases"}
    if unknown:
        raise ConfigurationError(f"config file {path}: unknown keys {sorted(unknown)}")
    values: dict[str, object] = {k: v for k, v in raw.items() if k in _FILE_FIELDS}
    databases: dict[str, Database] = {}
    for name, spec in (raw.get("databases") or {}).items():
        if not isinstance(spec, dict) or "url" not in spec:
            raise ConfigurationError(f"config file {path}: database {name!r} needs a url")
        token = spec.get("token") or env.get(str(spec.get("token_env", "")), "")
        if not token:
            raise ConfigurationError(
                f"config file {path}: database {name!r} needs a token or token_env"
            )
        databases[name] = Database(name, str(spec["url"]), str(token))
    if databases:
        values["databases"] = databases
    return values
