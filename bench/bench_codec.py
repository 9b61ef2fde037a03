"""Stored bytes per value for each codec on the seed's payloads, JSON = 1.0.

Upstash bills storage and bandwidth, so bytes per value is the number that matters.
Payloads follow the seed: a session (user, roles, preferences), a page of query results,
and a hot memory record (a concept with links and a small embedding). Each codec encodes
the same value; the figure is its size against plain JSON in the same run.

- ``json``: the default, readable by ``@upstash/redis`` and every other client;
- ``json+zlib``: the default with compression (only kept when it saves bytes);
- ``msgpack`` / ``msgpack+zlib``: ``use_msgpack=True`` (the seed says 30-50% smaller).

    python -m bench.bench_codec            # or: python -m bench.run --only codec
"""

from __future__ import annotations

import random
import sys
from typing import Any

from bench.report import Figure

REPRODUCE = "python -m bench.run --only codec"


def payloads() -> dict[str, Any]:
    rng = random.Random(7)  # the same values every run
    session = {
        "user_id": "user_8f3a2c",
        "username": "alice",
        "roles": ["admin", "editor"],
        "preferences": {"theme": "dark", "language": "en", "notifications": True},
        "created_at": 1764028800,
        "expires_at": 1764032400,
    }
    query_results = [
        {
            "id": f"mem_{i:05d}",
            "content": f"Notes on neural networks, part {i}: gradient descent and backpropagation",
            "score": round(rng.random(), 6),
            "tags": ["ml", "neural-networks", "notes"],
            "created_at": 1764000000 + i * 60,
        }
        for i in range(20)
    ]
    memory = {
        "id": "concept_4711",
        "concept": "attention mechanism",
        "content": "Attention lets a model weigh parts of its input by relevance. " * 4,
        "links": [f"concept_{rng.randrange(10000)}" for _ in range(12)],
        "strength": 0.87,
        "access_count": 1423,
        "embedding": [round(rng.uniform(-1, 1), 6) for _ in range(64)],
    }
    return {"session": session, "query results": query_results, "memory record": memory}


def codecs() -> dict[str, Any]:
    from continuum.codec import make_codec

    return {
        "json": make_codec(compress_threshold=None),
        "json+zlib": make_codec(compress_threshold=0),
        "msgpack": make_codec(use_msgpack=True, compress_threshold=None),
        "msgpack+zlib": make_codec(use_msgpack=True, compress_threshold=0),
    }


def run(quick: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    available = codecs()
    for payload_name, value in payloads().items():
        sizes = {name: len(codec.encode(value)) for name, codec in available.items()}
        for name, coded in available.items():
            assert coded.decode(coded.encode(value)) == value  # a size is only worth a round trip
            if name == "json":
                continue
            figures.append(
                Figure(
                    name=f"stored bytes, {payload_name}: {name}",
                    value=sizes[name],
                    unit="bytes",
                    baseline_name="plain JSON (the default codec)",
                    baseline=sizes["json"],
                    target="< baseline",
                    met=sizes[name] < sizes["json"],
                    reproduce=REPRODUCE,
                    note=f"JSON = 1.0, this codec = {sizes[name] / sizes['json']:.2f}",
                )
            )
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(f"{figure.name}: {figure.value} vs {figure.baseline} ({figure.note})")
