"""One round trip for a script and an operation: a check travels with the command it guards.

The reference API checks an API key's limit before each cache call. Sent one after the
other they cost two round trips; :func:`joined_op` sends them as one, without letting a
refused request change any data:

- a **read** batch goes out with the script appended (one ``/pipeline`` request); when
  the script refuses, the read's replies are dropped, unread;
- a **write** of one command goes *inside* the script (:attr:`Join.gate`), which runs it
  only when it admits the request; one ``EVALSHA``, and nothing is written on refusal;
- anything else (a transaction, a write the gate cannot carry, an operation that sends
  nothing) runs the script alone first, then the operation if it was admitted.

The operation keeps its own layer: the joined batch names the operation's own commands as
its ``standin``, so when Upstash cannot answer, the fallback store runs exactly those (the
script's slot then holds the :class:`CacheUnavailable` for the caller's outage policy).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from continuum.cache.drive import Batch, Call, Operation, Replies
from continuum.errors import CacheUnavailable
from continuum.gate import REFUSED, Failed, Join, JoinedResult, ScriptReply
from continuum.rest import Command, Reply
from continuum.sansio import resume

__all__ = ["joined_op"]


def joined_op(op: Operation[Any] | Batch, join: Join) -> Operation[JoinedResult]:
    """Run ``join``'s script and ``op`` in one round trip where the data allows."""
    if isinstance(op, Batch):  # a one-step operation given as its lone step (get, set)
        op = _lone(op)
    try:
        step = next(op)
    except StopIteration as stop:  # the operation sends nothing: the script goes alone
        return (yield from _alone(join)), stop.value
    if type(step) is Batch and not step.transaction:
        if not step.write:
            return (yield from _with_read(op, step, join))
        if len(step.commands) == 1:
            gated = join.gate(step.commands[0])
            if gated is not None:
                return (yield from _with_write(op, step, gated, join))
    return (yield from _after(op, (yield from _alone(join)), join, step=step))


def _lone(step: Batch) -> Operation[Any]:
    """A lone step (as ``get``/``set`` hand their Batch over) as a one-step operation."""
    return (yield step)


def _alone(join: Join) -> Generator[Any, Any, ScriptReply]:
    try:
        reply: Reply = yield Call(join.alone)
    except CacheUnavailable as exc:
        return exc
    return reply


def _with_read(op: Operation[Any], step: Batch, join: Join) -> Operation[JoinedResult]:
    batch = Batch(
        [*step.commands, join.command], write=True, touches=step.touches, fresh=step.fresh,
        standin=step.commands,
    )  # fmt: skip
    try:
        replies: Replies = yield batch
    except CacheUnavailable as exc:  # a strict layer: no fallback answered
        return (yield from _after(op, exc, join, throw=exc))
    if len(replies) == len(step.commands):  # the fallback store answered the read alone
        return (yield from _after(op, _fell_back(), join, send=replies))
    return (yield from _after(op, replies[-1], join, send=replies[:-1]))


def _with_write(
    op: Operation[Any], step: Batch, gated: Command, join: Join
) -> Operation[JoinedResult]:
    batch = Batch([gated], write=True, touches=step.touches, standin=step.commands)
    try:
        replies: Replies = yield batch
    except CacheUnavailable as exc:
        return (yield from _after(op, exc, join, throw=exc))
    reply = replies[0]
    if not isinstance(reply, list):  # the fallback store ran the write itself
        return (yield from _after(op, _fell_back(), join, send=replies))
    own, carried = join.split(reply)
    if carried is None:
        op.close()
        return own, REFUSED
    return (yield from _after(op, own, join, send=[carried]))


def _after(
    op: Operation[Any],
    reply: ScriptReply,
    join: Join,
    *,
    step: Any = None,
    send: Replies | None = None,
    throw: BaseException | None = None,
) -> Operation[JoinedResult]:
    """The operation carried on, unless the script refused: from ``step`` (not yet sent),
    or from its first batch's replies ``send`` (or error ``throw``)."""
    if not join.admits(reply):
        op.close()
        return reply, REFUSED
    try:
        value = yield from resume(op, step, send=send, throw=throw)
    except Exception as exc:  # the script's answer must reach the caller all the same
        return reply, Failed(exc)
    return reply, value


def _fell_back() -> CacheUnavailable:
    return CacheUnavailable("Upstash did not answer; the fallback store served the command")
