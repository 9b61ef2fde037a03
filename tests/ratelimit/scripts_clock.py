"""Run a limiter script, or its Python twin, at a chosen instant.

The shipped scripts read the server's clock (``call('TIME')``, their counting wrapper
around ``redis.call``). To test their logic deterministically on a real server, the test
copy below takes the clock from its last two arguments instead, still counted as the one
call it replaces; that is the only difference from the shipped text (asserted below).
The twin gets the same instant through its ``call``'s answer to ``TIME``.
"""

from __future__ import annotations

from collections.abc import Callable

from continuum.ratelimit import twins
from continuum.ratelimit.algorithms import ALGORITHMS, Algorithm

_TIME = "call('TIME')"
_FROZEN = "(function() calls = calls + 1 return {ARGV[#ARGV - 1], ARGV[#ARGV]} end)()"


def frozen_source(algorithm: Algorithm) -> str:
    source = ALGORITHMS[algorithm].script.source
    assert source.count(_TIME) == 1, "each script reads the server clock exactly once"
    return source.replace(_TIME, _FROZEN)


def _clock_args(now_us: int) -> list[str]:
    return [str(now_us // 1_000_000), str(now_us % 1_000_000)]


def _args(window_us: int, limit: int, cost: int, nonce: str, algorithm: Algorithm) -> list[str]:
    args = [str(window_us), str(limit), str(cost)]
    if algorithm is Algorithm.SLIDING_LOG:
        args.append(nonce)
    return args


def run_lua(
    call: Callable[..., object],
    algorithm: Algorithm,
    key: str,
    *,
    window_us: int,
    limit: int,
    cost: int,
    now_us: int,
    nonce: str = "n",
) -> object:
    args = _args(window_us, limit, cost, nonce, algorithm) + _clock_args(now_us)
    return call("EVAL", frozen_source(algorithm), 1, key, *args)


def run_twin(
    call: Callable[..., object],
    algorithm: Algorithm,
    key: str,
    *,
    window_us: int,
    limit: int,
    cost: int,
    now_us: int,
    nonce: str = "n",
) -> object:
    def frozen_call(*argv: object) -> object:
        if argv == ("TIME",):
            return [part.encode() for part in _clock_args(now_us)]
        return call(*argv)

    twin = getattr(twins, algorithm.value)
    args = [a.encode() for a in _args(window_us, limit, cost, nonce, algorithm)]
    return twin(frozen_call, [key.encode()], args)
