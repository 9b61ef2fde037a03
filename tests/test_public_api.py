"""Pins the public API: ``continuum.__all__`` and the signatures of the public classes.

A change here is a change for every user: make it on purpose, update this file in the
same commit, and say why. Annotations are left out (they may be refined freely); names,
order, kinds and defaults of parameters are pinned.
"""

from __future__ import annotations

import inspect
from typing import Any

import continuum

EXPECTED_ALL = [
    "AsyncCacheLayer", "AsyncPipeline", "AsyncRateLimiter", "AsyncUpstashCache",
    "AuthenticationFailed", "CacheBackend", "CacheError", "CacheLayer", "CacheTimeout",
    "CacheUnavailable", "CircuitOpen", "CommandError", "ConfigurationError",
    "ConnectionFailed", "ConnectionMode", "Database", "DecodeError", "KeyTooLarge",
    "LocalCache", "LocalModeWarning", "NoScriptError",
    # OutcomeUnknown (issue 12): a write that cannot be repeated may have run on the server
    # and no answer says whether; callers catch it to read back before trying again.
    "OutcomeUnknown", "PermissionDenied", "Pipeline",
    "QuotaExceeded", "RateLimitResult", "RateLimiter", "ResponseTooLarge", "ScopedCache",
    "Script", "ServerError",
    "TransactionAborted", "UpstashCache",
    "UpstashConfig", "ValidationError", "ValueTooLarge", "WriteResult", "__version__",
    "register_local_script",
]  # fmt: skip

SEED_METHODS = [
    "get", "set", "delete", "delete_pattern", "exists", "expire", "ttl", "increment",
    "pipeline", "publish", "pubsub", "ping", "info", "flush",
]  # fmt: skip


def _normalise(fn: Any) -> str:
    parts: list[str] = []
    star = False
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_POSITIONAL:
            parts.append("*" + p.name)
            star = True
            continue
        if p.kind is p.VAR_KEYWORD:
            parts.append("**" + p.name)
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name + ("" if p.default is p.empty else "=" + repr(p.default)))
    return "(" + ", ".join(parts) + ")"


def _surface(cls: type) -> dict[str, str]:
    surface: dict[str, str] = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(inspect.getattr_static(cls, name), property):
            surface[name] = "property"
        elif callable(member):
            surface[name] = _normalise(member)
    return surface


EXPECTED: dict[str, dict[str, str]] = {
    "AsyncCacheLayer": {
        "__init__": "(cache, spec)",
        "clear": "()",
        "default_ttl": "property",
        "delete": "(*keys)",
        "delete_pattern": "(pattern, *, allow_all=False)",
        "delete_prefix": "(prefix)",
        "exists": "(key)",
        "expire": "(key, ttl)",
        "get": "(key)",
        "get_or_set": "(key, compute, ttl=None)",
        "increment": "(key, amount=1)",
        "key": "(key)",
        "name": "property",
        "prefix": "property",
        "set": "(key, value, ttl=None)",
        "ttl": "(key)",
    },
    "AsyncPipeline": {
        "__init__": "(cache, *, transaction=False)",
        "command": "(*args, write=True)",
        "delete": "(*keys)",
        "execute": "()",
        "exists": "(key)",
        "expire": "(key, ttl)",
        "get": "(key)",
        "increment": "(key, amount=1)",
        "publish": "(channel, message)",
        "set": "(key, value, ttl=300, *, ex=None)",
        "ttl": "(key)",
    },
    "AsyncUpstashCache": {
        "__init__": "(config=None, mode='auto', fallback=None, rest_url=None, "
        "rest_token=None, redis_url=None, use_msgpack=None, *, "
        "transport_factory=None, auto_pipeline=True, **options)",
        "aclose": "()",
        "current_backend": "property",
        "deadline": "property",
        "delete": "(*keys)",
        "delete_pattern": "(pattern, *, allow_all=False)",
        "delete_prefix": "(prefix)",
        "execute": "(commands, *, write=True, transaction=False)",
        "exists": "(key)",
        "expire": "(key, ttl)",
        "flush": "(*, confirm=False)",
        "get": "(key)",
        "get_or_set": "(key, compute, ttl=300)",
        "increment": "(key, amount=1)",
        "info": "()",
        "is_local": "property",
        "layer": "(name)",
        "meter": "property",
        "ping": "()",
        "pipeline": "(*, transaction=False)",
        "publish": "(channel, message)",
        "pubsub": "()",
        "reconnect": "()",
        "request": "(*, deadline=None, remaining_ms=None)",
        "run_script": "(script, keys, args, *, fallback=False)",
        "scope": "property",
        "set": "(key, value, ttl=300, *, ex=None)",
        "ttl": "(key)",
    },
    "CacheLayer": {
        "__init__": "(cache, spec)",
        "clear": "()",
        "default_ttl": "property",
        "delete": "(*keys)",
        "delete_pattern": "(pattern, *, allow_all=False)",
        "delete_prefix": "(prefix)",
        "exists": "(key)",
        "expire": "(key, ttl)",
        "get": "(key)",
        "get_or_set": "(key, compute, ttl=None)",
        "increment": "(key, amount=1)",
        "key": "(key)",
        "name": "property",
        "prefix": "property",
        "set": "(key, value, ttl=None)",
        "ttl": "(key)",
    },
    "Pipeline": {
        "__init__": "(cache, *, transaction=False)",
        "command": "(*args, write=True)",
        "delete": "(*keys)",
        "execute": "()",
        "exists": "(key)",
        "expire": "(key, ttl)",
        "get": "(key)",
        "increment": "(key, amount=1)",
        "publish": "(channel, message)",
        "set": "(key, value, ttl=300, *, ex=None)",
        "ttl": "(key)",
    },
    "UpstashCache": {
        "__init__": "(config=None, mode='auto', fallback=None, rest_url=None, "
        "rest_token=None, redis_url=None, use_msgpack=None, *, "
        "transport_factory=None, **options)",
        "close": "()",
        "current_backend": "property",
        "deadline": "property",
        "delete": "(*keys)",
        "delete_pattern": "(pattern, *, allow_all=False)",
        "delete_prefix": "(prefix)",
        "execute": "(commands, *, write=True, transaction=False)",
        "exists": "(key)",
        "expire": "(key, ttl)",
        "flush": "(*, confirm=False)",
        "get": "(key)",
        "get_or_set": "(key, compute, ttl=300)",
        "increment": "(key, amount=1)",
        "info": "()",
        "is_local": "property",
        "layer": "(name)",
        "meter": "property",
        "ping": "()",
        "pipeline": "(*, transaction=False)",
        # prepare (issue 14): a function's init phase builds the HTTP pool, not its first
        # request (the async client's pools belong to an event loop, so it has none)
        "prepare": "()",
        "publish": "(channel, message)",
        "pubsub": "()",
        "reconnect": "()",
        "request": "(*, deadline=None, remaining_ms=None)",
        "run_script": "(script, keys, args, *, fallback=False)",
        "scope": "property",
        "set": "(key, value, ttl=300, *, ex=None)",
        "ttl": "(key)",
    },
}


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert sorted(continuum.__all__) == sorted(EXPECTED_ALL)
    for name in continuum.__all__:
        assert getattr(continuum, name) is not None
    assert continuum.__version__ == "0.1.0"


def test_public_signatures_are_pinned() -> None:
    for name, expected in EXPECTED.items():
        assert _surface(getattr(continuum, name)) == expected, name


def test_the_seeds_methods_exist_on_both_clients() -> None:
    for cls in (continuum.UpstashCache, continuum.AsyncUpstashCache):
        for method in SEED_METHODS:
            assert callable(getattr(cls, method)), (cls.__name__, method)
    assert [m.value for m in continuum.CacheBackend] == ["upstash", "local"]
    assert [m.value for m in continuum.ConnectionMode] == ["auto", "rest", "local"]


def test_async_twins_are_coroutines() -> None:
    for method in [*SEED_METHODS, "get_or_set", "delete_prefix", "reconnect", "run_script"]:
        if method in ("pipeline", "pubsub"):
            continue
        assert inspect.iscoroutinefunction(getattr(continuum.AsyncUpstashCache, method)), method


def test_the_seeds_cache_module_exports_what_the_seed_says() -> None:
    """The seed updated ``continuum/cache/__init__.py`` to export ``UpstashCache``,
    ``RateLimiter``, ``ConnectionMode``, ``CacheBackend`` and an ``UPSTASH_AVAILABLE``
    flag, with ``UpstashConfig`` and ``LocalCache`` beside the cache: code written
    against it imports them from there."""
    from continuum.cache import (
        UPSTASH_AVAILABLE,
        CacheBackend,
        ConnectionMode,
        LocalCache,
        RateLimiter,
        UpstashCache,
        UpstashConfig,
    )

    assert (CacheBackend, ConnectionMode, LocalCache, UpstashConfig) == (
        continuum.CacheBackend,
        continuum.ConnectionMode,
        continuum.LocalCache,
        continuum.UpstashConfig,
    )
    assert (UpstashCache, RateLimiter) == (continuum.UpstashCache, continuum.RateLimiter)
    # the REST client is built in (no optional SDK to be missing): always available
    assert UPSTASH_AVAILABLE is True


def test_an_unknown_name_is_reported_under_the_package_name() -> None:
    import continuum.cache

    for module, name in ((continuum, "continuum"), (continuum.cache, "continuum.cache")):
        try:
            module.NoSuchThing  # noqa: B018
        except AttributeError as exc:
            assert str(exc) == f"module {name!r} has no attribute 'NoSuchThing'"
        else:
            raise AssertionError(f"{name}.NoSuchThing resolved")
