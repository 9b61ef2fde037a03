"""What the client costs per operation, against the floor and against the official SDK.

- ``UpstashCache.get``/``set`` per operation against raw ``httpx`` POSTs of the same
  command to the same emulator (the floor: one request, JSON parse, nothing else).
  Target: at most 1.3x. Everything the client adds (validation, codec, protocol, retry
  bookkeeping, breaker, meter) must stay small next to one HTTP round trip.
- The same operations against the ``upstash-redis`` 1.8 SDK (``Redis.get``/``Redis.set``)
  on the same emulator. Target: faster.

Samples are interleaved (ours, floor, SDK, ours, ...) and the best of several runs is
kept, because the machine is shared and noisy; the ratios are what we compare.

    python -m bench.bench_client            # or: python -m bench.run --only client
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from bench.report import Figure, per_op_seconds

REPRODUCE = "python -m bench.run --only client"
VALUE = {"user_id": 123, "username": "alice", "roles": ["admin"], "theme": "dark"}


def _best(samples: dict[str, Callable[[], object]], repeat: int, number: int) -> dict[str, float]:
    best = dict.fromkeys(samples, float("inf"))
    for _ in range(repeat):
        for name, fn in samples.items():
            best[name] = min(best[name], per_op_seconds(fn, repeat=1, number=number))
    return best


def _contenders(url: str, token: str) -> dict[str, dict[str, Callable[[], object]]]:
    import httpx
    from upstash_redis import Redis

    from continuum import UpstashCache

    ours = UpstashCache(rest_url=url, rest_token=token, mode="rest")
    sdk = Redis(url=url, token=token)
    raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
    text = json.dumps(VALUE)
    get_body = json.dumps(["GET", "bench:k"]).encode()
    set_body = json.dumps(["SET", "bench:k", text, "EX", "300"]).encode()
    ours.set("bench:k", VALUE)

    def raw_get() -> Any:
        return raw.post("/", content=get_body).json()

    def raw_set() -> Any:
        return raw.post("/", content=set_body).json()

    return {
        "get": {
            "ours": lambda: ours.get("bench:k"),
            "raw": raw_get,
            "sdk": lambda: sdk.get("bench:k"),
        },
        "set": {
            "ours": lambda: ours.set("bench:k", VALUE, ttl=300),
            "raw": raw_set,
            "sdk": lambda: sdk.set("bench:k", text, ex=300),
        },
    }


def run(quick: bool = False) -> list[Figure]:
    from continuum.emulator import EmulatorServer

    repeat, number = (4, 50) if quick else (15, 100)
    server = EmulatorServer("fakeredis", token="bench-token", readonly_token="bench-ro")
    server.start()
    figures: list[Figure] = []
    try:
        for op, samples in _contenders(server.url, server.token).items():
            for fn in samples.values():  # warm every connection first
                fn()
            best = _best(samples, repeat, number)
            us = {name: seconds * 1e6 for name, seconds in best.items()}
            figures.append(
                Figure(
                    name=f"{op}: UpstashCache vs raw httpx POST",
                    value=round(us["ours"], 1),
                    unit="us/op",
                    baseline_name=f"httpx.post('/', {op.upper()} ...) to the same emulator",
                    baseline=round(us["raw"], 1),
                    target="ratio <= 1.3",
                    met=us["ours"] <= 1.3 * us["raw"],
                    reproduce=REPRODUCE,
                    note="emulator over fakeredis on loopback, best of interleaved runs",
                )
            )
            figures.append(
                Figure(
                    name=f"{op}: UpstashCache vs upstash-redis SDK",
                    value=round(us["ours"], 1),
                    unit="us/op",
                    baseline_name=f"upstash_redis.Redis.{op} 1.8.0",
                    baseline=round(us["sdk"], 1),
                    target="< baseline",
                    met=us["ours"] < us["sdk"],
                    reproduce=REPRODUCE,
                )
            )
    finally:
        server.stop()
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else "-"
        print(f"{figure.name}: {figure.value} {figure.unit} vs {figure.baseline} ({ratio}) "
              f"target {figure.target}: {'met' if figure.met else 'NOT met'}")  # fmt: skip
