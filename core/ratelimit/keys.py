"""Limiter keys built from identifiers that are arbitrary, possibly hostile, user input.

An identifier is percent-escaped byte by byte (everything but ``A-Z a-z 0-9 - . _ ~``
becomes ``%XX``), so ``a:b`` and ``a`` + ``:b``, glob characters, spaces and NUL all get
distinct keys that a ``ratelimit:*`` pattern scan can't be steered by. Escaped forms
longer than ``MAX_ESCAPED`` are replaced by ``%h`` + the SHA-256 of the identifier: no
escaped form starts with ``%h`` (escapes are ``%`` + two hex digits), so the two forms
never meet, and a 40 KB identifier still yields a key far under Upstash's 32 KB limit.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote_from_bytes

from continuum.errors import ValidationError
from continuum.namespace import INTERNAL_PREFIX, layer_overlapping

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_PREFIX",
    "MAX_ESCAPED",
    "Identifier",
    "check_prefix",
    "encode_identifier",
    "limiter_key",
]

#: Where limiters keep their windows by default: inside the toolkit's own namespace.
DEFAULT_PREFIX = INTERNAL_PREFIX + "rl:"
#: The reference API's per-key limits, apart from the limits its callers ask it to check.
API_KEY_PREFIX = INTERNAL_PREFIX + "api:"

MAX_ESCAPED = 200

#: What may identify a caller: text, bytes, or an integer id (the seed passes ``user_id``),
#: which is keyed by its decimal form, so ``42`` and ``"42"`` are the same caller.
Identifier = str | bytes | int


def encode_identifier(identifier: Identifier) -> str:
    """The key-safe, injective form of ``identifier``."""
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        identifier = str(identifier)
    if isinstance(identifier, str):
        # surrogatepass: lone surrogates (possible in decoded hostile input) stay distinct
        raw = identifier.encode("utf-8", "surrogatepass")
    elif isinstance(identifier, bytes | bytearray | memoryview):
        raw = bytes(identifier)
    else:
        raise ValidationError(
            f"a rate-limit identifier must be str, bytes or int, not {type(identifier).__name__}"
        )
    if len(raw) <= MAX_ESCAPED:  # escaping never shortens: longer input is hashed unread
        escaped = quote_from_bytes(raw, safe="-._~")
        if len(escaped) <= MAX_ESCAPED:
            return escaped
    return "%h" + hashlib.sha256(raw).hexdigest()


def limiter_key(prefix: str, algorithm: str, window_us: int, identifier: Identifier) -> str:
    """``<prefix><algorithm>:<window>:<encoded identifier>``.

    The window is part of the key so limits on the same identifier with different windows
    (a per-second and a per-hour limit) keep separate state. It is written in milliseconds,
    or as ``<microseconds>us`` when it is not a whole number of them, so that windows of
    1.1 ms and 1.2 ms never share a key (and never meet a millisecond form).
    """
    window = str(window_us // 1000) if window_us % 1000 == 0 else f"{window_us}us"
    return f"{prefix}{algorithm}:{window}:{encode_identifier(identifier)}"


def check_prefix(prefix: object) -> str:
    """A limiter's key prefix, refused where a cache layer could reach its state."""
    if not isinstance(prefix, str):
        raise ValidationError("prefix must be a str")
    spec = layer_overlapping(prefix)
    if spec is not None:
        raise ValidationError(
            f"a limiter prefix {prefix!r} would keep its state where the {spec.name!r} layer "
            f"({spec.prefix!r}) can read and delete it; use one under {INTERNAL_PREFIX!r} "
            f"(the default is {DEFAULT_PREFIX!r})"
        )
    return prefix
