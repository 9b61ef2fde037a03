"""Frozen value records for the handler's import path, without ``dataclasses``' cost.

``@dataclass(frozen=True)`` writes ``__init__``, ``__eq__``, ``__hash__``, ``__repr__``,
``__setattr__`` and ``__delattr__`` as source text and ``exec``-s each one when the class
is created: about 0.7 ms per class, which every cold start pays before its first answer
(bench_coldstart). The public records a handler imports (``WriteResult``,
``RateLimitResult``, ``Script``, ``Database``) are therefore plain slotted classes on
:class:`Record`: they compare, hash, print, copy and pickle as the frozen dataclasses they
replace did, and refuse assignment with the same ``FrozenInstanceError``.
``dataclasses.fields`` and ``asdict`` do not apply to them; ``copy.replace`` (Python
3.13) does, and ``_replace`` everywhere, as on a named tuple. ``UpstashConfig`` stays a
dataclass: the seed's API says it is one.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, ClassVar, Self

__all__ = ["Record"]


class Record:
    """Base of a frozen record. A subclass lists its fields in ``__match_args__`` (also
    the order ``__init__`` takes them and ``repr`` shows them), declares them and any
    private caches in ``__slots__``, and sets them in ``__init__`` with
    ``object.__setattr__``, as a frozen dataclass does."""

    # A dataclass instance can be weakly referenced (a WeakKeyDictionary keyed by a
    # Database, say); a slotted class only with this slot.
    __slots__ = ("__weakref__",)
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]:
        return type(self), self._values()  # copy and pickle rebuild through __init__

    def _replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (what ``dataclasses.replace`` did)."""
        unknown = set(changes) - set(self.__match_args__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values = {name: getattr(self, name) for name in self.__match_args__}
        return type(self)(**{**values, **changes})

    __replace__ = _replace  # copy.replace (Python 3.13)
