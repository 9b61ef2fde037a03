"""The routes of the reference API, written once for the sync and the async drivers.

Each route is a generator: it yields an ``Op`` (a cache or limiter call named
symbolically) and receives its result, or the exception it raised. ``core/app/api.py``
drives the same generator against ``UpstashCache`` (sync) or ``AsyncUpstashCache``
(async), the way the cache's own operations are written (see ``docs/INTERNALS.md``), so
no route exists twice.

Routes validate every piece of user input before yielding anything: an unknown layer,
a key with ``..`` segments, a bad TTL or a broad invalidation pattern never reaches
the cache.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any

from continuum.app.http import ApiError, Request, Response, json_response
from continuum.cache import check_pattern, check_prefix
from continuum.namespace import LAYERS as LAYER_SPECS
from continuum.numbers import parse_decimal

__all__ = ["LAYERS", "Op", "Route", "RouteGen", "match"]

# The layers the API exposes: the seed's, by their canonical names. Not ``ratelimit``:
# limits are read and spent through /v1/ratelimit, whose state no cache route can reach.
LAYERS: tuple[str, ...] = tuple(name for name in LAYER_SPECS if name != "ratelimit")

MAX_TTL = 365 * 24 * 3600
MAX_KEY_BYTES = 1024
# /v1/ratelimit bounds what one call may store and bill: the exact sliding log keeps one
# entry per unit of cost for a whole window, so these cap a key at 10,000 entries for a
# day at most, and one call at 100 entries (each call is one script run).
MAX_LIMIT = 10_000
MAX_COST = 100
MAX_WINDOW = 24 * 3600


class Op:
    """A call for the driver to make: ``target`` is ``cache``, ``layer`` or ``limiter``.

    A plain slotted class rather than a dataclass: this module is on the Lambda
    cold-start path, and each dataclass costs about a millisecond to build at import.
    """

    __slots__ = ("args", "kwargs", "layer", "method", "target")

    def __init__(
        self,
        target: str,
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        layer: str = "",
    ) -> None:
        self.target = target
        self.method = method
        self.args = args
        self.kwargs: Mapping[str, Any] = kwargs or {}
        self.layer = layer

    def __repr__(self) -> str:
        return f"Op({self.target!r}, {self.method!r}, layer={self.layer!r})"


RouteGen = Generator[Op, Any, Response]


class Route:
    """A matched route: its template (logged), whether it needs auth, and its generator."""

    __slots__ = ("authenticated", "run", "template")

    def __init__(self, template: str, authenticated: bool, run: RouteGen) -> None:
        self.template = template
        self.authenticated = authenticated
        self.run = run


def match(request: Request) -> Route:
    """Find the route for ``request`` or raise ``not_found`` / ``method_not_allowed``."""
    parts = request.path.split("/")[1:]
    # HEAD is a GET without its body (uptime checkers and load balancers probe /health
    # with it); Api drops the body, since API Gateway and the Workers runtime would
    # send it.
    method = "GET" if request.method == "HEAD" else request.method
    if parts == ["health"]:
        _allow(method, "GET")
        return Route("/health", False, _health())
    if len(parts) < 2 or parts[0] != "v1":
        raise ApiError("not_found", f"no route for {request.path[:200]!r}")
    kind, rest = parts[1], parts[2:]
    if kind == "cache" and len(rest) >= 2:
        layer = _layer(rest[0])
        if rest[1:] == ["invalidate"] and method == "POST":
            return Route("/v1/cache/{layer}/invalidate", True, _invalidate(request, layer))
        key = _key(rest[1:])
        _allow(method, "GET", "PUT", "DELETE")
        template = "/v1/cache/{layer}/{key}"
        if method == "GET":
            return Route(template, True, _get(layer, key))
        if method == "PUT":
            return Route(template, True, _put(request, layer, key))
        return Route(template, True, _delete(layer, key))
    if kind == "ratelimit" and rest:
        _allow(method, "POST")
        identifier = _name("identifier", rest)
        return Route("/v1/ratelimit/{identifier}", True, _ratelimit(request, identifier))
    if kind == "publish" and rest:
        _allow(method, "POST")
        channel = _name("channel", rest)
        return Route("/v1/publish/{channel}", True, _publish(request, channel))
    if parts == ["v1", "stats"]:
        _allow(method, "GET")
        return Route("/v1/stats", True, _stats())
    raise ApiError("not_found", f"no route for {request.path[:200]!r}")


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ApiError(
            "method_not_allowed",
            f"{method} is not allowed here; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )


def _layer(name: str) -> str:
    if name not in LAYERS:
        known = ", ".join(LAYERS)
        hint = "; rate limits are checked with POST /v1/ratelimit/{identifier}"
        raise ApiError(
            "not_found",
            f"unknown layer {name[:64]!r}; known layers: {known}"
            + (hint if name == "ratelimit" else ""),
        )
    return name


def _key(segments: list[str]) -> str:
    """The key is the rest of the path, so ``a/b`` and ``a%2Fb`` name the same key."""
    if any(s in (".", "..") for s in segments):
        raise ApiError("bad_request", "a key may not contain '.' or '..' path segments")
    key = "/".join(segments)
    if not key:
        raise ApiError("bad_request", "the key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ApiError("bad_request", f"the key is longer than {MAX_KEY_BYTES} bytes")
    return key


def _name(what: str, segments: list[str]) -> str:
    value = "/".join(segments)
    if not value or len(value.encode()) > MAX_KEY_BYTES:
        raise ApiError("bad_request", f"the {what} must be 1 to {MAX_KEY_BYTES} bytes")
    return value


def _object_body(request: Request) -> dict[str, Any]:
    body = request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError("bad_request", "the body must be a JSON object")
    return body


def _int_field(value: object, what: str, low: int, high: int) -> int:
    """A JSON integer, or a string of ASCII digits, from ``low`` to ``high``."""
    number = parse_decimal(value) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        raise ApiError("bad_request", f"{what} must be an integer from {low} to {high}")
    return number


def _health() -> RouteGen:
    # One round trip: the key count is Upstash's DBSIZE, None when it did not answer.
    info = yield Op("cache", "info")
    alive = info.get("keys") is not None
    from continuum import __version__

    # No answer means this one comes from no Upstash, whatever the circuit says yet.
    backend = _text(info.get("backend")) if alive else "local"
    payload = {
        "status": "ok" if alive else "degraded",
        "backend": backend,
        "circuit": _circuit(info),
        "version": __version__,
    }
    return json_response(200, payload, headers={"X-Cache-Backend": backend})


def _get(layer: str, key: str) -> RouteGen:
    value = yield Op("layer", "get", (key,), layer=layer)
    if value is None:
        raise ApiError("not_found", f"no value for key {key[:200]!r} in layer {layer!r}")
    return json_response(200, {"layer": layer, "key": key, "value": _jsonable(value)})


def _put(request: Request, layer: str, key: str) -> RouteGen:
    body = _object_body(request)
    if "value" not in body:
        raise ApiError("bad_request", 'the body must be {"value": <any JSON>, "ttl": <seconds>}')
    raw_ttl = body.get("ttl", request.param("ttl"))
    kwargs: dict[str, Any] = {}
    if raw_ttl is not None:
        kwargs["ttl"] = _int_field(raw_ttl, "ttl", 1, MAX_TTL)
    result = yield Op("layer", "set", (key, body["value"]), kwargs, layer=layer)
    degraded = bool(getattr(result, "degraded", False))
    payload = {"layer": layer, "key": key, "stored": bool(result), "degraded": degraded}
    return json_response(200, payload)


def _delete(layer: str, key: str) -> RouteGen:
    deleted = yield Op("layer", "delete", (key,), layer=layer)
    return json_response(200, {"layer": layer, "key": key, "deleted": int(deleted)})


def _invalidate(request: Request, layer: str) -> RouteGen:
    body = _object_body(request)
    if "allow_broad" in body:
        raise ApiError("bad_request", '"allow_broad" is spelled "allow_all"')
    pattern, prefix = body.get("pattern"), body.get("prefix")
    if (pattern is None) == (prefix is None):
        raise ApiError("bad_request", 'give exactly one of "pattern" (a glob) or "prefix"')
    scope = f"the {layer!r} layer"
    if prefix is not None:
        check_prefix(prefix, scope=scope, how='send {"pattern": "*", "allow_all": true}')
        deleted = yield Op("layer", "delete_prefix", (prefix,), layer=layer)
        return json_response(200, {"layer": layer, "prefix": prefix, "deleted": int(deleted)})
    allow_all = body.get("allow_all", False)
    check_pattern(pattern, allow_all=allow_all, scope=scope, how='send "allow_all": true')
    deleted = yield Op("layer", "delete_pattern", (pattern,), {"allow_all": allow_all}, layer=layer)
    return json_response(200, {"layer": layer, "pattern": pattern, "deleted": int(deleted)})


def _ratelimit(request: Request, identifier: str) -> RouteGen:
    body = _object_body(request)
    limit = _int_field(body.get("limit", 100), "limit", 1, MAX_LIMIT)
    window = _int_field(body.get("window", 60), "window", 1, MAX_WINDOW)
    cost = _int_field(body.get("cost", 1), "cost", 0, min(limit, MAX_COST))
    result = yield Op(
        "limiter", "limit", (identifier,), {"limit": limit, "window_seconds": window, "cost": cost}
    )
    payload = {
        "identifier": identifier,
        "allowed": bool(result.allowed),
        "limit": result.limit,
        "remaining": result.remaining,
        "reset": result.reset,
        "retry_after": result.retry_after,
        "reason": str(result.reason),
    }
    return json_response(200, payload, headers=result.headers())


def _publish(request: Request, channel: str) -> RouteGen:
    body = _object_body(request)
    if "message" not in body:
        raise ApiError("bad_request", 'the body must be {"message": <string or JSON>}')
    message = body["message"]
    text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
    receivers = yield Op("cache", "publish", (channel, text))
    return json_response(200, {"channel": channel, "receivers": int(receivers)})


def _stats() -> RouteGen:
    info = yield Op("cache", "info")
    return json_response(200, _jsonable(info))


def _circuit(info: Mapping[str, Any]) -> str:
    circuit = info.get("circuit")
    if isinstance(circuit, Mapping):
        return _text(circuit.get("state"))
    return _text(circuit)


def _text(value: object) -> str:
    """Enum members and strings alike as their text value."""
    return str(getattr(value, "value", value)) if value is not None else "unknown"


def _jsonable(value: object) -> Any:
    """Make cache values JSON-safe: bytes as text or base64, enums as values."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "value"):
        return _jsonable(value.value)
    return str(value)
