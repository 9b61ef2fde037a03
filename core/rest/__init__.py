"""The REST wire: what turns a batch of commands into HTTP round trips to Upstash.

``executor`` (deadline, safe retries, the circuit breaker, metering) plans each batch with
``protocol`` (sans-I/O: commands to requests, responses to replies) and sends it over a
``transport`` (httpx here; the Workers fetch API in ``continuum.platforms.cloudflare``).
``breaker`` is the per-database circuit breaker, the only process-wide state besides the
rate limiter's blocked cache.
"""

from continuum.rest.breaker import CircuitBreaker, CircuitState, breaker_for, reset_breakers
from continuum.rest.executor import AsyncRestExecutor, RestExecutor, RetryPolicy
from continuum.rest.protocol import (
    Arg,
    Command,
    HttpRequest,
    HttpResponse,
    PlannedRequest,
    Redactor,
    Reply,
    RestProtocol,
    Script,
    repeatable,
)
from continuum.rest.transport import (
    AsyncHttpxTransport,
    AsyncTransport,
    HttpxTransport,
    ResponseCap,
    Transport,
)

__all__ = [
    "Arg",
    "AsyncHttpxTransport",
    "AsyncRestExecutor",
    "AsyncTransport",
    "CircuitBreaker",
    "CircuitState",
    "Command",
    "HttpRequest",
    "HttpResponse",
    "HttpxTransport",
    "PlannedRequest",
    "Redactor",
    "Reply",
    "ResponseCap",
    "RestExecutor",
    "RestProtocol",
    "RetryPolicy",
    "Script",
    "Transport",
    "breaker_for",
    "repeatable",
    "reset_breakers",
]
