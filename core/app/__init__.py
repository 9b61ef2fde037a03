"""The reference HTTP API, written once against a neutral request and response.

Platform adapters only translate: Lambda reads its events into a ``Request`` for
``Api.handle``, Vercel wraps ``Api.handle`` in Flask, Cloudflare calls
``Api.handle_async`` from its ``fetch``, and ``continuum dev`` serves ``AsgiApp`` on
loopback. Example::

    from continuum.app import Api, Request

    api = Api()  # CONTINUUM_API_KEYS, UPSTASH_REDIS_REST_URL/_TOKEN from the environment
    response = api.handle(Request.build("GET", "/health"))
"""

from typing import TYPE_CHECKING, Any

from continuum.app.api import Api, ApiSettings, map_exception
from continuum.app.http import ApiError, Request, Response, json_response
from continuum.app.routes import LAYERS

if TYPE_CHECKING:
    from continuum.app.asgi import AsgiApp

__all__ = [
    "LAYERS",
    "Api",
    "ApiError",
    "ApiSettings",
    "AsgiApp",
    "Request",
    "Response",
    "json_response",
    "map_exception",
]


def __getattr__(name: str) -> Any:
    """``AsgiApp``, imported when first asked for: only ``continuum dev`` serves it, and
    the Lambda and Vercel handlers never need it."""
    if name != "AsgiApp":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from continuum.app.asgi import AsgiApp

    globals()[name] = AsgiApp
    return AsgiApp
