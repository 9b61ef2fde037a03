"""The AWS Lambda entry point: ``continuum.platforms.aws_lambda.handler.handler``.

``events.py`` reads API Gateway REST (v1), HTTP API (v2), Function URL and ALB events
into the core's neutral ``Request`` and answers each in its own shape (it says there why
this is not Mangum). The sync ``Api.handle`` answers: a container serves one invocation
at a time, so an event loop or the async client would only add asyncio, anyio and a
connection pool per loop to every cold start. The client is created once per container,
at import (Lambda's init phase), with its HTTP connection pool (httpx is imported then,
since every request needs it, and a SnapStart snapshot keeps it), and reused by every
warm invocation.

Each invocation's deadline is ``context.get_remaining_time_in_millis()`` minus
``CONTINUUM_DEADLINE_MARGIN_MS`` (500 ms by default), so the cache gives up early
enough for the function to answer from its fallback instead of being killed.
Behind a custom domain whose mapping has a base path (``/cache``), set
``CONTINUUM_BASE_PATH`` to it: REST APIs and HTTP APIs on payload 1.0 hand that prefix
over in the path, and it is taken off before routing.

Secrets (the Upstash token, the API keys) come from the environment or, by name, from
SSM Parameter Store / Secrets Manager (see ``secrets.py``). When a secret can't be read
the function still answers: without a token from the request-scoped fallback
(``X-Cache-Backend: local``), without API keys with 401 on ``/v1``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from continuum.app import Api, ApiError, ApiSettings, Response
from continuum.app.observe import stdout_sink
from continuum.errors import CacheError, ConfigurationError
from continuum.numbers import parse_decimal
from continuum.platforms.aws_lambda.events import (
    EventError,
    Refusal,
    Shape,
    answer,
    base_path_from_env,
    oversize,
    read,
)
from continuum.platforms.aws_lambda.secrets import SecretValue, max_age_from_env, source_for

__all__ = ["Container", "handler"]

SECRET_VARIABLES = ("UPSTASH_REDIS_REST_TOKEN", "CONTINUUM_API_KEYS")
DEFAULT_MARGIN_MS = 500


class Container:
    """What one Lambda container keeps between invocations: secrets, the client, the API."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        raw_margin = self.env.get("CONTINUUM_DEADLINE_MARGIN_MS", "").strip()
        margin = parse_decimal(raw_margin) if raw_margin else DEFAULT_MARGIN_MS
        if margin is None:
            raise ConfigurationError("CONTINUUM_DEADLINE_MARGIN_MS must be whole milliseconds")
        self.margin = margin / 1000
        self.base_path = base_path_from_env(self.env)
        max_age = max_age_from_env(self.env)
        self.secrets: dict[str, SecretValue] = {}
        for variable in SECRET_VARIABLES:
            source = source_for(variable, self.env)
            if source is not None:
                self.secrets[variable] = SecretValue(source, max_age=max_age)
        self._values: dict[str, str] | None = None
        self._api: Api | None = None

    def api(self) -> Api:
        """The API and its client, rebuilt only when a fetched secret has changed (rotation)."""
        values = self._secret_values()
        if self._api is None or values != self._values:
            self._api = self._build(values)
            self._values = values
        return self._api

    def invoke(self, event: Any, context: Any) -> dict[str, Any]:
        """Answer one invocation; an event that is no HTTP request gets a JSON 400, not a trace.

        A console test event, a direct ``aws lambda invoke`` with ``{}`` or a truncated
        payload cannot be read as a request; the API itself never raises.
        """
        try:
            api = self.api()
        except CacheError as exc:
            return misconfigured(exc)
        try:
            request, shape = read(
                event, remaining=self.remaining(context), base_path=self.base_path
            )
        except EventError as exc:
            refusal = ApiError(
                "bad_request",
                "this function answers HTTP events (API Gateway REST or HTTP API, a "
                f"Function URL, an ALB); it cannot read this one: {exc}",
            )
            response = api.error_response(refusal)
            return _event_response(response) if exc.shape is None else answer(response, exc.shape)
        except Refusal as refused:
            return answer(api.error_response(refused.error, refused.request), refused.shape)
        limit = api.settings.max_body
        if len(request.body) > limit:
            refusal = ApiError("payload_too_large", f"the body is larger than {limit} bytes")
            return answer(api.error_response(refusal, request), shape)
        return _deliverable(api.handle(request), shape)

    def remaining(self, context: Any) -> float | None:
        """Seconds this invocation may still spend on the cache: Lambda's remaining time
        less the margin, or ``None`` (the API's default) without a Lambda context."""
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

    def _build(self, values: Mapping[str, str]) -> Api:
        env = {**self.env, **values}
        from continuum.cache import UpstashCache
        from continuum.config import UpstashConfig

        cache = UpstashCache(config=UpstashConfig.from_env(env))
        cache.prepare()
        return Api(ApiSettings.from_env(env), cache=cache)


def _deliverable(response: Response, shape: Shape) -> dict[str, Any]:
    """``response`` in its event's shape, or, when that is more than the source takes
    back, a 500 that says so (with the answer's cache and limit headers) and an error
    line in the log, where the gateway's bare 502 would leave neither."""
    out = answer(response, shape)
    reason = oversize(out, shape)
    if reason is None:
        return out
    stdout_sink(_error_line(reason, msg="response too large"))
    failure = ApiError("internal", reason).to_response()
    kept = {k: v for k, v in response.headers.items() if k not in failure.headers}
    failure.headers.update(kept)
    return answer(failure, shape)


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
        container.api()
    except CacheError as exc:
        return exc
    return container


_container = _init()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point (``platforms/aws_lambda/handler.handler`` in serverless.yml)."""
    if isinstance(_container, CacheError):
        return misconfigured(_container)
    return _container.invoke(event, context)
