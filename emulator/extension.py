"""The emulator's own command table for fakeredis (see ``continuum.emulator.fake``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fakeredis._commands import Signature

_EXTRA: dict[str, Signature] = {}


def command(name: str, fixed: tuple[Any, ...], repeat: tuple[Any, ...] = ()) -> Callable[..., Any]:
    """Register an emulator command (``name`` lower-case, as fakeredis looks it up)."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        _EXTRA[name] = Signature(name, func.__name__, fixed, repeat)  # type: ignore[arg-type]
        return func

    return decorator
