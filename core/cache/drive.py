"""Operations written once, run by a sync or an async driver (the sans-I/O pattern).

An operation is a generator: it yields a :class:`Batch` of commands, receives that batch's
replies (a list with one ``Reply`` or ``CommandError`` per command) and finally returns
its result. It may also yield a :class:`Pause` (the driver sleeps, bounded by the caller's
deadline) or a :class:`Call` (the driver calls a user function, awaiting it if needed).
Exceptions raised while executing a step are thrown into the generator, so an operation
may handle them (or let them propagate). The drivers are :mod:`continuum.sansio`'s, which
also own :class:`Pause` and :class:`Call` (re-exported here).

    def get(key):
        replies = yield Batch([("GET", key)], write=False)
        return replies[0]

    value = drive(get("k"), executor)          # sync
    value = await adrive(get("k"), aexecutor)  # async
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar

from continuum.errors import CacheUnavailable, CommandError, OutcomeUnknown
from continuum.rest import Command, Reply, repeatable
from continuum.sansio import Call, Pause, arun, run

__all__ = ["Batch", "Call", "Operation", "Pause", "Replies", "Step", "adrive", "drive"]

T = TypeVar("T")
Replies = list[Reply | CommandError]


class Batch:
    """Commands to run together; ``write`` marks them non-idempotent for retries.

    ``touches`` names the keys the batch changes (``None``: possibly any key, as for a
    pattern delete), so the scope's read memo forgets them. ``fresh`` reads from the
    server even when the memo has an answer: polling for another caller's write.
    ``standin``, when set, is what the fallback store runs instead of ``commands`` (a
    check joined to a command: :mod:`continuum.cache.joined`).
    A batch is never changed once yielded. A plain slotted class: one is built for
    nearly every call (frozen would cost three times as much), and a dataclass costs
    about 0.5 ms at import, paid by every cold start.
    """

    __slots__ = ("commands", "fresh", "standin", "touches", "transaction", "write")

    def __init__(
        self,
        commands: Sequence[Command],
        write: bool,
        transaction: bool = False,
        touches: Sequence[str] | None = (),
        fresh: bool = False,
        standin: Sequence[Command] | None = None,
    ) -> None:
        self.commands = commands
        self.write = write
        self.transaction = transaction
        self.touches = touches
        self.fresh = fresh
        self.standin = standin

    def __repr__(self) -> str:  # names only: the arguments are the user's data
        names = ", ".join(_name(c) for c in self.commands)
        return f"Batch([{names}], write={self.write!r}, transaction={self.transaction!r})"

    def unrepeatable(self, failure: CacheUnavailable) -> OutcomeUnknown | None:
        """The error to raise instead of answering from a fallback store: when this
        batch may have run on the server (``failure.may_have_run``) and running it again
        elsewhere would not leave the same data, its outcome is unknown."""
        commands = self.commands if self.standin is None else self.standin
        if not failure.may_have_run or all(repeatable(c) for c in commands):
            return None
        names = ", ".join(dict.fromkeys(_name(c) for c in commands))
        return OutcomeUnknown(
            f"the outcome of {names} is unknown: it may have run on Upstash, but {failure}"
        )


def _name(command: Command) -> str:
    name = command[0]
    return (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)).upper()


Step = Batch | Pause | Call
Operation = Generator[Step, Any, T]


def drive(
    op: Operation[T],
    execute: Callable[[Batch], Replies],
    pause: Callable[[float], None] = time.sleep,
) -> T:
    """Run an operation to completion with a synchronous executor."""
    return run(op, execute, pause)


async def adrive(
    op: Operation[T],
    execute: Callable[[Batch], Awaitable[Replies]],
    pause: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """Run an operation to completion with an asynchronous executor."""
    return await arun(op, execute, pause)
