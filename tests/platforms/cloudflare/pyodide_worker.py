"""Run the Cloudflare Worker under the real Pyodide runtime in Node, for the tests.

``wrangler dev``/workerd download their Pyodide bundle at start, so they cannot run
offline; the npm ``pyodide`` package (0.28.3, Python 3.13: the runtime workerd uses for
our compatibility date) can. ``worker_host.mjs`` loads it, installs local wheels only
and drives ``Default(ctx, env).fetch`` the way workerd does:

- our own wheel, built from a temporary copy of the project (``pip wheel --no-deps``),
  so the repository is never written to;
- the project's runtime dependencies as pure-Python wheels from PyPI and the real
  ``workers-runtime-sdk``, downloaded once into a cache folder
  (``CONTINUUM_WHEEL_CACHE``, default ``.cache/pyodide-wheels``) with
  ``pip download --only-binary=:all:`` for Python 3.13 / any platform.

Loading Pyodide costs seconds, so one Node process serves the whole session. Requests
may overlap (``send_many``), as they do in one workerd isolate, and each carries the
Worker's bindings (``env``), so live and dead Upstash configurations share the process.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from tests.tooling import JsonLinesChild, missing, project_wheel

ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = Path(os.environ.get("CONTINUUM_NODE_MODULES", ROOT / "node_modules"))
PYODIDE = NODE_MODULES / "pyodide"
HOST = Path(__file__).with_name("worker_host.mjs")
WHEEL_CACHE = Path(os.environ.get("CONTINUUM_WHEEL_CACHE", ROOT / ".cache" / "pyodide-wheels"))

SDK = "workers-runtime-sdk"
BOOT_TIMEOUT = 180.0
ANSWER_TIMEOUT = 60.0


def wrangler_cli() -> Path:
    cli = NODE_MODULES / ".bin" / "wrangler"
    if not cli.exists() or shutil.which("node") is None:
        missing("wrangler", "install Node.js 20 and run npm ci (wrangler 4.86.0)")
    return cli


def pyodide_python() -> str:
    """The Python version the npm pyodide package runs, e.g. ``3.13``."""
    lock = json.loads((PYODIDE / "pyodide-lock.json").read_text())
    major, minor, *_ = str(lock["info"]["python"]).split(".")
    return f"{major}.{minor}"


def _pip(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        missing(
            f"the Worker's wheels (pip {args[0]} failed)",
            f"PyPI must be reachable for the first run:\n{(done.stdout + done.stderr)[-3000:]}",
        )


def dependency_wheels() -> list[Path]:
    """Pure-Python wheels of the project's dependencies and the SDK, cached across runs."""
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = sorted([*requirements, SDK])
    stamp = WHEEL_CACHE / "requirements.json"
    if not stamp.exists() or json.loads(stamp.read_text()) != wanted:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        for old in WHEEL_CACHE.glob("*.whl"):
            old.unlink()
        _pip(
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--platform",
            "any",
            "--implementation",
            "py",
            "--python-version",
            pyodide_python(),
            "--dest",
            str(WHEEL_CACHE),
            *wanted,
        )
        stamp.write_text(json.dumps(wanted))
    return sorted(WHEEL_CACHE.glob("*.whl"))


def worker_wheels(workdir: Path) -> list[Path]:
    """Everything the Worker installs: its dependencies, the SDK and our own wheel."""
    if shutil.which("node") is None or not (PYODIDE / "pyodide.mjs").exists():
        missing("Node.js with the npm pyodide package", "install Node.js 20 and run npm ci")
    return [*dependency_wheels(), project_wheel()]


class PyodideWorker(JsonLinesChild):
    """One Node process hosting the Worker; requests are answered one at a time."""

    def __init__(self, workdir: Path, wheels: list[Path], log: IO[bytes]) -> None:
        config = {
            "pyodide_dir": str(PYODIDE),
            "wheels": [str(w) for w in wheels],
            "module": "continuum.platforms.cloudflare.entry",
            "class": "Default",
        }
        config_path = workdir / "host.json"
        config_path.write_text(json.dumps(config))
        self._ids = itertools.count(1)
        super().__init__(
            ["node", str(HOST), str(config_path)],
            what="the Worker under Pyodide",
            cwd=workdir,
            log=log,
            boot_timeout=BOOT_TIMEOUT,
        )

    def send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        env: Mapping[str, str],
        raw: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        """Deliver one request to ``Default(ctx, env).fetch`` and return its answer.

        ``raw`` passes the JavaScript ``Request`` as is instead of the SDK's wrapper.
        """
        (answer,) = self.send_many([(method, path, headers, body)], env=env, raw=raw)
        return answer

    def send_many(
        self,
        requests: list[tuple[str, str, Mapping[str, str], bytes | None]],
        *,
        env: Mapping[str, str],
        raw: bool = False,
    ) -> list[tuple[int, dict[str, str], bytes]]:
        """Send all ``requests`` at once (they overlap in the isolate); answers in order."""
        ids = []
        for method, path, headers, body in requests:
            message = {
                "id": next(self._ids),
                "method": method,
                "url": f"https://continuum.example.workers.dev{path}",
                "headers": list(headers.items()),
                "body": base64.b64encode(body).decode() if body else None,
                "env": dict(env),
                "raw": raw,
            }
            ids.append(message["id"])
            self._write(message)
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < len(ids):
            answer = self._next(ANSWER_TIMEOUT)
            if "error" in answer:
                pytest.fail(f"the Worker's fetch raised: {answer['error']}")
            answers[answer["id"]] = answer
        return [
            (
                int(answers[i]["status"]),
                {str(k).lower(): str(v) for k, v in answers[i]["headers"]},
                base64.b64decode(answers[i]["body"]),
            )
            for i in ids
        ]

    def send_upload(
        self, path: str, headers: Mapping[str, str], size: int, *, env: Mapping[str, str]
    ) -> tuple[int, bytes, int]:
        """PUT a ``size``-byte upload with no declared length (a stream, as chunked bodies
        arrive); returns the status, the body and how many bytes the Worker pulled."""
        message = {
            "id": next(self._ids),
            "method": "PUT",
            "url": f"https://continuum.example.workers.dev{path}",
            "headers": list(headers.items()),
            "body": None,
            "env": dict(env),
            "raw": False,
            "stream_bytes": size,
        }
        self._write(message)
        answer = self._next(ANSWER_TIMEOUT)
        if "error" in answer:
            pytest.fail(f"the Worker's fetch raised: {answer['error']}")
        return int(answer["status"]), base64.b64decode(answer["body"]), int(answer["pulled"])
