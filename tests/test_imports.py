"""The package's import graph: no circles, no type-only loops, neighbours use ``__init__``.

Every module of ``continuum`` (found from pyproject's ``[tool.setuptools]`` packages and
``package-dir``) is parsed, not imported. An import counts at run time when it sits at
module level (inside ``try``/``with``/``if`` blocks too) but not in a function body and
not under ``if TYPE_CHECKING:``; those under ``TYPE_CHECKING`` are the type-only ones.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The floors above the library: they may reach into a subpackage's modules.
OUTER = ("continuum.cli", "continuum.emulator", "continuum.platforms", "continuum.templates")


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package's ``__init__``)."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders: dict[str, str] = setup["package-dir"]
    found: dict[str, tuple[Path, bool]] = {}
    for package in setup["packages"]:
        base = max((k for k in folders if package == k or package.startswith(k + ".")), key=len)
        folder = ROOT / folders[base] / package[len(base) :].lstrip(".").replace(".", "/")
        for file in sorted(folder.glob("*.py")):
            init = file.stem == "__init__"
            found[package if init else f"{package}.{file.stem}"] = (file, init)
    return found


MODULES = _modules()


def _bound_by_init() -> dict[str, set[str]]:
    """The names each package's ``__init__`` binds by importing them."""
    bound: dict[str, set[str]] = {}
    for name, (file, init) in MODULES.items():
        if init:
            tree = ast.parse(file.read_text(), str(file))
            bound[name] = {
                alias.asname or alias.name
                for node in tree.body
                if isinstance(node, ast.ImportFrom)
                for alias in node.names
            }
    return bound


_BOUND = _bound_by_init()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], typing_only: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Module-level statements (through blocks that run at import), flagged type-only."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If):
            yield from _statements(node.body, typing_only or _is_type_checking(node.test))
            yield from _statements(node.orelse, typing_only)
        elif isinstance(node, ast.Try | ast.TryStar):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _statements(block, typing_only)
            for handler in node.handlers:
                yield from _statements(handler.body, typing_only)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _statements(node.body, typing_only)
        else:
            yield node, typing_only


def _targets(name: str, node: ast.stmt) -> Iterator[str]:
    """The continuum modules an import statement of module ``name`` loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        source = node.module or ""
        if node.level:
            package = name if MODULES[name][1] else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            source = f"{package}.{source}" if source else package
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            # ``from pkg import name``: the submodule, unless pkg's __init__ binds that name
            # itself (``continuum.cache`` re-exports the function ``drive`` of ``.drive``)
            if submodule in MODULES and alias.name not in _BOUND.get(source, set()):
                yield submodule
            else:
                yield source


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Run-time and type-only imports between continuum modules."""
    runtime: dict[str, set[str]] = {name: set() for name in MODULES}
    typing: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, (file, _) in MODULES.items():
        tree = ast.parse(file.read_text(), str(file))
        for node, typing_only in _statements(tree.body, False):
            for target in _targets(name, node):
                if target in MODULES and target != name:
                    (typing if typing_only else runtime)[name].add(target)
    return runtime, typing


RUNTIME, TYPING = _graph()


def _reach(start: str) -> set[str]:
    """Every module ``start`` loads at run time, directly or not."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in RUNTIME[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _cycles() -> list[list[str]]:
    """The import circles: strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(RUNTIME[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            group.append(node)
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(RUNTIME):
        if node not in index:
            visit(node)
    return groups


def test_every_module_was_found_and_parsed() -> None:
    for expected in ("continuum", "continuum.cache.client", "continuum.rest.executor",
                     "continuum.sansio", "continuum.platforms.aws_lambda.handler"):  # fmt: skip
        assert expected in MODULES
    assert "continuum.cache.methods" in RUNTIME["continuum.cache.client"]
    assert "continuum.pubsub" in TYPING["continuum.cache.client"]
    assert "continuum.pubsub" not in RUNTIME["continuum.cache.client"]  # imported when used


def test_no_import_circles_at_run_time() -> None:
    assert _cycles() == []


def test_type_only_imports_never_point_back_at_the_importer() -> None:
    """In the library; the floors above it (the emulator's backend and its helpers) are
    not held to it."""
    loops = [
        (name, target)
        for name, targets in TYPING.items()
        for target in sorted(targets)
        if name in _reach(target) and not name.startswith(OUTER)
    ]
    assert loops == []


def test_neighbours_import_a_subpackage_from_its_init() -> None:
    """Outside ``continuum.P``, the library imports ``continuum.P``, never its modules;
    inside it, modules import their siblings by module path, never the ``__init__``."""
    packages = {name for name, (_, init) in MODULES.items() if init and name != "continuum"}
    wrong = []
    for name, targets in {**RUNTIME}.items():
        for target in sorted(targets | TYPING[name]):
            home = next((p for p in packages if target.startswith(p + ".")), None)
            if home is None or name.startswith(OUTER):
                continue
            if not (name == home or name.startswith(home + ".")):
                wrong.append(f"{name} imports {target}: import it from {home}")
        own = name.rpartition(".")[0] if not MODULES[name][1] else None
        if own in packages and own in targets | TYPING[name]:
            wrong.append(f"{name} imports its own package {own}: use the sibling's module")
    assert wrong == []
