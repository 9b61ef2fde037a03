"""``continuum new DIR --platform lambda|vercel|cloudflare``: a starter project.

Renders ``templates/<platform>/``: every ``*.tmpl`` file is copied without that suffix,
with placeholders substituted (:class:`Toolkit` lists them). Nothing else is interpreted,
so a template reads as the file it becomes. The ``.tmpl`` suffix keeps the toolkit's own
test run, linters and type checker from mistaking the templates for part of the toolkit.

The project travels: by default it carries this toolkit as a wheel in ``vendor/`` (built
from the running code, see :mod:`continuum.cli.wheel`) and names it by a relative path
that pip, serverless-python-requirements, Vercel's builder (uv) and pywrangler (uv)
all accept; ``--requirement pypi`` names ``continuum-cache==VERSION`` on the index instead.

A non-empty DIR is refused unless ``--force``, which overwrites the template's files and
leaves every other file alone.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from continuum.errors import ValidationError

PLATFORMS = ("lambda", "vercel", "cloudflare")
REQUIREMENTS = ("vendor", "pypi")
SUFFIX = ".tmpl"
VENDOR = "vendor"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)(?:\[([a-z_,]+)\])?\s*\}\}")


@dataclass(frozen=True)
class Rendered:
    directory: Path
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Toolkit:
    """How a generated project names this toolkit. Placeholders, ``[extras]`` optional:

    - ``{{requirement[extras]}}``: a requirements-file line (pip, serverless-python-
      requirements): ``./vendor/<wheel>[extras]``, or ``continuum-cache[extras]==X.Y.Z``;
    - ``{{dependency[extras]}}``: a ``pyproject.toml`` dependency, with the wheel given
      by ``{{uv_sources}}`` (a ``[tool.uv.sources]`` table, empty for the index).
    """

    version: str
    wheel: str | None  # the file name in vendor/, or None: from the index

    def requirement(self, extras: str) -> str:
        suffix = f"[{extras}]" if extras else ""
        if self.wheel:
            return f"./{VENDOR}/{self.wheel}{suffix}"
        return f"continuum-cache{suffix}=={self.version}"

    def dependency(self, extras: str) -> str:
        suffix = f"[{extras}]" if extras else ""
        return f"continuum-cache{suffix}" + ("" if self.wheel else f"=={self.version}")

    def uv_sources(self) -> str:
        if not self.wheel:
            return ""
        return f'[tool.uv.sources]\ncontinuum-cache = {{ path = "{VENDOR}/{self.wheel}" }}\n'


def templates_root() -> Path:
    """Where the templates live: ``CONTINUUM_TEMPLATES``, else the package's own
    ``continuum/templates`` (the checkout's ``templates/`` folder, shipped in the wheel)."""
    override = os.environ.get("CONTINUUM_TEMPLATES")
    if override:
        return Path(override)
    return Path(__file__).parent.parent / "templates"


def project_name(directory: Path) -> str:
    """A name every platform accepts: lowercase letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"app-{name}" if name else "continuum-app"
    return name[:58]


def render(
    directory: Path,
    platform: str,
    *,
    name: str | None = None,
    force: bool = False,
    requirement: str = "vendor",
    wheel: Path | None = None,
) -> Rendered:
    """Write the starter project for ``platform`` into ``directory``.

    ``requirement`` is ``vendor`` (the toolkit's wheel goes into ``vendor/``: ``wheel``
    if given, else built from the running toolkit) or ``pypi``.
    """
    from continuum import __version__

    if platform not in PLATFORMS:
        raise ValidationError(
            f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}"
        )
    if requirement not in REQUIREMENTS:
        raise ValidationError(f"--requirement must be one of {', '.join(REQUIREMENTS)}")
    if wheel is not None and not wheel.name.startswith(f"continuum_cache-{__version__}-"):
        raise ValidationError(f"{wheel} is not a continuum-cache {__version__} wheel")
    source = templates_root() / platform
    if not source.is_dir():
        raise ValidationError(f"the {platform} template is missing ({source})")
    if directory.exists() and not directory.is_dir():
        raise ValidationError(f"{directory} exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ValidationError(
            f"{directory} is not empty; choose a new directory, or pass --force to write the "
            "template's files into it (other files are left alone)"
        )
    name = name or project_name(directory)
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,57}", name):
        raise ValidationError(
            f"project name {name!r}: use lowercase letters, digits and dashes, starting with a "
            "letter (at most 58 characters)"
        )
    written = []
    toolkit = Toolkit(__version__, None)
    if requirement == "vendor":
        vendored = _vendor(directory / VENDOR, wheel)
        toolkit = Toolkit(__version__, vendored.name)
        written.append(vendored)
    for template in sorted(source.rglob(f"*{SUFFIX}")):
        relative = template.relative_to(source)
        target = directory / relative.with_name(relative.name.removesuffix(SUFFIX))
        target.parent.mkdir(parents=True, exist_ok=True)
        text = template.read_text(encoding="utf-8")
        target.write_text(_substitute(text, name, toolkit, relative), encoding="utf-8")
        written.append(target)
    return Rendered(directory, tuple(written))


def _vendor(folder: Path, wheel: Path | None) -> Path:
    from continuum.cli.wheel import toolkit_wheel

    folder.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        return Path(shutil.copy2(wheel, folder / wheel.name))
    return toolkit_wheel(folder)


def _substitute(text: str, name: str, toolkit: Toolkit, where: Path) -> str:
    def replace(match: re.Match[str]) -> str:
        key, extras = match.group(1), match.group(2) or ""
        if key == "name" and not extras:
            return name
        if key == "requirement":
            return toolkit.requirement(extras)
        if key == "dependency":
            return toolkit.dependency(extras)
        if key == "uv_sources" and not extras:
            return toolkit.uv_sources()
        raise ValidationError(f"template {where}: unknown placeholder {match.group(0)}")

    return _PLACEHOLDER.sub(replace, text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", type=Path, help="where to create the project")
    parser.add_argument("--platform", required=True, choices=PLATFORMS)
    parser.add_argument("--name", help="project name (default: from DIR)")
    parser.add_argument(
        "--requirement",
        choices=REQUIREMENTS,
        default="vendor",
        help="vendor (default): carry this toolkit as a wheel in DIR/vendor; "
        f"pypi: require continuum-cache=={_version()} from the package index",
    )
    parser.add_argument(
        "--wheel",
        type=Path,
        metavar="FILE",
        help="with --requirement vendor: this continuum-cache wheel instead of one built "
        "from the running toolkit",
    )
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty DIR (overwrites conflicts)"
    )


def _version() -> str:
    from continuum import __version__

    return __version__


def run(args: argparse.Namespace) -> int:
    try:
        result = render(
            args.directory,
            args.platform,
            name=args.name,
            force=args.force,
            requirement=args.requirement,
            wheel=args.wheel,
        )
    except (ValidationError, OSError) as exc:
        print(f"continuum new: {exc}", file=sys.stderr)
        return 2
    print(f"Created a {args.platform} project in {result.directory}:")
    for path in result.files:
        print(f"  {path.relative_to(result.directory)}")
    print(f"\nNext: cd {result.directory} and follow README.md (its first block runs the tests).")
    return 0
