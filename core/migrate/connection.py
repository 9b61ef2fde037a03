"""A traditional Redis over TCP: the store behind ``RedisCache`` and a migration's source.

redis-py does the talking; this module decides how:

- a URL is ``redis://`` or ``rediss://`` (TLS). Plain TCP is refused to anything but
  loopback unless the caller says ``allow_insecure=True``: the password and every value
  would cross the network in clear.
- what we print never holds the password (:func:`display_url`).
- replies come back raw, as RESP2 gives them: ``bytes`` for strings (binary-safe), ``int``,
  ``None`` and lists, the same ``Reply`` shapes the REST side produces. redis-py's reply
  callbacks (``SET`` -> ``True``, ``ZSCAN`` scores -> ``float``) are switched off, so a
  score keeps its exact text.
- redis-py's own retries are off: a write that may have reached the server is never sent
  twice (the cache's rule for Upstash too).
- failures become the :mod:`continuum.errors` tree, naming the server by its display URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from continuum.config import is_loopback
from continuum.errors import (
    AuthenticationFailed,
    CacheTimeout,
    CacheUnavailable,
    CommandError,
    ConfigurationError,
    NoScriptError,
    PermissionDenied,
    TransactionAborted,
)

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - exercised in a subprocess without redis-py
    raise ImportError(
        "RedisCache and `continuum migrate` need redis-py: pip install 'continuum-cache[redis]'"
    ) from None

__all__ = ["DEFAULT_URL", "RedisConnection", "check_url", "display_url"]

#: Where ``RedisCache()`` looks without a URL or ``REDIS_URL``: redis-py's own default.
DEFAULT_URL = "redis://localhost:6379/0"

Command = Sequence[str | bytes | int | float]
Reply = Any  # None | int | bytes | list[Reply]; CommandError instances in pipelines


def display_url(url: str) -> str:
    """The URL with any password replaced by ``****``: safe to print and to log."""
    parts = urlsplit(url)
    if parts.password is None and not parts.username:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:****@{host}" if parts.password is not None else f"{user}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_url(url: str, *, allow_insecure: bool = False) -> str:
    """``url`` if it names a Redis we may talk to, else a :class:`ConfigurationError`."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("the Redis URL is empty; expected redis://host:port/db")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            f"{display_url(url)!r} is not a valid Redis URL (bad port?); "
            "expected redis://[:password@]host:port/db"
        ) from None
    if parts.scheme not in {"redis", "rediss"}:
        hint = (
            " (that is an Upstash REST URL: it goes in UPSTASH_REDIS_REST_URL)"
            if parts.scheme in {"http", "https"}
            else ""
        )
        raise ConfigurationError(
            f"{parts.scheme or 'no'}:// is not a Redis URL{hint}; "
            "expected redis://host:port/db or rediss:// for TLS"
        )
    if not parts.hostname:
        raise ConfigurationError(f"{display_url(url)!r} names no host")
    if port == 0:
        raise ConfigurationError(f"{display_url(url)!r}: port 0 is not a port")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ConfigurationError(f"{display_url(url)!r}: the database must be a number, not {db!r}")
    if parts.scheme == "redis" and not is_loopback(parts.hostname) and not allow_insecure:
        raise ConfigurationError(
            f"{display_url(url)} is plain TCP to another machine: the password and every value "
            "would travel unencrypted. Use rediss:// (TLS), or allow it explicitly "
            "(allow_insecure=True, or --allow-insecure on the command line) for a private network."
        )
    return url


class RedisConnection:
    """A pooled redis-py client returning raw replies, and batch execution on it."""

    def __init__(
        self, url: str, *, timeout: float = 2.0, allow_insecure: bool = False, name: str = "Redis"
    ) -> None:
        self.url = check_url(url, allow_insecure=allow_insecure)
        self.display = display_url(self.url)
        self.name = name
        client = redis.Redis.from_url(
            self.url,
            protocol=2,  # RESP2: the reply shapes every other store in the toolkit uses
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        client.response_callbacks.clear()  # raw replies (this client's own copy)
        self.client = client

    def __repr__(self) -> str:
        return f"RedisConnection({self.display!r})"

    def execute(self, commands: Sequence[Command], *, transaction: bool = False) -> list[Reply]:
        """One reply per command, a :class:`CommandError` instance in a failed item's slot.

        Raises :class:`CacheUnavailable` (a subclass) when the server could not be asked,
        :class:`TransactionAborted` when a transaction was refused whole.
        """
        if not commands:
            return []
        try:
            with self.client.pipeline(transaction=transaction) as pipe:
                for command in commands:
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
                replies = pipe.execute(raise_on_error=False)
        except redis.exceptions.ResponseError as exc:  # only a transaction refused whole
            raise TransactionAborted(f"transaction discarded: {exc}") from None
        except redis.exceptions.AuthenticationError:
            raise AuthenticationFailed(
                f"{self.name} at {self.display} refused the credentials in its URL"
            ) from None
        except redis.exceptions.TimeoutError:
            raise CacheTimeout(f"{self.name} at {self.display} did not answer in time") from None
        except redis.exceptions.RedisError as exc:
            raise CacheUnavailable(
                f"{self.name} at {self.display} is unreachable: {_reason(exc)}"
            ) from None
        return [_reply(reply, command) for reply, command in zip(replies, commands, strict=True)]

    def close(self) -> None:
        self.client.close()


def _reply(reply: Reply, command: Command) -> Reply:
    if not isinstance(reply, redis.exceptions.ResponseError):
        return reply
    name = _name(command)
    text = str(reply)
    # redis-py strips the codes it maps to a class ("ERR", "NOSCRIPT"...) and keeps them
    # in ``status_code`` (redis-py 8): put them back, so the text is what Redis, Upstash
    # and UpstashCache say ("ERR value is not an integer or out of range").
    code = getattr(reply, "status_code", None)
    if isinstance(code, str) and code and not text.startswith(code):
        text = f"{code} {text}"
    if isinstance(reply, redis.exceptions.NoScriptError):
        return NoScriptError(text, command=name)
    if isinstance(reply, redis.exceptions.NoPermissionError):
        return PermissionDenied(text, command=name)
    return CommandError(text, command=name)


def _name(command: Command) -> str:
    first = command[0]
    return (first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)).upper()


def _reason(exc: BaseException) -> str:
    """redis-py's message for a connection failure, on one line (it names host and port,
    never the password)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
