"""``continuum new`` for the template tests: one toolkit wheel per session.

Building the wheel from the checkout takes seconds, so the tests hand ``continuum new``
the session's wheel (``--wheel``); the build itself is tested once, in test_new.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from continuum.cli.main import main
from tests.tooling import project_wheel

New = Callable[..., int]


@pytest.fixture
def new() -> New:
    """``continuum new DIR --platform P [args]`` with the session's wheel; the exit code."""

    def run(directory: Path, platform: str, *args: str) -> int:
        argv = ["new", str(directory), "--platform", platform, *args]
        if "--requirement" not in args:
            argv += ["--wheel", str(project_wheel())]
        return main(argv)

    return run
