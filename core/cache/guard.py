"""The one rule against deleting everything, for every path that deletes by pattern.

A pattern (or prefix) that does not start with at least one literal character can match
every key in its scope: ``*``, ``?*``, ``[a-z]*``, ``[^!]*`` and the empty prefix all
can. Such a deletion needs the explicit flag, spelled the same everywhere: ``allow_all``
in the library (``delete_pattern``), ``"allow_all": true`` on the reference API, ``--yes``
(or a typed "yes") in ``continuum invalidate``. Only the value ``True`` counts, so a
``"false"`` read from a form or an environment variable never means yes.
"""

from __future__ import annotations

from continuum.errors import ValidationError
from continuum.namespace import LayerSpec

__all__ = ["check_pattern", "check_prefix", "confirmed", "literal_start", "scope_of"]

_SPECIAL = frozenset("*?[")


def literal_start(pattern: str) -> str:
    """The characters a glob must match exactly before its first wildcard (Redis's
    ``\\`` escapes taken into account)."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(next(chars, "\\"))
        elif c in _SPECIAL:
            break
        else:
            out.append(c)
    return "".join(out)


def scope_of(layer: LayerSpec) -> str:
    """What a pattern is relative to, in words: a layer, or the whole database."""
    return f"the {layer.name!r} layer" if layer.prefix else "the database"


def confirmed(flag: object, name: str = "allow_all") -> bool:
    """True only for ``True`` itself; anything but a bool is a mistake worth saying."""
    if not isinstance(flag, bool):
        raise ValidationError(f"{name} must be True or False, not {flag!r}")
    return flag


def check_pattern(
    pattern: object, *, allow_all: object, scope: str, how: str = "pass allow_all=True"
) -> str:
    """``pattern`` if it may run: it starts with a literal, or ``allow_all`` is True.
    ``how`` says how the caller's interface spells the flag."""
    if not isinstance(pattern, str):
        raise ValidationError(f"a pattern is a str glob, not {type(pattern).__name__}")
    if not confirmed(allow_all) and not literal_start(pattern):
        raise ValidationError(
            f"pattern {pattern[:64]!r} can match every key in {scope} (it does not start with "
            f"a literal character); {how} to mean it"
        )
    return pattern


def check_prefix(
    prefix: object, *, scope: str, how: str = "use delete_pattern('*', allow_all=True)"
) -> str:
    """A literal prefix to delete by: never empty (that is every key in ``scope``)."""
    if not isinstance(prefix, str):
        raise ValidationError(f"a prefix is a str, not {type(prefix).__name__}")
    if not prefix:
        raise ValidationError(f"an empty prefix matches every key in {scope}; {how} to mean it")
    return prefix
