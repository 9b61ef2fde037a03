"""``continuum new`` from an installed wheel, far from any checkout: the templates travel
inside the wheel (as ``continuum/templates``), render the same files, and the project's
``vendor/`` wheel is the installed toolkit packed back, file for file."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.tooling import ROOT, project_wheel

pytestmark = pytest.mark.slow


def test_an_installed_wheel_renders_every_template_and_vendors_itself(tmp_path: Path) -> None:
    wheel = project_wheel()
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
    with zipfile.ZipFile(wheel) as original:
        shipped = {name: original.read(name) for name in original.namelist()}
    for platform in ("lambda", "vercel", "cloudflare"):
        done = subprocess.run(
            [str(python), "-m", "continuum.cli.main", "new", platform, "--platform", platform],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        templates = ROOT / "templates" / platform
        expected = {
            str(p.relative_to(templates)).removesuffix(".tmpl") for p in templates.rglob("*.tmpl")
        }
        expected.add(f"vendor/{wheel.name}")
        rendered = {
            str(p.relative_to(elsewhere / platform))
            for p in (elsewhere / platform).rglob("*")
            if p.is_file()
        }
        assert rendered == expected, platform
        with zipfile.ZipFile(elsewhere / platform / "vendor" / wheel.name) as packed:
            repacked = {name: packed.read(name) for name in packed.namelist()}
        record = next(n for n in shipped if n.endswith(".dist-info/RECORD"))
        assert repacked.keys() == shipped.keys()
        assert {n: d for n, d in repacked.items() if n != record} == {
            n: d for n, d in shipped.items() if n != record
        }
