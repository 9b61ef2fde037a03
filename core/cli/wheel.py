"""The running toolkit as a wheel, for a generated project to carry in ``vendor/``.

A project made by ``continuum new`` must install on any machine, so it holds the exact
code that made it, as ``continuum_cache-<version>-py3-none-any.whl``:

- from a checkout (the package's files live in a source tree whose ``pyproject.toml``
  names this distribution), the checkout is built with ``pip wheel``, from a copy, so
  nothing is written into the tree;
- from an installed wheel, the installed files are packed back into a wheel: the
  distribution's ``RECORD`` lists them, and its metadata is kept as installed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from continuum.errors import ValidationError

DISTRIBUTION = "continuum-cache"
#: Installer bookkeeping in a dist-info folder that a wheel does not carry.
_INSTALL_ONLY = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def wheel_name(version: str) -> str:
    return f"continuum_cache-{version}-py3-none-any.whl"


def checkout_root() -> Path | None:
    """The source tree the running package comes from, if it is one."""
    import continuum

    root = Path(continuum.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    return root if project.get("name") == DISTRIBUTION else None


def toolkit_wheel(dest: Path) -> Path:
    """Write the running toolkit's wheel into ``dest``; returns its path."""
    root = checkout_root()
    return build_checkout(root, dest) if root else pack_installed(dest)


def build_checkout(root: Path, dest: Path) -> Path:
    """Build the checkout at ``root`` with pip (from a copy: in-tree builds leave
    ``build/`` and ``*.egg-info`` behind, and a stale ``build/`` can leak old modules)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="continuum-wheel-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copy2(root / name, source / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for folder in sorted(folders):
            shutil.copytree(root / folder, source / folder, ignore=ignore)
        out = Path(tmp) / "dist"
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        done = subprocess.run(
            [*pip, "-w", str(out), str(source)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise ValidationError(
                "could not build the toolkit's wheel from the checkout at "
                f"{root} (pip fetches setuptools on the first build):\n"
                f"{(done.stdout + done.stderr)[-2000:]}"
            )
        (built,) = out.glob("continuum_cache-*.whl")
        return Path(shutil.copy2(built, dest / built.name))


def pack_installed(dest: Path) -> Path:
    """Pack the installed distribution's files back into a wheel in ``dest``."""
    dist = metadata.distribution(DISTRIBUTION)
    if not dist.files:
        raise ValidationError(f"{DISTRIBUTION} is installed without a RECORD: cannot pack it")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheel_name(dist.version)
    rows: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
        for file in sorted(dist.files, key=str):
            name = file.as_posix()
            if (
                file.parts[0] == ".."  # console scripts: the installer writes them anew
                or "__pycache__" in file.parts
                or file.suffix == ".pyc"
                or (file.parts[0].endswith(".dist-info") and file.name in _INSTALL_ONLY)
            ):
                continue
            data = Path(str(dist.locate_file(file))).read_bytes()
            wheel.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append((name, f"sha256={digest.decode()}", str(len(data))))
        info = next(f.parts[0] for f in dist.files if f.parts[0].endswith(".dist-info"))
        rows.append((f"{info}/RECORD", "", ""))
        record = io.StringIO()
        csv.writer(record, lineterminator="\n").writerows(rows)
        wheel.writestr(f"{info}/RECORD", record.getvalue())
    return target
