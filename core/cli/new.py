"""``continuum new DIR --platform lambda|vercel|cloudflare``: a starter project.

Renders ``templates/<platform>/``: every ``*.tmpl`` file is copied without that suffix,
with ``{{name}}`` (the project's name) and ``{{pin}}`` (what follows the package name in
a requirement, see :func:`pin`) substituted. Nothing else is interpreted, so a template
reads as the file it becomes. The ``.tmpl`` suffix keeps the toolkit's own test run,
linters and type checker from mistaking the templates for part of the toolkit.

A non-empty DIR is refused unless ``--force``, which overwrites the template's files and
leaves every other file alone.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from continuum.errors import ValidationError

PLATFORMS = ("lambda", "vercel", "cloudflare")
SUFFIX = ".tmpl"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


@dataclass(frozen=True)
class Rendered:
    directory: Path
    files: tuple[Path, ...]


def templates_root() -> Path:
    """Where the templates live: ``CONTINUUM_TEMPLATES``, else the package's own
    ``continuum/templates`` (the checkout's ``templates/`` folder, shipped in the wheel)."""
    override = os.environ.get("CONTINUUM_TEMPLATES")
    if override:
        return Path(override)
    return Path(__file__).parent.parent / "templates"


def pin(version: str) -> str:
    """How a generated project's requirement names this toolkit, after the package name.

    From a checkout (the usual case before a release), a direct reference to it, so the
    generated project installs exactly the code that generated it; else a version floor.
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return f" @ {root.as_uri()}"
    return f">={version}"


def project_name(directory: Path) -> str:
    """A name every platform accepts: lowercase letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"app-{name}" if name else "continuum-app"
    return name[:58]


def render(
    directory: Path, platform: str, *, name: str | None = None, force: bool = False
) -> Rendered:
    """Write the starter project for ``platform`` into ``directory``."""
    from continuum import __version__

    if platform not in PLATFORMS:
        raise ValidationError(
            f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}"
        )
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
    values = {"name": name, "pin": pin(__version__)}
    written = []
    for template in sorted(source.rglob(f"*{SUFFIX}")):
        relative = template.relative_to(source)
        target = directory / relative.with_name(relative.name.removesuffix(SUFFIX))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_substitute(template.read_text(encoding="utf-8"), values, relative))
        written.append(target)
    return Rendered(directory, tuple(written))


def _substitute(text: str, values: dict[str, str], where: Path) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ValidationError(f"template {where}: unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(replace, text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", type=Path, help="where to create the project")
    parser.add_argument("--platform", required=True, choices=PLATFORMS)
    parser.add_argument("--name", help="project name (default: from DIR)")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty DIR (overwrites conflicts)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        result = render(args.directory, args.platform, name=args.name, force=args.force)
    except (ValidationError, OSError) as exc:
        print(f"continuum new: {exc}", file=sys.stderr)
        return 2
    print(f"Created a {args.platform} project in {result.directory}:")
    for path in result.files:
        print(f"  {path.relative_to(result.directory)}")
    print(f"\nNext: cd {result.directory} and follow README.md (tests: python -m pytest).")
    return 0
