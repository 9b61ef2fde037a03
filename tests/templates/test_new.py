"""``continuum new``: each platform's starter renders, names the toolkit so it installs
anywhere, and its own tests pass as generated.

The generated project's tests run here in a separate ``python -m pytest`` inside the
rendered directory, with this project's interpreter (which has continuum-cache and its
emulator plugin installed); test_travel.py runs them as a user would, from a copy with a
fresh venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from continuum.cli.main import main
from tests.templates.conftest import New
from tests.tooling import ROOT, project_wheel

PLATFORMS = ("lambda", "vercel", "cloudflare")
MANIFESTS = {"lambda": "serverless.yml", "vercel": "vercel.json", "cloudflare": "wrangler.toml"}


def clean_env() -> dict[str, str]:
    """The user's shell, minus this test run's settings that would leak into the project."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UPSTASH_", "CONTINUUM_", "PYTEST_"))
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_generated_project_tests_pass_offline(platform: str, tmp_path: Path, new: New) -> None:
    project = tmp_path / f"my-{platform}-app"
    assert new(project, platform) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\b[1-9]\d* passed\b", proc.stdout), proc.stdout[-2000:]
    assert "skipped" not in proc.stdout


@pytest.mark.parametrize("platform", PLATFORMS)
def test_renders_manifest_handler_test_and_readme(
    platform: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], new: New
) -> None:
    project = tmp_path / "Shop API"
    assert new(project, platform) == 0
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert f"vendor/{project_wheel().name}" in files
    assert MANIFESTS[platform] in files
    assert "README.md" in files
    assert any(f.startswith("tests/test_") for f in files)
    assert not any(f.endswith(".tmpl") for f in files)
    for path in project.rglob("*"):
        if path.is_file() and path.suffix != ".whl":
            text = path.read_text()
            assert "{{" not in text, f"unsubstituted placeholder in {path.name}"
            if path.suffix == ".py":
                compile(text, str(path), "exec")
    if platform != "vercel":  # vercel.json has no name: `vercel link` names the project
        assert "shop-api" in (project / MANIFESTS[platform]).read_text()
    readme = (project / "README.md").read_text()
    assert "# shop-api" in readme and "## Deploy" in readme
    out = capsys.readouterr().out
    assert f"Created a {platform} project" in out and "README.md" in out
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--line-length", "100",
         "--select", "E,F,W,I,B,UP", "."],
        cwd=project, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout[-2000:]


def test_refuses_a_non_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], new: New
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert new(tmp_path, "vercel") == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_force_writes_the_template_and_keeps_other_files(tmp_path: Path, new: New) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "vercel.json").write_text("{}")
    assert new(tmp_path, "vercel", "--name", "kept", "--force") == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert '"rewrites"' in (tmp_path / "vercel.json").read_text()
    assert (tmp_path / "api" / "index.py").is_file()


@pytest.mark.parametrize("name", ["Bad Name", "1st", "x" * 70, "a/b"])
def test_rejects_names_the_platforms_refuse(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], new: New
) -> None:
    assert new(tmp_path / "p", "lambda", "--name", name) == 2
    assert "project name" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_unknown_platform_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["new", str(tmp_path / "never-created"), "--platform", "heroku"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "never-created").exists()
    assert "invalid choice" in capsys.readouterr().err


def test_a_file_in_the_way_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], new: New
) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    assert new(target, "cloudflare") == 2
    assert "not a directory" in capsys.readouterr().err


# -- how the project names the toolkit -----------------------------------------------


WANTED = {  # file -> the lines naming the toolkit, by --requirement
    "lambda": {
        "requirements.txt": ("./vendor/{wheel}", "continuum-cache=={version}"),
        "requirements-dev.txt": (
            "./vendor/{wheel}[emulator]",
            "continuum-cache[emulator]=={version}",
        ),
    },
    "vercel": {
        "pyproject.toml": (
            'dependencies = ["continuum-cache[vercel]"]',
            'dependencies = ["continuum-cache[vercel]=={version}"]',
        ),
        "requirements-dev.txt": (
            "./vendor/{wheel}[vercel,emulator]",
            "continuum-cache[vercel,emulator]=={version}",
        ),
    },
    "cloudflare": {
        "pyproject.toml": (
            'dependencies = ["continuum-cache"]',
            'dependencies = ["continuum-cache=={version}"]',
        ),
        "requirements-dev.txt": (
            "./vendor/{wheel}[emulator]",
            "continuum-cache[emulator]=={version}",
        ),
    },
}


@pytest.mark.parametrize("requirement", ["vendor", "pypi"])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_toolkit_is_named_by_a_relative_path_or_a_pin(
    platform: str, requirement: str, tmp_path: Path, new: New
) -> None:
    from continuum import __version__

    project = tmp_path / "app"
    args = ("--requirement", "pypi") if requirement == "pypi" else ()
    assert new(project, platform, *args) == 0
    wheel = project_wheel().name
    for name, forms in WANTED[platform].items():
        line = forms[requirement == "pypi"].format(wheel=wheel, version=__version__)
        lines = (project / name).read_text().splitlines()
        assert line in lines, f"{name}: {lines}"
    texts = [p.read_text() for p in project.rglob("*") if p.is_file() and p.suffix != ".whl"]
    assert not any(str(ROOT) in text or "file://" in text for text in texts)
    sources = 'continuum-cache = { path = "vendor/' + wheel + '" }'
    pyproject = project / "pyproject.toml"
    if pyproject.exists():
        assert (sources in pyproject.read_text()) is (requirement == "vendor")
    assert (project / "vendor").exists() is (requirement == "vendor")


def test_the_vendored_wheel_is_built_from_the_running_toolkit(tmp_path: Path) -> None:
    """Without ``--wheel``, ``continuum new`` in a checkout builds the checkout."""
    assert main(["new", str(tmp_path / "app"), "--platform", "lambda"]) == 0
    (built,) = (tmp_path / "app" / "vendor").glob("*.whl")
    assert built.name == project_wheel().name
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        assert (
            archive.read("continuum/cli/new.py") == (ROOT / "core" / "cli" / "new.py").read_bytes()
        )
    with zipfile.ZipFile(project_wheel()) as reference:
        assert names == set(reference.namelist())
