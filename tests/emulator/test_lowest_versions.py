"""The published ranges hold at their floor: the emulator's error texts on the lowest
redis-py and fakeredis that pyproject.toml allows.

``lowest-versions.txt`` is the emulator extra resolved with ``--resolution lowest-direct``
(every direct dependency at its floor) for Python 3.11, with hashes; its first lines say
how to refresh it. The slow test builds a venv from it alone, adds our wheel and the test
runner at the versions uv.lock pins, and runs ``test_error_texts.py`` there, on fakeredis
and on the real redis-server. The same module runs on the locked newest in the main venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.tooling import ROOT, base_python, project_wheel

LOCK = Path(__file__).with_name("lowest-versions.txt")
RUNNER = ("pytest", "pytest-asyncio", "pytest-timeout")


def pinned(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", text, re.MULTILINE))


def floors() -> dict[str, Version]:
    """Each direct dependency of the emulator extra, at the lowest version allowed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {}
    for line in [*project["dependencies"], *project["optional-dependencies"]["emulator"]]:
        requirement = Requirement(line)
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        wanted[requirement.name] = Version(floor)
    return wanted


def locked(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


def test_the_lowest_lock_pins_every_floor_of_pyproject() -> None:
    """Refresh the lock when a floor moves (the command is in its header)."""
    pins = pinned(LOCK.read_text())
    assert {name: Version(pins.get(name, "0")) for name in floors()} == floors()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_error_texts_hold_on_the_lowest_versions(tmp_path: Path, redis_url: str) -> None:
    uv = str(ROOT / ".venv" / "bin" / "uv")
    venv = tmp_path / "lowest"
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    steps = [
        [uv, "venv", "--quiet", "--python", base_python(), str(venv)],
        [uv, "pip", "install", "--quiet", "--python", python, "--require-hashes", "-r", str(LOCK)],
        [uv, "pip", "install", "--quiet", "--python", python, "--no-deps", str(project_wheel())],
        [uv, "pip", "install", "--quiet", "--python", python]
        + [f"{name}=={locked(name)}" for name in RUNNER],
    ]
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    versions = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('redis'), "
         "m.version('fakeredis'))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert [Version(v) for v in versions] == [floors()["redis"], floors()["fakeredis"]]
    done = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/emulator/test_error_texts.py"],
        cwd=ROOT,
        env={**env, "CONTINUUM_TEST_REDIS_URL": redis_url, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b22 passed\b", done.stdout), done.stdout[-2000:]
