"""``continuum new`` from an installed wheel, far from any checkout: the templates travel
inside the wheel (under ``<prefix>/share/continuum/templates``) and render the same files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "core", "platforms", "emulator", "templates")

pytestmark = pytest.mark.slow


def build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    for name in SOURCES:  # a copy: the build leaves nothing in the repository
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(
                origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        timeout=600,
    )
    (wheel,) = out.glob("continuum_cache-*.whl")
    return wheel


def test_an_installed_wheel_renders_every_template(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"  # no checkout in sight
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONTINUUM_TEMPLATES")}
    for platform in ("lambda", "vercel", "cloudflare"):
        done = subprocess.run(
            [str(python), "-m", "core.cli", "new", platform, "--platform", platform],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        templates = ROOT / "templates" / platform
        expected = {
            str(p.relative_to(templates)).removesuffix(".tmpl")
            for p in templates.rglob("*.tmpl")
        }
        rendered = {
            str(p.relative_to(elsewhere / platform))
            for p in (elsewhere / platform).rglob("*")
            if p.is_file()
        }
        assert rendered == expected, platform
