"""The exception tree. Every failure the toolkit raises is a ``CacheError``.

    CacheError
    ├── ConfigurationError        bad or missing settings (also: mode="redis")
    ├── ValidationError           refused before anything was sent
    │   ├── KeyTooLarge           key over 32 KB
    │   └── ValueTooLarge         encoded value over the configured maximum
    ├── DecodeError               stored bytes are corrupt, hostile or not ours
    ├── CommandError              the server ran the command and answered an error
    │   ├── NoScriptError         EVALSHA of an unknown script (NOSCRIPT)
    │   ├── PermissionDenied      read-only token used for a write (NOPERM)
    │   └── TransactionAborted    /multi-exec discarded as a whole
    └── CacheUnavailable          the backend could not answer (the fallback trigger)
        ├── ConnectionFailed      the request never reached the server (safe to retry)
        ├── CacheTimeout          no answer within the attempt timeout or the deadline
        ├── ServerError           5xx, or a body that is not Upstash's JSON
        │   └── ResponseTooLarge  an answer over max_response_size (never retried)
        ├── AuthenticationFailed  401/403: wrong or missing token
        ├── QuotaExceeded         Upstash's daily/monthly request limit
        ├── CircuitOpen           the breaker is open; nothing was sent
        └── OutcomeUnknown        a write that cannot be repeated may have run: no fallback

``CacheUnavailable`` means "Upstash did not serve this": best-effort layers fall back to
the request's local store, strict layers re-raise it. When a write was sent and no answer
says whether it ran (a timeout, a 5xx, a broken answer), the error's ``may_have_run`` is
True: a write that can be repeated (``set``, ``delete``, ``expire``) still falls back and
says ``WriteResult.degraded``; one that cannot (``increment``, ``publish``, a script, a
raw command) raises ``OutcomeUnknown`` instead, on every layer, with that error as its
``__cause__``, so a local stand-in never passes for the server's answer.
``CommandError`` means Upstash did serve it and said no; falling back would hide a bug,
so it is always raised.
Messages never contain a token.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "CacheError",
    "CacheTimeout",
    "CacheUnavailable",
    "CircuitOpen",
    "CommandError",
    "ConfigurationError",
    "ConnectionFailed",
    "DecodeError",
    "KeyTooLarge",
    "NoScriptError",
    "OutcomeUnknown",
    "PermissionDenied",
    "QuotaExceeded",
    "ResponseTooLarge",
    "ServerError",
    "TransactionAborted",
    "ValidationError",
    "ValueTooLarge",
]


class CacheError(Exception):
    """Root of every error raised by the toolkit."""


class ConfigurationError(CacheError):
    """The configuration is missing, contradictory or unsafe."""


class ValidationError(CacheError, ValueError):
    """An argument was refused before anything was sent."""


class KeyTooLarge(ValidationError):
    """A key is longer than Upstash accepts (32 KB)."""


class ValueTooLarge(ValidationError):
    """An encoded value is larger than the configured maximum."""


class DecodeError(CacheError, ValueError):
    """Stored bytes could not be decoded safely."""


class CommandError(CacheError):
    """The server executed the command and answered with an error."""

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.command = command


class NoScriptError(CommandError):
    """EVALSHA named a script the server does not have."""


class PermissionDenied(CommandError):
    """The token may not run this command (a read-only token and a write)."""


class TransactionAborted(CommandError):
    """A /multi-exec transaction was discarded as a whole; nothing ran."""


class CacheUnavailable(CacheError):
    """The backend could not serve the request (network, timeout, 5xx, auth, quota).

    ``may_have_run`` is True when a write was sent and this error leaves open whether the
    server ran it (set by the executor; False when it surely did not).
    """

    may_have_run: bool = False


class ConnectionFailed(CacheUnavailable):
    """The request never reached the server; retrying any command is safe."""


class CacheTimeout(CacheUnavailable, TimeoutError):
    """No answer within the attempt timeout or the overall deadline."""


class ServerError(CacheUnavailable):
    """The server answered 5xx, or with a body that is not Upstash's JSON."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ResponseTooLarge(ServerError):
    """The server's answer grew past ``max_response_size``; reading stopped there so a
    broken or hostile server cannot exhaust the function's memory."""

    def __init__(self, message: str, *, status: int | None = None, limit: int) -> None:
        super().__init__(message, status=status)
        self.limit = limit


class AuthenticationFailed(CacheUnavailable):
    """The server refused the token (401/403)."""


class QuotaExceeded(CacheUnavailable):
    """Upstash refused the request because a plan limit was reached."""


class CircuitOpen(CacheUnavailable):
    """The circuit breaker is open: the backend is presumed down, nothing was sent."""


class OutcomeUnknown(CacheUnavailable):
    """A write that cannot be repeated safely (``increment``, ``publish``, a script, a raw
    command) may have run on the server, which never said so. Nothing local stands in for
    it; its ``__cause__`` is the error the write met. Read the value back (or make the
    write idempotent) before trying again."""

    may_have_run = True
