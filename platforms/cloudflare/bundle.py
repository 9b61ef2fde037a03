"""Stage the Worker's own modules into a clean folder for ``wrangler deploy``.

Wrangler uploads every ``*.py`` under the Worker's module root (``base_dir``) and offers
no way to exclude any, so pointing it at the repository root would ship the tests, the
emulator, the benchmarks and any local virtualenv. ``wrangler.toml`` therefore runs this
as its build command and uses the staged folder as ``base_dir``: it holds the package
``continuum`` as the Worker imports it (the repository's ``core/`` with its Lua scripts,
and ``platforms/cloudflare/`` as ``continuum/platforms/cloudflare``), without what never
runs in a Worker: the command line, the emulator, the templates, the other platforms'
adapters and this script. Third-party dependencies are not copied: ``pywrangler``
vendors them into ``python_modules``.

It needs nothing but the standard library, so the build command runs it by path:

    python3 platforms/cloudflare/bundle.py build/worker
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["SOURCES", "stage"]

ROOT = Path(__file__).resolve().parents[2]

#: Repository folder or file -> (where it is staged, file patterns, paths left out).
SOURCES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "core": ("continuum", ("*.py", "*.lua"), ("cli",)),
    "platforms/__init__.py": ("continuum/platforms/__init__.py", (), ()),
    "platforms/cloudflare": ("continuum/platforms/cloudflare", ("*.py",), ("bundle.py",)),
}


def stage(dest: Path, root: Path = ROOT) -> list[Path]:
    """Replace ``dest`` with the Worker's modules; returns the staged files."""
    _check_destination(dest, root)
    if dest.exists():
        shutil.rmtree(dest)
    staged: list[Path] = []
    for source, (target, patterns, left_out) in SOURCES.items():
        origin = root / source
        if origin.is_file():
            pairs = [(origin, dest / target)]
        else:
            pairs = [
                (path, dest / target / path.relative_to(origin))
                for pattern in patterns
                for path in origin.rglob(pattern)
                if "__pycache__" not in path.parts
                and path.relative_to(origin).parts[0] not in left_out
            ]
        for path, staged_path in sorted(pairs):
            staged_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staged_path)
            staged.append(staged_path)
    return staged


def _check_destination(dest: Path, root: Path) -> None:
    """``stage`` deletes ``dest`` first: never let that be the repository or a source."""
    target, repo = dest.resolve(), root.resolve()
    if target == repo or target in repo.parents:
        raise ValueError(f"refusing to stage into {dest}: it would replace the repository")
    for source in SOURCES:
        origin = (root / source).resolve()
        if target == origin or origin in target.parents or target in origin.parents:
            raise ValueError(f"refusing to stage into {dest}: it overlaps {source}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 platforms/cloudflare/bundle.py DEST", file=sys.stderr)
        return 2
    staged = stage(Path(argv[0]))
    print(f"staged {len(staged)} Worker modules into {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
