"""@upstash/redis, the official JS client, works against the emulator (through Node)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "tests" / "node" / "smoke.mjs"


def _require_node() -> str:
    node = shutil.which("node")
    modules = Path(os.environ.get("CONTINUUM_NODE_MODULES", ROOT / "node_modules"))
    missing = None
    if node is None:
        missing = "node is not installed"
    elif not (modules / "@upstash" / "redis").is_dir():
        missing = "@upstash/redis is not in node_modules (run ./scripts/test, which runs npm ci)"
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    assert node is not None
    return node


@pytest.mark.node
def test_upstash_js_client_smoke(emulator: EmulatorHandle) -> None:
    node = _require_node()
    result = subprocess.run(
        [node, str(SMOKE), emulator.url, emulator.token],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
    assert emulator.billed() > 20
