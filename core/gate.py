"""A check that guards a cache operation: what a rate limiter hands the cache, and what
comes back (see :mod:`continuum.cache.joined`, which sends both in one round trip).

It sits below both the cache and the limiter, which each need it and must not import
each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from continuum.errors import CacheUnavailable, CommandError
from continuum.rest import Command, Reply

__all__ = ["REFUSED", "Failed", "Join", "JoinedResult", "ScriptReply"]

#: A script's answer as the joined operation saw it: its reply, a per-command error, or
#: the outage that kept it from an answer.
ScriptReply = Reply | CommandError | CacheUnavailable


class _Refused:
    """The operation's result when the script refused: it was never run (or read)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED = _Refused()


class Failed:
    """The operation raised: the script's answer still stands, the error is the result."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


JoinedResult = tuple[ScriptReply, Any]


class Join:
    """What a script check needs of the operation it travels with.

    ``command``: the script's command (``EVALSHA``), appended to a read batch.
    ``gate(command)``: the script's command carrying ``command``, which it runs only when
    it admits; None when it cannot carry it. ``split(reply)``: a gated reply as (the
    script's own reply, the carried command's reply or None when it did not run).
    ``admits(reply)``: whether the script's answer (or outage) admits the operation.
    ``alone()``: run the script on its own (the cache's ``run_script``; raises
    :class:`CacheUnavailable` when Upstash cannot answer).
    """

    __slots__ = ("admits", "alone", "command", "gate", "split")

    def __init__(
        self,
        command: Command,
        gate: Callable[[Command], Command | None],
        split: Callable[[Reply], tuple[Reply, Reply | None]],
        admits: Callable[[ScriptReply], bool],
        alone: Callable[[], Any],
    ) -> None:
        self.command = command
        self.gate = gate
        self.split = split
        self.admits = admits
        self.alone = alone
