"""The Cloudflare starter as a Worker: its ``entry.py`` under the real Pyodide runtime with
the real ``workers`` SDK, talking to the emulator through the fetch transport.

``wrangler dev`` cannot run offline (it downloads its runtime), so this reuses the
platform tests' Node host (``tests/platforms/cloudflare/worker_host.mjs``), which loads
the npm ``pyodide`` package, installs local wheels only and calls
``Default(ctx, env).fetch`` as workerd does. The starter's two modules are installed
as a small wheel built here.
"""

from __future__ import annotations

import base64
import json
import queue
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.templates.conftest import New

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_TESTS = ROOT / "tests" / "platforms" / "cloudflare"
if str(PLATFORM_TESTS) not in sys.path:
    sys.path.insert(0, str(PLATFORM_TESTS))

from pyodide_worker import HOST, PYODIDE, worker_wheels  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.node, pytest.mark.timeout(900)]


def starter_wheel(src: Path, out: Path) -> Path:
    """A pure wheel holding the starter's top-level modules (what pywrangler vendors)."""
    wheel = out / "starter_worker-0.0.0-py3-none-any.whl"
    info = "starter_worker-0.0.0.dist-info"
    files = {p.name: p.read_text() for p in sorted(src.glob("*.py"))}
    files[f"{info}/METADATA"] = "Metadata-Version: 2.1\nName: starter-worker\nVersion: 0.0.0\n"
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: continuum-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


class Host:
    """The Node process running the Worker; one JSON line per request and per answer."""

    def __init__(self, workdir: Path, wheels: list[Path]) -> None:
        config = workdir / "host.json"
        config.write_text(json.dumps({
            "pyodide_dir": str(PYODIDE), "wheels": [str(w) for w in wheels],
            "module": "entry", "class": "Default",
        }))  # fmt: skip
        self.log = open(workdir / "host.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["node", str(HOST), str(config)],
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self.next(180)
        assert ready.get("ready"), ready.get("error")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def next(self, timeout: float) -> dict[str, Any]:
        line = self.lines.get(timeout=timeout)
        assert line, f"the Pyodide host exited (code {self.proc.poll()})"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, number: int, method: str, path: str, env: dict[str, str], body: object = None):
        message = {
            "id": number,
            "method": method,
            "url": f"https://starter.example.workers.dev{path}",
            "headers": [["content-type", "application/json"], ["cf-connecting-ip", "192.0.2.7"]],
            "body": None if body is None else base64.b64encode(json.dumps(body).encode()).decode(),
            "env": env,
            "raw": False,
        }
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        answer = self.next(60)
        assert "error" not in answer, answer["error"]
        return answer["status"], json.loads(base64.b64decode(answer["body"]))

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def test_cloudflare_starter_runs_under_pyodide(upstash_emulator, tmp_path: Path, new: New) -> None:
    project = tmp_path / "edge"
    assert new(project, "cloudflare") == 0
    wheels = [*worker_wheels(tmp_path / "wheels"), starter_wheel(project / "src", tmp_path)]
    host = Host(tmp_path, wheels)
    try:
        env = {**upstash_emulator.env, "HITS_PER_MINUTE": "2"}
        assert host.send(1, "GET", "/", env) == (200, {"service": "edge", "backend": "upstash"})
        assert host.send(2, "PUT", "/notes/w", env, {"text": "from pyodide"})[0] == 201
        assert host.send(3, "GET", "/notes/w", env)[1]["note"] == {"text": "from pyodide"}
        hits = [host.send(n, "GET", "/hits/home", env) for n in (4, 5, 6)]
        assert [status for status, _ in hits] == [200, 200, 429]
        assert hits[1][1]["hits"] == 2
    finally:
        host.close()
    assert upstash_emulator.billed() > 0  # the Worker's fetch transport reached the emulator
