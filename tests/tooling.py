"""What the platform and template tests need from outside Python, found in one place.

A missing tool fails the run under ``CI=true`` (CI must never pass by skipping) and skips
the test elsewhere, with the command that gets it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest


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
