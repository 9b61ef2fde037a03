"""What the platform and template tests need from outside Python, found in one place.

A missing tool fails the run under ``CI=true`` (CI must never pass by skipping) and skips
the test elsewhere, with the command that gets it.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: Serverless Framework v3 without telemetry, notifications or prompts.
SERVERLESS_QUIET = {
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "SLS_INTERACTIVE_SETUP_DISABLE": "1",
    "SLS_DEPRECATION_DISABLE": "*",
}


def missing(what: str, hint: str) -> NoReturn:
    message = f"{what} is missing: {hint}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def python312() -> str:
    """The Python 3.12 that Lambda and Vercel builds need: ``CONTINUUM_PY312`` (exported by
    ./scripts/test), else pyenv's real interpreter (its shim may resolve to another version)."""
    candidates = [os.environ.get("CONTINUUM_PY312", "")]
    candidates += [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    candidates.append(shutil.which("python3.12") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing("python3.12", "run ./scripts/test, which exports CONTINUUM_PY312 (pyenv install 3.12)")


def repository_files() -> list[str]:
    """The files git sees (tracked, or untracked and not ignored), relative to ROOT."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def copy_repository(dest: Path) -> Path:
    """The files git sees (tracked or not ignored), copied to ``dest``."""
    for name in repository_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    return dest


@functools.cache
def project_wheel() -> Path:
    """Our own wheel, built once per test session the way ``continuum new`` builds it from
    a checkout (pip, from a copy, so the build leaves nothing in the checkout).

    Build isolation fetches setuptools from PyPI (or pip's cache) the first time; a
    failure there is a missing dependency, said as such.
    """
    from continuum.cli.wheel import build_checkout
    from continuum.errors import ValidationError

    out = Path(tempfile.mkdtemp(prefix="continuum-test-wheel-"))
    atexit.register(shutil.rmtree, out, True)
    try:
        return build_checkout(ROOT, out)
    except ValidationError as exc:
        missing("our wheel (pip wheel failed)", str(exc))


def base_python() -> str:
    """The interpreter this venv was made from: its ``-m venv`` ships the stock pip."""
    return str(getattr(sys, "_base_executable", sys.executable))


class JsonLinesChild:
    """A child process spoken to in JSON lines (a platform's runtime hosting our code):
    one object per line on stdin, one per line back on stdout, read by a thread so a
    wait is always bounded. The first line must say ``{"ready": true}``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        what: str,
        cwd: Path,
        log: IO[bytes],
        boot_timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._what = what
        self._proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self._next(boot_timeout)
        if not ready.get("ready"):
            self.close()
            pytest.fail(f"{what} did not start:\n{ready.get('error')}")

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _write(self, message: Mapping[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(message).encode() + b"\n")
        self._proc.stdin.flush()

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.close()
            pytest.fail(f"{self._what} gave no answer within {timeout} s")
        if not line:
            pytest.fail(f"{self._what} exited (code {self._proc.poll()}); see its log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


class ManualClock:
    """A clock the test moves (``now``, ``advance``) instead of sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
