"""The AWS Lambda entry point: ``continuum.platforms.aws_lambda.handler.handler``.

Mangum turns API Gateway REST (v1), HTTP API (v2), Function URL and ALB events into
ASGI and back; the reference API runs as a raw ASGI app under it (no framework on the
cold-start path). ``lifespan="off"`` because Mangum would otherwise run the ASGI
lifespan on every invocation; the client is created once per container, at import
(Lambda's init phase), with its HTTP connection pool (httpx is imported then, since
every request needs it, and a SnapStart snapshot keeps it), and reused by every warm
invocation. A container serves one invocation at a time, so the API answers with the
sync client: the async one would only add anyio and a connection pool per event loop.

Each invocation's deadline is ``context.get_remaining_time_in_millis()`` minus
``CONTINUUM_DEADLINE_MARGIN_MS`` (500 ms by default), so the cache gives up early
enough for the function to answer from its fallback instead of being killed.

Secrets (the Upstash token, the API keys) come from the environment or, by name, from
SSM Parameter Store / Secrets Manager (see ``secrets.py``). When a secret can't be read
the function still answers: without a token from the request-scoped fallback
(``X-Cache-Backend: local``), without API keys with 401 on ``/v1``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mangum import Mangum

from continuum.app import Api, ApiError, ApiSettings, AsgiApp, Response
from continuum.app.asgi import Scope
from continuum.app.observe import stdout_sink
from continuum.errors import CacheError, ConfigurationError
from continuum.numbers import parse_decimal
from continuum.platforms.aws_lambda.secrets import SecretValue, max_age_from_env, source_for

__all__ = ["Container", "handler"]

SECRET_VARIABLES = ("UPSTASH_REDIS_REST_TOKEN", "CONTINUUM_API_KEYS")
DEFAULT_MARGIN_MS = 500


class Container:
    """What one Lambda container keeps between invocations: secrets, clients, the adapter."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        raw_margin = self.env.get("CONTINUUM_DEADLINE_MARGIN_MS", "").strip()
        margin = parse_decimal(raw_margin) if raw_margin else DEFAULT_MARGIN_MS
        if margin is None:
            raise ConfigurationError("CONTINUUM_DEADLINE_MARGIN_MS must be whole milliseconds")
        self.margin = margin / 1000
        max_age = max_age_from_env(self.env)
        self.secrets: dict[str, SecretValue] = {}
        for variable in SECRET_VARIABLES:
            source = source_for(variable, self.env)
            if source is not None:
                self.secrets[variable] = SecretValue(source, max_age=max_age)
        self._values: dict[str, str] | None = None
        self._adapter: Mangum | None = None
        self._api: Api | None = None

    def adapter(self) -> Mangum:
        """The Mangum adapter, rebuilt only when a fetched secret has changed (rotation)."""
        values = self._secret_values()
        if self._adapter is None or values != self._values:
            self._adapter = self._build(values)
            self._values = values
        return self._adapter

    def invoke(self, event: Any, context: Any) -> dict[str, Any]:
        """Answer one invocation; an event that is no HTTP request gets a JSON 400, not a trace.

        Mangum raises on events it cannot read (a console test event, a direct
        ``aws lambda invoke`` with ``{}``, a truncated payload); the ASGI app itself never
        raises, so anything raised here is about the event.
        """
        try:
            adapter = self.adapter()
        except CacheError as exc:
            return misconfigured(exc)
        try:
            response: dict[str, Any] = adapter(_path_decoded_once(event), context)
        except Exception as exc:
            refusal = ApiError(
                "bad_request",
                "this function answers HTTP events (API Gateway REST or HTTP API, a "
                f"Function URL, an ALB); it cannot read this one ({type(exc).__name__})",
            )
            return _event_response((self._api or Api(ApiSettings())).error_response(refusal))
        return response

    def remaining(self, scope: Scope) -> float | None:
        context = scope.get("aws.context")
        millis = getattr(context, "get_remaining_time_in_millis", None)
        if millis is None:
            return None
        return max(0.0, float(millis()) / 1000 - self.margin)

    def _secret_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for variable, secret in self.secrets.items():
            try:
                values[variable] = secret.get()
            except ConfigurationError as exc:
                stdout_sink(_error_line(str(exc)))
        return values

    def _build(self, values: Mapping[str, str]) -> Mangum:
        env = {**self.env, **values}
        from continuum.cache import UpstashCache
        from continuum.config import UpstashConfig

        cache = UpstashCache(config=UpstashConfig.from_env(env))
        cache.prepare()
        api = Api(ApiSettings.from_env(env), cache=cache)
        self._api = api
        return Mangum(AsgiApp(api, remaining=self.remaining, blocking=True), lifespan="off")


def _path_decoded_once(event: Any) -> Any:
    """The event with payload 2.0's path escaped so that Mangum's decoding restores it.

    Mangum percent-decodes the path of every API Gateway event. REST APIs hand it over
    encoded, but payload 2.0 (HTTP APIs, Function URLs) routes on
    ``requestContext.http.path``, which both deliver already decoded: a second decoding
    would make the key ``100%41`` into ``100A`` and ``%FF`` into a 400. Escaping its
    ``%`` undoes exactly that second decoding. The other fields are left as sent.
    """
    if not isinstance(event, dict) or event.get("version") != "2.0":
        return event
    context = event.get("requestContext")
    if not isinstance(context, dict) or not isinstance(context.get("http"), dict):
        return event
    http: dict[str, Any] = context["http"]
    path = http.get("path")
    if not isinstance(path, str) or "%" not in path:
        return event
    escaped = {**http, "path": path.replace("%", "%25")}
    return {**event, "requestContext": {**context, "http": escaped}}


def misconfigured(error: CacheError) -> dict[str, Any]:
    """A JSON 500 naming the bad setting, as Vercel and Cloudflare answer; no traceback."""
    failure = ApiError("internal", f"the function is misconfigured: {error}")
    stdout_sink(_error_line(str(error), msg="configuration"))
    return _event_response(Api(ApiSettings(), cache=_NoCache()).error_response(failure))


class _NoCache:
    """Stands in for a cache that could not be configured (reported as ``unknown``)."""

    current_backend = "unknown"


def _event_response(answer: Response) -> dict[str, Any]:
    """A response every HTTP source (and a direct invoke) accepts."""
    return {
        "statusCode": answer.status,
        "headers": dict(answer.headers),
        "body": answer.body.decode(),
        "isBase64Encoded": False,
    }


def _error_line(message: str, msg: str = "secret") -> str:
    import json

    return json.dumps({"level": "error", "msg": msg, "error": message})


def _init() -> Container | CacheError:
    """Build the container in Lambda's init phase; a bad setting is answered per request
    (a failed import would give every caller a bare 502 and only the logs the reason)."""
    try:
        container = Container()
        container.adapter()
    except CacheError as exc:
        return exc
    return container


_container = _init()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point (``platforms/aws_lambda/handler.handler`` in serverless.yml)."""
    if isinstance(_container, CacheError):
        return misconfigured(_container)
    return _container.invoke(event, context)
