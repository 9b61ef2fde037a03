"""Secrets for the Lambda handler: from the environment, SSM Parameter Store or Secrets Manager.

``serverless.yml`` puts parameter *names* in the function's environment, never values,
so the Upstash token never sits in the function configuration (where anyone with
``lambda:GetFunctionConfiguration`` reads it) nor in the CloudFormation template. For
a variable ``NAME`` the value comes from, in order:

- ``NAME`` itself (local runs, tests, or a deliberate choice);
- ``NAME_PARAM``: an SSM parameter name, read with decryption (SecureString);
- ``NAME_SECRET_ARN``: a Secrets Manager secret id or ARN; a JSON object secret is
  looked up by ``NAME`` as its field, anything else is used whole.

Fetched values are cached per container for ``CONTINUUM_SECRET_MAX_AGE`` seconds
(300 by default, like AWS Lambda Powertools' parameters utility), so a rotated token is
picked up within minutes without a fetch on every invocation. boto3 costs about 300 ms
to import, so it is imported only when a secret actually has to be fetched.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from continuum.errors import ConfigurationError

__all__ = ["SecretSource", "SecretValue", "max_age_from_env", "source_for"]

DEFAULT_MAX_AGE = 300.0


class SecretSource:
    """Where one secret lives: ``kind`` is ``ssm`` or ``secretsmanager``.

    This and :class:`SecretValue` are plain classes, not dataclasses: a dataclass costs
    about 0.5 ms at import, and this module is on every cold start's path.
    """

    __slots__ = ("kind", "name", "variable")

    def __init__(self, variable: str, kind: str, name: str) -> None:
        self.variable = variable  # the setting it fills, e.g. UPSTASH_REDIS_REST_TOKEN
        self.kind = kind
        self.name = name  # the parameter name or secret id (not secret itself)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretSource):
            return NotImplemented
        return (self.variable, self.kind, self.name) == (other.variable, other.kind, other.name)

    def __hash__(self) -> int:
        return hash((self.variable, self.kind, self.name))

    def __repr__(self) -> str:
        return f"SecretSource(variable={self.variable!r}, kind={self.kind!r}, name={self.name!r})"

    def fetch(self, client_factory: Callable[[str], Any] | None = None) -> str:
        """Read the current value from AWS; errors name the parameter, never a value."""
        make = client_factory or _boto3_client
        try:
            if self.kind == "ssm":
                reply = make("ssm").get_parameter(Name=self.name, WithDecryption=True)
                return str(reply["Parameter"]["Value"])
            reply = make("secretsmanager").get_secret_value(SecretId=self.name)
        except ConfigurationError:
            raise
        except Exception as exc:
            where = "SSM parameter" if self.kind == "ssm" else "Secrets Manager secret"
            raise ConfigurationError(
                f"could not read {self.variable} from {where} {self.name!r}: "
                f"{type(exc).__name__}: {_aws_error_code(exc)}"
            ) from None
        return self._from_secret_string(reply.get("SecretString"))

    def _from_secret_string(self, text: object) -> str:
        if not isinstance(text, str):
            raise ConfigurationError(
                f"Secrets Manager secret {self.name!r} has no SecretString for {self.variable}"
            )
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        if isinstance(parsed, dict):
            if self.variable not in parsed:
                raise ConfigurationError(
                    f"Secrets Manager secret {self.name!r} is a JSON object without the "
                    f"field {self.variable!r}"
                )
            return str(parsed[self.variable])
        return text


class SecretValue:
    """One setting's value, refreshed from its source after ``max_age`` seconds.

    When a refresh fails the last good value is kept (an SSM hiccup must not take a warm
    container down); without any good value the error propagates.
    """

    def __init__(
        self,
        source: SecretSource,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        client_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self.source = source
        self.max_age = max_age
        self.clock = clock
        self.client_factory = client_factory
        self._value: str | None = None
        self._fetched_at = float("-inf")

    def __repr__(self) -> str:  # never the value
        return f"SecretValue(source={self.source!r}, max_age={self.max_age!r})"

    def get(self) -> str:
        now = self.clock()
        if self._value is not None and now - self._fetched_at < self.max_age:
            return self._value
        try:
            self._value = self.source.fetch(self.client_factory)
        except ConfigurationError:
            if self._value is None:
                raise
        self._fetched_at = now
        return self._value


def source_for(variable: str, env: Mapping[str, str] | None = None) -> SecretSource | None:
    """Where to fetch ``variable`` from; ``None`` when it is set directly or not at all."""
    env = os.environ if env is None else env
    if env.get(variable):
        return None
    if env.get(f"{variable}_PARAM"):
        return SecretSource(variable, "ssm", env[f"{variable}_PARAM"])
    if env.get(f"{variable}_SECRET_ARN"):
        return SecretSource(variable, "secretsmanager", env[f"{variable}_SECRET_ARN"])
    return None


def max_age_from_env(env: Mapping[str, str] | None = None) -> float:
    env = os.environ if env is None else env
    raw = env.get("CONTINUUM_SECRET_MAX_AGE", "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_MAX_AGE
    except ValueError:
        seconds = -1.0
    # nan would refetch on every invocation and inf never pick up a rotated token
    if not 0 <= seconds < float("inf"):
        raise ConfigurationError(
            f"CONTINUUM_SECRET_MAX_AGE must be a number of seconds (0 or more), not {raw[:20]!r}"
        )
    return seconds


_clients: dict[str, Any] = {}


def _boto3_client(service: str) -> Any:
    """One boto3 client per service per container; boto3 is imported here, on first need."""
    if service not in _clients:
        boto3 = importlib.import_module("boto3")
        _clients[service] = boto3.client(service)
    return _clients[service]


def _aws_error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "error"))
    return "see the function's IAM role and region"
