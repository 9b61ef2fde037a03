"""What a deployed bundle may hold: the handler, the library and its runtime dependencies.

A bundle is given as its file list (paths inside it) and a way to read a file. Installed
packages are recognised by their ``*.dist-info``: from the requirements the function
declares, the ``Requires-Dist`` closure (markers evaluated for the runtime's Python) names
the distributions allowed, and a file is theirs when their ``RECORD`` lists it. Anything
else must be one of the function's own files. Whatever the records say, some things
never belong in a bundle: the toolkit's emulator, command line and templates, console
scripts, tests, dotfiles and caches, and bytecode for another Python.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import PurePosixPath

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: Inside the toolkit, what only a developer's machine runs.
NEVER_DEPLOYED = ("continuum/emulator/", "continuum/cli/", "continuum/templates/")


@dataclass
class Distribution:
    name: str
    requires: list[Requirement]
    files: set[str] = field(default_factory=set)


def _distributions(
    names: Iterable[str], read: Callable[[str], bytes], prefix: str
) -> dict[str, Distribution]:
    found: dict[str, Distribution] = {}
    for name in names:
        if not name.startswith(prefix):
            continue
        inner = name[len(prefix) :]
        parts = inner.split("/")
        if len(parts) != 2 or not parts[0].endswith(".dist-info") or parts[1] != "METADATA":
            continue
        metadata = Parser().parsestr(read(name).decode())
        dist = Distribution(
            canonicalize_name(metadata["Name"]),
            [Requirement(r) for r in metadata.get_all("Requires-Dist") or []],
        )
        record = read(f"{prefix}{parts[0]}/RECORD").decode()
        dist.files = {row[0] for row in csv.reader(io.StringIO(record)) if row}
        found[dist.name] = dist
    return found


def _closure(
    roots: Iterable[str], dists: dict[str, Distribution], python: str
) -> tuple[set[str], list[str]]:
    """The distributions the roots need (with extras), and requirements not in the bundle."""
    wanted = [Requirement(r) for r in roots]
    seen: dict[str, set[str]] = {}
    missing: list[str] = []
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        extras = set(req.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        if name not in dists:
            missing.append(str(req))
            continue
        for dep in dists[name].requires:
            active = {"python_version": python, "python_full_version": f"{python}.0"}
            if dep.marker is None:
                wanted.append(dep)
                continue
            for extra in seen[name] or {""}:
                if dep.marker.evaluate({**active, "extra": extra}):
                    wanted.append(dep)
                    break
    return set(seen), missing


def unexpected(
    files: Iterable[str],
    read: Callable[[str], bytes],
    *,
    requirements: Iterable[str],
    own: Callable[[str], bool],
    python: str,
    site: str = "",
    never: tuple[str, ...] = (),
) -> list[str]:
    """The bundle's files that are neither the function's own nor a required package's.

    ``site`` is the folder installed packages live in (``""``: the bundle's top);
    ``never`` adds path prefixes (inside ``site``) that this platform must not carry.
    """
    names = sorted(set(files))
    dists = _distributions(names, read, site)
    needed, missing = _closure(requirements, dists, python)
    assert not missing, f"required but not in the bundle: {missing}"
    allowed = set().union(*(dists[name].files for name in needed if name in dists))
    tag = f"cpython-{python.replace('.', '')}"
    wrong = []
    for name in names:
        inner = name[len(site) :] if name.startswith(site) else None
        if _never(name, inner, tag) or (inner or name).startswith(never):
            wrong.append(name)
        elif inner is not None and (inner in allowed or _bytecode_of(inner, allowed, tag)):
            continue
        elif not own(name):
            wrong.append(name)
    return wrong


def _never(name: str, inner: str | None, tag: str) -> bool:
    path = PurePosixPath(inner if inner is not None else name)
    if any(part.startswith(".") for part in path.parts):
        return True  # dotfiles, .pytest_cache, .venv ...
    if path.parts and path.parts[0] in ("bin", "tests"):
        return True
    if path.suffix == ".pyc" and f".{tag}." not in path.name:
        return True  # bytecode of another Python
    return str(path).startswith(NEVER_DEPLOYED)


def _bytecode_of(inner: str, allowed: set[str], tag: str) -> bool:
    """``pkg/__pycache__/mod.cpython-312.pyc`` belongs with ``pkg/mod.py``."""
    match = re.fullmatch(rf"(.*?)__pycache__/([^/]+)\.{tag}\.pyc", inner)
    return bool(match) and f"{match.group(1)}{match.group(2)}.py" in allowed
