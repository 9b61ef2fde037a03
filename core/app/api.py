"""The reference API: authentication, per-key rate limits, request scopes, headers, logs.

``Api.handle(request)`` (sync, over ``UpstashCache``) and ``await Api.handle_async(request)``
(async, over ``AsyncUpstashCache``) run the same route generators from
``core/app/routes.py``. Every request runs inside its own request scope with the
platform's deadline, so its fallback store, read memo and meter live exactly as long as
the request; the meter becomes the ``Server-Timing`` header and the log line.

Nothing here raises into a platform: every failure is a JSON error with a stable code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from continuum.app.http import ApiError, Request, Response
from continuum.app.observe import RequestRecord, emit, stdout_sink
from continuum.app.routes import Op, Route, RouteGen, match
from continuum.errors import CacheError
from continuum.gate import Failed
from continuum.numbers import parse_decimal, parse_seconds
from continuum.ratelimit import API_KEY_PREFIX, DEFAULT_PREFIX, AsyncRateLimiter, RateLimiter
from continuum.sansio import arun, resume, run, twin

__all__ = ["Api", "ApiSettings"]

_TRUE = {"1", "true", "yes", "on"}


class ApiSettings:
    """What the API reads from the environment; immutable, and ``repr`` never shows the keys.

    A slotted class rather than a frozen dataclass: it is built at import on every
    platform's cold-start path, where each dataclass costs about a millisecond.
    """

    __slots__ = ("api_keys", "emf", "max_body", "rate_limit", "rate_window", "timeout")

    api_keys: tuple[str, ...]
    rate_limit: int  # requests per key per window, on every /v1 call
    rate_window: int  # seconds
    max_body: int  # bytes; larger bodies get 413 before any work
    timeout: float  # seconds a request may wait for the cache (less if the platform says so)
    emf: bool  # CloudWatch Embedded Metric Format in the log line

    def __init__(
        self,
        api_keys: tuple[str, ...] = (),
        rate_limit: int = 100,
        rate_window: int = 60,
        max_body: int = 1024 * 1024,
        timeout: float = 1.0,
        emf: bool = False,
    ) -> None:
        for name, value in (
            ("api_keys", tuple(api_keys)),
            ("rate_limit", rate_limit),
            ("rate_window", rate_window),
            ("max_body", max_body),
            ("timeout", timeout),
            ("emf", emf),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ApiSettings is immutable; use replace({name}=...)")

    def __repr__(self) -> str:
        return (
            f"ApiSettings(api_keys=<{len(self.api_keys)} keys>, rate_limit={self.rate_limit}, "
            f"rate_window={self.rate_window}, max_body={self.max_body}, "
            f"timeout={self.timeout}, emf={self.emf})"
        )

    def replace(self, **changes: Any) -> ApiSettings:
        """A copy with ``changes`` applied (the dev server adds its printed key this way)."""
        current = {name: getattr(self, name) for name in self.__slots__}
        return ApiSettings(**{**current, **changes})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        """``CONTINUUM_API_KEYS`` (comma-separated), ``CONTINUUM_RATE_LIMIT``,
        ``CONTINUUM_RATE_WINDOW``, ``CONTINUUM_MAX_BODY``, ``CONTINUUM_TIMEOUT``,
        ``CONTINUUM_EMF``."""
        env = os.environ if env is None else env
        keys = tuple(k.strip() for k in env.get("CONTINUUM_API_KEYS", "").split(",") if k.strip())
        default = _DEFAULT_SETTINGS
        return cls(
            api_keys=keys,
            rate_limit=_positive_int(env, "CONTINUUM_RATE_LIMIT", default.rate_limit),
            rate_window=_positive_int(env, "CONTINUUM_RATE_WINDOW", default.rate_window),
            max_body=_positive_int(env, "CONTINUUM_MAX_BODY", default.max_body),
            timeout=_positive_seconds(env, "CONTINUUM_TIMEOUT", default.timeout),
            emf=env.get("CONTINUUM_EMF", "").strip().lower() in _TRUE,
        )


_DEFAULT_SETTINGS = ApiSettings()


class Api:
    """The reference API over one cache (sync, async, or both).

    Pass clients built by the platform (Cloudflare passes an ``AsyncUpstashCache`` on
    its fetch transport), or none: ``UpstashCache()`` / ``AsyncUpstashCache()`` are then
    built from the environment on first use and kept for the container's life.
    """

    def __init__(
        self,
        settings: ApiSettings | None = None,
        *,
        cache: Any = None,
        async_cache: Any = None,
        sink: Callable[[str], None] = stdout_sink,
    ) -> None:
        self.settings = settings or ApiSettings.from_env()
        self._cache = cache
        self._async_cache = async_cache
        self._limiters: dict[str, Any] = {}
        self._sink = sink
        self._keys = [k.encode() for k in self.settings.api_keys]

    # -- clients ------------------------------------------------------------------------
    @property
    def cache(self) -> Any:
        if self._cache is None:
            from continuum.cache import UpstashCache

            self._cache = UpstashCache()
        return self._cache

    @property
    def async_cache(self) -> Any:
        if self._async_cache is None:
            from continuum.cache import AsyncUpstashCache

            self._async_cache = AsyncUpstashCache()
        return self._async_cache

    def _limiter(self, flavour: str, purpose: str) -> Any:
        """Limiters for API keys and for ``/v1/ratelimit``, in separate key spaces."""
        name = f"{flavour}:{purpose}"
        if name not in self._limiters:
            prefix = API_KEY_PREFIX if purpose == "api" else DEFAULT_PREFIX
            if flavour == "sync":
                self._limiters[name] = RateLimiter(self.cache, prefix=prefix)
            else:
                self._limiters[name] = AsyncRateLimiter(self.async_cache, prefix=prefix)
        return self._limiters[name]

    def _known_cache(self) -> Any:
        """The client already in use (to report its backend), else the sync one from the env."""
        if self._async_cache is not None:
            return self._async_cache
        try:
            return self.cache
        except CacheError:
            return None

    def _target(self, flavour: str, op: Op) -> Any:
        cache = self.cache if flavour == "sync" else self.async_cache
        if op.target == "cache":
            return cache
        if op.target == "layer":
            return cache.layer(op.layer)
        return self._limiter(flavour, "api" if op.target == "api_limiter" else "user")

    def _resolve(self, flavour: str, op: Op) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(self._target(flavour, op), op.method)
        return method

    # -- entry points -------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer ``request`` with the sync cache; never raises."""
        return run(self._answer(request, "sync"), partial(self._perform, "sync"))

    async def handle_async(self, request: Request) -> Response:
        """Answer ``request`` with the async cache; never raises."""
        return await arun(self._answer(request, "async"), partial(self._perform, "async"))

    def _answer(self, request: Request, flavour: str) -> RouteGen:
        """The whole answer, written once: each ``Op`` it yields is a cache or limiter call
        that ``handle`` makes and ``handle_async`` awaits (see :mod:`continuum.sansio`)."""
        started = time.perf_counter()
        prepared = self._prepare(request)
        if isinstance(prepared, Response):
            return self._finish(request, "unmatched", prepared, started, None, self._known_cache())
        route, remaining = prepared
        try:
            cache = self.cache if flavour == "sync" else self.async_cache
        except CacheError as exc:
            return self._finish(request, route.template, _not_configured(exc), started, None, None)
        # The scope context is the same object for ``with`` and ``async with``.
        with cache.request(deadline=remaining) as scope:
            meter = scope.meter
            response = yield from self._guard(request, route)
            return self._finish(request, route.template, response, started, meter, cache)

    def _perform(self, flavour: str, op: Op) -> Any:
        args = op.args
        if op.method == "_limit_joined":  # the route's first call rides along as a plan
            identity, first = args
            args = (identity, self._plan(flavour, first))
        return self._resolve(flavour, op)(*args, **op.kwargs)

    def _plan(self, flavour: str, op: Op) -> Any:
        """The plan a cache or layer method would run for ``op`` (not run)."""
        target = self._target(flavour, op)
        for klass in type(target).__mro__:
            member = vars(klass).get(op.method)
            if isinstance(member, twin):
                return member.build(target, *op.args, **op.kwargs)
        raise TypeError(f"{type(target).__name__}.{op.method} is not a plan-building method")

    def error_response(self, error: ApiError, request: Request | None = None) -> Response:
        """For adapters that fail before a ``Request`` exists (e.g. a bad raw path)."""
        started = time.perf_counter()
        stub = request or Request(method="-", path="/")
        cache = self._known_cache()
        return self._finish(stub, "unmatched", error.to_response(), started, None, cache)

    # -- the pieces ---------------------------------------------------------------------
    def _prepare(self, request: Request) -> tuple[Route, float] | Response:
        """Size, authentication and routing: everything decided without any I/O."""
        authenticated = False
        try:
            if len(request.body) > self.settings.max_body:
                raise ApiError(
                    "payload_too_large",
                    f"the body is larger than {self.settings.max_body} bytes",
                )
            authenticated = request.path == "/v1" or request.path.startswith("/v1/")
            if authenticated:
                self._authenticate(request)
            route = match(request)
        except ApiError as error:
            if not authenticated or error.code == "unauthorized":
                return error.to_response()
            # A key that passed authentication is counted even when its request goes
            # nowhere: otherwise unknown routes and bad paths would be free to hammer,
            # and the refusal would lack the RateLimit-* headers every /v1 answer has.
            route = Route("unmatched", True, _refuse(error))
        # One deadline for everything the request sends (the key's limit check and the
        # route's calls draw on it alike): the configured share, or less when the
        # platform has less time left.
        remaining = self.settings.timeout
        if request.remaining is not None:
            remaining = min(remaining, request.remaining)
        return route, max(0.0, remaining)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="continuum"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                "unauthorized", "send 'Authorization: Bearer <API key>'", headers=challenge
            )
        if not self._keys:
            raise ApiError(
                "unauthorized",
                "no API keys are configured: set CONTINUUM_API_KEYS",
                headers=challenge,
            )
        given = token.strip().encode()
        matched = False
        for key in self._keys:  # compare against every key: timing says nothing about which
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise ApiError("unauthorized", "the API key is not valid", headers=challenge)

    def _guard(self, request: Request, route: Route) -> RouteGen:
        """Rate limit per API key, run the route, and map any failure to an ``ApiError``."""
        limit_headers: dict[str, str] = {}
        try:
            if route.authenticated:
                response = yield from self._limited(request, route.run, limit_headers)
            else:
                response = yield from route.run
        except ApiError as error:
            error.headers = {**limit_headers, **error.headers}
            return error.to_response()
        except Exception as exc:  # mapped here, once: the platform never sees a traceback
            mapped = map_exception(exc)
            mapped.headers = {**limit_headers, **mapped.headers}
            if mapped.code == "unavailable":
                mapped.headers["X-Cache-Backend"] = "local"
            return mapped.to_response()
        for name, value in limit_headers.items():
            response.headers.setdefault(name.lower(), value)
        return response

    def _limited(self, request: Request, run: RouteGen, headers: dict[str, str]) -> RouteGen:
        """The route behind the API key's limit, both in one round trip where they can be.

        The route validates its input before its first cache call, so that call is known
        before anything is sent: it travels with the limit check (see
        :mod:`continuum.cache.joined`), and a refused request changes nothing and reads
        nothing. A limiter call (``/v1/ratelimit``) or a route that fails validation has
        the check sent alone first. ``headers`` receives the RateLimit-* headers.
        """
        token = request.headers["authorization"].partition(" ")[2].strip()
        identity = hashlib.sha256(token.encode()).hexdigest()[:32]
        limits = {"limit": self.settings.rate_limit, "window_seconds": self.settings.rate_window}
        first: Op | None = None
        done: Response | None = None
        invalid: ApiError | None = None
        try:
            first = next(run)
        except StopIteration as stop:
            done = stop.value
        except ApiError as error:  # counted all the same (see _prepare)
            invalid = error
        if first is not None and first.target in ("cache", "layer"):
            decision, value = yield Op("api_limiter", "_limit_joined", (identity, first), limits)
            self._admit(decision, headers)
            if isinstance(value, Failed):
                return (yield from resume(run, throw=value.error))
            return (yield from resume(run, send=value))
        self._admit((yield Op("api_limiter", "limit", (identity,), limits)), headers)
        if invalid is not None:
            raise invalid
        if first is None:
            assert done is not None
            return done
        return (yield from resume(run, first))

    def _admit(self, decision: Any, headers: dict[str, str]) -> None:
        headers.update(decision.headers())
        if not decision.allowed:
            raise ApiError(
                "rate_limited",
                f"more than {self.settings.rate_limit} requests in "
                f"{self.settings.rate_window} s for this API key; retry later",
                headers=dict(headers),
            )

    def _finish(
        self,
        request: Request,
        route: str,
        response: Response,
        started: float,
        meter: Any,
        cache: Any,
    ) -> Response:
        duration_ms = (time.perf_counter() - started) * 1000
        stats = _meter_stats(meter)
        backend = _backend(cache, stats, response.headers.get("x-cache-backend"))
        timing = meter.server_timing() if meter is not None else ""
        app_timing = f"app;dur={duration_ms:.1f}"
        response.headers["server-timing"] = f"{timing}, {app_timing}" if timing else app_timing
        response.headers["x-cache-backend"] = backend
        error_code = ""
        if response.status >= 400:
            payload = response.json() if response.body.startswith(b"{") else None
            if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                error_code = str(payload["error"].get("code", ""))
        record = RequestRecord(
            route=route,
            method=request.method,
            status=response.status,
            backend=backend,
            round_trips=int(stats.get("round_trips", 0)),
            commands=int(stats.get("commands", 0)),
            cache_ms=float(stats.get("time_spent_ms", 0.0)),
            duration_ms=duration_ms,
            request_id=request.request_id,
            error_code=error_code,
            error_detail=response.detail[:500],
            fallback_ops=int(stats.get("fallback_ops", 0)),
            billed_commands=int(stats.get("billed_commands", stats.get("commands", 0))),
        )
        emit(record, self._sink, emf=self.settings.emf)
        if request.method == "HEAD":  # a GET's headers without its body, on every platform
            response.body = b""
        return response


def map_exception(exc: BaseException) -> ApiError:
    """One place mapping the toolkit's exception tree to API error codes."""
    from continuum import errors

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, errors.ValueTooLarge):
        return ApiError("payload_too_large", str(exc))
    if isinstance(exc, errors.ValidationError):
        return ApiError("bad_request", str(exc))
    if isinstance(exc, errors.CacheUnavailable):
        return ApiError(
            "unavailable",
            f"the cache is unavailable ({type(exc).__name__}); retry shortly",
            headers={"Retry-After": "1"},
        )
    # A 500 says what kind of failure it was in stable words; what the server or the code
    # said (Redis error texts, exception messages) goes to the log line only.
    if isinstance(exc, errors.DecodeError):
        return ApiError("internal", "a stored value could not be decoded", detail=str(exc))
    if isinstance(exc, errors.CommandError):
        return ApiError(
            "internal", "the cache refused the command", detail=f"CommandError: {exc.message}"
        )
    return ApiError("internal", "unexpected error", detail=f"{type(exc).__name__}: {exc}")


def _refuse(error: ApiError) -> RouteGen:
    """A route that yields nothing and fails with ``error`` (after the rate limit ran)."""
    yield from ()  # a generator like every route, so the driver runs it the same way
    raise error


def _not_configured(exc: CacheError) -> Response:
    return ApiError("unavailable", f"the cache is not configured: {exc}").to_response()


def _meter_stats(meter: Any) -> dict[str, Any]:
    if meter is None:
        return {}
    stats: dict[str, Any] = meter.as_dict()
    return stats


def _backend(cache: Any, stats: Mapping[str, Any], said: str | None) -> str:
    """``local`` when anything in this request was served by the fallback (or the route says)."""
    if said == "local" or int(stats.get("fallback_ops", 0) or 0) > 0:
        return "local"
    if cache is None:
        return "unknown"
    backend = cache.current_backend
    return str(getattr(backend, "value", backend))


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    seconds = parse_seconds(raw)
    if seconds is None or seconds <= 0:
        from continuum.errors import ConfigurationError

        raise ConfigurationError(f"{name} must be a positive number of seconds, not {raw[:20]!r}")
    return seconds


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    number = parse_decimal(raw)
    if number is None or number < 1:
        from continuum.errors import ConfigurationError

        raise ConfigurationError(f"{name} must be a positive integer, not {raw[:20]!r}")
    return number
