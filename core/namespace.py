"""Where keys live: the seed's cache layers (a key prefix, a default TTL, a database and
an outage policy) and the toolkit's own namespace, which no layer can reach.

| layer      | prefix      | TTL    | on outage                                  |
|------------|-------------|--------|--------------------------------------------|
| sessions   | session:    | 1 h    | request-scoped fallback                    |
| query      | query:      | 5 min  | request-scoped fallback                    |
| memory     | memory:     | 30 min | request-scoped fallback                    |
| ratelimit  | ratelimit:  | 1 min  | request-scoped fallback                    |
| federation | fed:queue:  | 24 h   | STRICT: raises ``CacheUnavailable``        |
| websocket  | ws:         | 5 min  | request-scoped fallback                    |

A federation event that silently landed in a per-request store would be lost when the
request ends, so that layer never falls back: the caller can retry or queue elsewhere.
``cache.layer(name)`` returns a view whose methods take keys without the prefix.

The toolkit's own state (the rate limiter's windows, the reference API's per-key limits)
lives under ``INTERNAL_PREFIX``, which no layer prefix overlaps: nothing done through a
layer (a key, a pattern, a prefix) can read, break or reset it. The ``ratelimit`` layer
holds an application's own counters, never the limiter's state.
"""

from __future__ import annotations

from continuum.errors import ConfigurationError

__all__ = [
    "DEFAULT_LAYER",
    "INTERNAL_PREFIX",
    "LAYERS",
    "LayerSpec",
    "layer_overlapping",
    "layer_spec",
]

#: Where the toolkit keeps its own state; no layer's keys can start with it.
INTERNAL_PREFIX = "continuum:"


class LayerSpec:
    """What a layer is: its key prefix, default TTL (s), database and outage policy.

    A value: compared and hashed by its fields. A plain class rather than a dataclass
    because a dataclass costs about 0.5 ms at import, paid by every cold start.
    """

    __slots__ = ("database", "name", "prefix", "strict", "ttl")

    def __init__(
        self,
        name: str,
        prefix: str,
        ttl: float | None,
        database: str = "primary",
        strict: bool = False,
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.ttl = ttl
        self.database = database
        self.strict = strict

    def _fields(self) -> tuple[str, str, float | None, str, bool]:
        return (self.name, self.prefix, self.ttl, self.database, self.strict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerSpec):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"LayerSpec(name={self.name!r}, prefix={self.prefix!r}, ttl={self.ttl!r}, "
            f"database={self.database!r}, strict={self.strict!r})"
        )


LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec("sessions", "session:", 3600, database="sessions"),
        LayerSpec("query", "query:", 300),
        LayerSpec("memory", "memory:", 1800),
        LayerSpec("ratelimit", "ratelimit:", 60),
        LayerSpec("federation", "fed:queue:", 86400, database="federation", strict=True),
        LayerSpec("websocket", "ws:", 300),
    )
}
_ALIASES = {
    "session": "sessions", "queries": "query", "query_results": "query", "memories": "memory",
    "hot_memories": "memory", "rate_limits": "ratelimit", "fed": "federation",
    "federation_queue": "federation", "ws": "websocket", "pubsub": "websocket",
}  # fmt: skip

#: What calls on the cache itself (not through a layer) use.
DEFAULT_LAYER = LayerSpec("default", "", 300)


def layer_spec(name: str) -> LayerSpec:
    """The layer called ``name`` (a few spellings from the seed are accepted)."""
    if not isinstance(name, str):
        raise ConfigurationError(f"a layer name is a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    spec = LAYERS.get(_ALIASES.get(key, key))
    if spec is None:
        raise ConfigurationError(
            f"unknown cache layer {name!r}; expected one of {', '.join(LAYERS)}"
        )
    return spec


def layer_overlapping(prefix: str) -> LayerSpec | None:
    """The layer whose keys a key prefix can share (one prefix starts the other), if any."""
    for spec in LAYERS.values():
        if prefix.startswith(spec.prefix) or spec.prefix.startswith(prefix):
            return spec
    return None


# The namespace promise holds by construction: a layer added later that overlaps it fails here.
assert layer_overlapping(INTERNAL_PREFIX) is None, "a layer prefix overlaps INTERNAL_PREFIX"
