"""Which Lua scripts each database holds: a script's first use sends EVAL, later ones EVALSHA.

EVALSHA saves resending a script's text, but on a database that does not hold the script
yet (a new container's first check, or after ``SCRIPT FLUSH``) it only buys a NOSCRIPT
answer and a second round trip. So the executor sends, for every script built with
:class:`~continuum.rest.protocol.Script` in this process:

- ``EVAL`` (which also loads it) until this process has seen the database run it;
- ``EVALSHA`` afterwards;
- and, when a database answers NOSCRIPT all the same (its scripts were flushed), the
  script is forgotten for that database and sent again as ``EVAL`` at once. Nothing ran
  for a NOSCRIPT answer, so that resend is safe; it is done only when every command after
  the first NOSCRIPT of the batch was a NOSCRIPT too (so the resent ones still run after
  everything before them) and never in a transaction (it would no longer be one). Such a
  slot keeps its ``NoScriptError`` and the next use sends ``EVAL``.

The knowledge is process-wide and keyed by database URL, like the circuit breakers:
every client of one database in a container shares it. Losing it costs one EVAL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from continuum.errors import CommandError, NoScriptError

__all__ = ["ScriptBook", "register", "scripts"]

Reply = object
Command = Sequence[str | bytes | int | float]


class ScriptBook:
    """Script texts by SHA1, and which (database, SHA1) pairs are known to be loaded."""

    def __init__(self) -> None:
        self._sources: dict[str, str] = {}
        self._loaded: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def register(self, sha1: str, source: str) -> None:
        self._sources[sha1] = source

    def forget(self, database: str | None = None) -> None:
        """Assume nothing is loaded (on ``database``, or anywhere)."""
        with self._lock:
            if database is None:
                self._loaded.clear()
            else:
                self._loaded = {pair for pair in self._loaded if pair[0] != database}

    def is_loaded(self, database: str, sha1: str) -> bool:
        return (database, sha1) in self._loaded

    def prepare(self, commands: Sequence[Command]) -> list[int]:
        """The positions of EVALSHA commands of known scripts (empty for most batches)."""
        return [i for i, command in enumerate(commands) if self._known_evalsha(command)]

    def _known_evalsha(self, command: Command) -> bool:
        name = command[0]
        return (
            type(name) is str
            and len(name) == 7
            and name.upper() == "EVALSHA"
            and len(command) > 1
            and command[1] in self._sources
        )

    def as_sent(self, database: str, command: Command, *, force_eval: bool = False) -> Command:
        """``command`` (an EVALSHA of a known script) as it should go: EVAL unless loaded."""
        sha1 = str(command[1])
        if not force_eval and (database, sha1) in self._loaded:
            return command
        return ("EVAL", self._sources[sha1], *command[2:])

    def observe(self, database: str, sha1: str, reply: Reply) -> bool:
        """Record what ``reply`` says of the script; True when it answered NOSCRIPT."""
        if isinstance(reply, NoScriptError):
            with self._lock:
                self._loaded.discard((database, sha1))
            return True
        if not isinstance(reply, CommandError):  # ran: the database holds it now
            self._loaded.add((database, sha1))
        return False


def resendable(noscript: Sequence[int], size: int, transaction: bool) -> bool:
    """Whether the NOSCRIPT slots can be sent again after the batch: they are its tail."""
    if transaction or not noscript:
        return False
    return list(noscript) == list(range(size - len(noscript), size))


#: The process's book: what every executor consults.
scripts = ScriptBook()


def register(sha1: str, source: str) -> None:
    """Remember a script's text so its EVALSHA can go as EVAL where it is not loaded."""
    scripts.register(sha1, source)
