"""The four limiting algorithms: a Lua script each, and the Python twin that mirrors it.

Every check is one script run on the server's clock (``redis.call('TIME')``), so all
instances agree on time however skewed their own clocks are, and read-decide-write is
atomic. The scripts follow what Upstash accepts:

- every key arrives through ``KEYS`` (one per check); no key is built inside a script;
- only plain data commands plus ``TIME``; nothing database-wide;
- no ``#!lua flags=allow-key-locking`` first line. That flag would let Upstash lock only
  ``KEYS`` instead of the whole database, but redis-server 7.0 rejects it and fakeredis
  rejects any ``#!`` line, so the same text could not run on every backend the toolkit
  supports (the emulator would have to rewrite it, and EVALSHA hashes would differ from
  what was tested). The scripts are a handful of O(1)/O(log n) commands, so holding the
  global lock costs microseconds; correctness everywhere is worth more.

Billed commands per check (EVAL counts 1 plus each ``redis.call``): sliding log 5 when
admitted (6 when the log must be trimmed first), 5 when refused; fixed window, sliding
window and token bucket keep one string written with its expiry in a single SET: 4 when
admitted, 3 when refused. Repeat offenders cost 0 (see ``blocked``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from continuum.local import LocalCache, Reply, register_local_script
from continuum.ratelimit import twins
from continuum.rest import Script

__all__ = ["ALGORITHMS", "RESET", "Algorithm", "LimiterScript"]


class Algorithm(StrEnum):
    """How requests are counted against the limit."""

    SLIDING_LOG = "sliding_log"  # exact: any window-long interval admits at most `limit`
    SLIDING_WINDOW = "sliding_window"  # two weighted fixed windows; constant memory
    FIXED_WINDOW = "fixed_window"  # windows aligned on the server clock's epoch
    TOKEN_BUCKET = "token_bucket"  # bursts up to `limit`, refilled `limit` per window


def _reported_calls(reply: Reply) -> int:
    if isinstance(reply, list) and len(reply) in (7, 8):  # 8: a gated command's reply last
        calls = reply[6]
        if isinstance(calls, int) and not isinstance(calls, bool) and 0 < calls < 1_000_000:
            return calls
    return 0


class LimiterScript:
    """A limiter script: what Upstash runs (``script``) and its local twin.

    ``gated`` is the same check guarding one command, which runs only when admitted
    (``_gate.lua``); the command's arguments start at ARGV[``gated_from``].
    ``inner_calls`` says how many redis.call()s a reply reports the script made (what
    Upstash bills on top of the EVAL): the limiter scripts report it last; 0 for a reply
    that does not. A plain class, not a dataclass, to keep cold starts short (see
    :class:`continuum.sansio.Pause`).
    """

    __slots__ = ("gated", "gated_from", "inner_calls", "name", "script", "twin")

    def __init__(
        self,
        name: str,
        script: Script,
        twin: twins.Twin | None = None,
        *,
        gated: Script | None = None,
        gated_from: int = 0,
        inner_calls: Callable[[Reply], int] = _reported_calls,
    ) -> None:
        self.name = name
        self.script = script
        self.twin = twin
        self.gated = gated
        self.gated_from = gated_from
        self.inner_calls = inner_calls

    def __repr__(self) -> str:
        return f"LimiterScript(name={self.name!r}, sha1={self.script.sha1!r})"


def _read(name: str) -> str:
    """A script's text, through this package's loader: it reads a file whether the
    package sits in a folder or in a zip, as ``importlib.resources`` would, without the
    zipfile module and resource readers that it imports on every cold start (~1.5 ms)."""
    loader: Any = __spec__.loader  # a folder's or a zip's: both have get_data(path)
    path = str(Path(__file__).parent / "scripts" / f"{name}.lua")
    return cast(bytes, loader.get_data(path)).decode("utf-8")


_PRELUDE = _read("_prelude")


def _load(name: str, *, prelude: bool = True) -> Script:
    """The script as it runs: the shared prelude (clock, arguments, call counting), then
    the algorithm's own text."""
    return Script.from_source((_PRELUDE if prelude else "") + _read(name))


def _local_call(store: LocalCache) -> twins.Call:
    """A one-command ``call`` on ``store`` for a twin, raising command errors like Lua.

    ``TIME`` answers from the store's own clock, so local mode runs on one clock too.
    """

    def call(*argv: str | bytes | int | float) -> Reply:
        reply = store.execute([argv], write=True)[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return call


def _register(entry: LimiterScript) -> LimiterScript:
    twin = entry.twin
    if twin is not None:

        def run_twin(store: LocalCache, keys: list[bytes], args: list[bytes]) -> Reply:
            return cast(Reply, twin(_local_call(store), keys, args))

        register_local_script(entry.script.source, run_twin)
    return entry


_GATE = _read("_gate")


def _gated(name: str, first: int) -> Script:
    """The algorithm's check as the function ``decide``, then the gate (``_gate.lua``)."""
    body = f"local function decide()\n{_read(name)}\nend\nlocal first = {first}\n"
    return Script.from_source(_PRELUDE + body + _GATE)


def _entry(algorithm: Algorithm) -> LimiterScript:
    # ARGV: window_us, limit, cost, and the sliding log's nonce; the gated command next
    first = 5 if algorithm is Algorithm.SLIDING_LOG else 4
    name = algorithm.value
    return LimiterScript(
        name, _load(name), getattr(twins, name), gated=_gated(name, first), gated_from=first
    )


ALGORITHMS: dict[Algorithm, LimiterScript] = {
    algorithm: _register(_entry(algorithm)) for algorithm in Algorithm
}

RESET = _register(
    LimiterScript(
        "reset", _load("reset", prelude=False), twins.reset, inner_calls=lambda reply: 1
    )  # DEL
)
