"""The seed's ten examples run as scripts, against the emulator and in local mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# What a user must see in each example's output, on every backend.
EXPECTED: dict[str, list[str]] = {
    "01_basic_operations.py": ["get: {'name': 'Alice'}", "exists: True", "after delete: None",
                               "pattern delete removed: 3"],
    "02_session_caching.py": ["theme now: light", "invalidated sessions: 2"],
    "03_query_caching.py": ["same both times: True", "expensive searches run: 1",
                            "get_or_set: True, expensive searches run: 2"],
    "04_rate_limiting.py": ["allowed: 100 of 105", "Usage: 100/100", "after reset allowed: True"],
    "05_pattern_deletion.py": ["deleted by pattern: 50", "other user kept: True",
                               "deleted by prefix 'tag:a*': 1", "'tag:ab:1' kept: True",
                               "refused:"],
    "06_pipelines.py": ["Cached 10 memories in one operation", "error: CommandError"],
    "07_hot_memories.py": ["hot: c4", "stored under: memory:c1"],
    "08_fallback.py": ["write stored: True", "read back in the same request: {'user': 'alice'}"],
    "09_federation_queue.py": ["for 86400 s", "drained: 1"],
    "10_cost_optimization.py": ["round trip", "refused: encoded value is"],
    "11_migration.py": ["parallel run read: {'name': 'Alice', 'plan': 'pro'}",
                        "at 100%: 1000 of 1000 keys read Upstash first",
                        "rollout read: {'name': 'Bob'}", "shadow mismatches: 0"],
}  # fmt: skip

#: Examples that also need a traditional Redis (REDIS_URL): the suite's redis-server.
NEEDS_REDIS = {"11_migration.py"}


def extra_env(name: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if name in NEEDS_REDIS:
        return {"REDIS_URL": request.getfixturevalue("redis_url")}
    return {}


def run(name: str, env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_against_the_emulator(
    name: str, emulator: Any, request: pytest.FixtureRequest
) -> None:
    upstash = {"UPSTASH_REDIS_REST_URL": emulator.url, "UPSTASH_REDIS_REST_TOKEN": emulator.token}
    out = run(name, {**upstash, **extra_env(name, request)})
    for line in EXPECTED[name]:
        assert line in out
    if name == "08_fallback.py":
        assert "degraded: True" in out and "circuit: open" in out
        assert "backend while down: local" in out
    if name == "10_cost_optimization.py":
        assert "pipeline: 20 commands, 1 round trip(s)" in out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_in_local_mode(name: str, request: pytest.FixtureRequest) -> None:
    out = run(name, {"CONTINUUM_CACHE_MODE": "local", **extra_env(name, request)})
    for line in EXPECTED[name]:
        assert line in out
