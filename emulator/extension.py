"""The emulator's own command table for fakeredis (see ``continuum.emulator.fake``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fakeredis._commands import Signature

_EXTRA: dict[str, Signature] = {}
F = TypeVar("F", bound=Callable[..., Any])


def command(name: str, fixed: tuple[Any, ...], repeat: tuple[Any, ...] = ()) -> Callable[[F], F]:
    """Register an emulator command (``name`` lower-case, as fakeredis looks it up)."""

    def decorator(func: F) -> F:
        _EXTRA[name] = Signature(name, func.__name__, fixed, repeat)
        return func

    return decorator
