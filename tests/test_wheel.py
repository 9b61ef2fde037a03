"""The published wheel: one import name, ``continuum``, and nothing of the checkout's
folder names, in its file list and in a fresh venv that has only it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.tooling import ROOT, project_wheel

pytestmark = pytest.mark.slow


def test_the_wheel_holds_one_package_and_its_metadata() -> None:
    with zipfile.ZipFile(project_wheel()) as wheel:
        names = wheel.namelist()
        metadata = wheel.read("continuum_cache-0.1.0.dist-info/METADATA").decode()
        entry_points = wheel.read("continuum_cache-0.1.0.dist-info/entry_points.txt").decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"continuum", "continuum_cache-0.1.0.dist-info"}, tops
    assert not any(".data/" in name for name in names), "no data files"
    # every module of the checkout's mapped folders is in, under its import name
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in mapping["package-dir"].items():
        for source in (ROOT / folder).glob("**/*.py"):
            if "__pycache__" in source.parts:
                continue
            inner = source.relative_to(ROOT / folder).as_posix()
            assert f"{package.replace('.', '/')}/{inner}" in names, f"{folder}/{inner} is missing"
    assert "License-Expression: MIT" in metadata
    assert "continuum = continuum.cli.main:main" in entry_points
    assert "continuum_emulator = continuum.emulator.pytest_plugin" in entry_points


PROBE = """
import importlib, json
found = {}
for name in ("continuum.cache", "continuum", "core", "platforms", "emulator"):
    try:
        importlib.import_module(name)
        found[name] = True
    except ImportError:
        found[name] = False
from continuum.cache import UpstashCache, RateLimiter
print(json.dumps(found))
"""


def test_a_fresh_venv_with_only_the_wheel_imports_continuum_and_nothing_else(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(project_wheel())],
        check=True,
        timeout=300,
    )
    done = subprocess.run(
        [str(python), "-I", "-c", PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        '{"continuum.cache": true, "continuum": true, "core": false, '
        '"platforms": false, "emulator": false}'
    )


def test_building_the_sdist_and_wheel_prints_no_setuptools_warning(tmp_path: Path) -> None:
    """Every build printed nine 'Package would be ignored' banners (the Lua scripts' and
    the templates' folders look like packages to setuptools). A build from the sdist,
    as an installer does it, must say nothing that a user would read as a problem."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in sorted(set(mapping["package-dir"].values())):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    done = subprocess.run(
        [sys.executable, "-m", "uv", "build", "--out-dir", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "UV_PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if "_Warning:" in line]
    assert warnings == []
    assert sorted(p.name for p in (tmp_path / "dist").glob("continuum_cache-*")) == [
        "continuum_cache-0.1.0-py3-none-any.whl", "continuum_cache-0.1.0.tar.gz",
    ]  # fmt: skip
