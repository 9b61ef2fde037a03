"""``continuum doctor --deploy``: the tools each manifest's deploy needs, looked up on PATH,
with the command that installs each missing one.

The PATHs are folders of links to the real programs on this machine, except
``pywrangler``: doctor only looks it up (running it downloads a Pyodide Python), so a
stand-in script with that name is enough to be found.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from continuum.cli.main import main
from tests.tooling import ROOT, missing, python312

MANIFESTS = ("serverless.yml", "vercel.json", "wrangler.toml")


def python313() -> str:
    for candidate in sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13")):
        return str(candidate)
    found = shutil.which("python3.13")
    if found is None:
        missing("python3.13", "pyenv install 3.13")
    return found


def project(tmp_path: Path, *manifests: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    for name in manifests:
        (folder / name).write_text("")
    return folder


def doctor(folder: Path, path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PATH", str(path))
    code = main(["doctor", "--deploy"])
    return code, capsys.readouterr().out


def linked(tmp_path: Path, programs: dict[str, str]) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, target in programs.items():
        (folder / name).symlink_to(target)
    return folder


def every_tool(tmp_path: Path) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("node and npm", "install Node.js 20 and npm")
    folder = linked(
        tmp_path,
        {
            "node": node,
            "npm": npm,
            "python3.12": python312(),
            "python3.13": python313(),
            "uv": str(ROOT / ".venv" / "bin" / "uv"),
        },
    )
    stand_in = folder / "pywrangler"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    return folder


def test_a_path_without_the_tools_names_each_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = doctor(project(tmp_path, *MANIFESTS), empty, monkeypatch, capsys)
    assert code == 1
    assert out.splitlines() == [
        "continuum doctor",
        "  --  deploy      AWS Lambda (serverless.yml)",
        "  --  deploy      Vercel (vercel.json)",
        "  --  deploy      Cloudflare Workers (wrangler.toml)",
        "FAIL  node        not found on PATH; AWS Lambda and Vercel and Cloudflare Workers need "
        "it: the platform's command-line tool runs on it",
        "                  -> install Node.js 20 or newer: https://nodejs.org, or `apt-get "
        "install nodejs npm`",
        "FAIL  npm         not found on PATH; AWS Lambda and Vercel and Cloudflare Workers need "
        "it: it installs the pinned platform tools",
        "                  -> it comes with Node.js (`apt-get install npm`)",
        "FAIL  python3.12  not found on PATH; AWS Lambda and Vercel need it: the function's "
        "packages are built for the runtime's Python 3.12",
        "                  -> `pyenv install 3.12` and put its bin folder on PATH, or `apt-get "
        "install python3.12`",
        "FAIL  uv          not found on PATH; Vercel and Cloudflare Workers need it: it installs "
        "the function's packages",
        "                  -> `python3 -m pip install uv`",
        "FAIL  pywrangler  not found on PATH; Cloudflare Workers needs it: it vendors the "
        "packages and deploys the Worker",
        "                  -> `uv tool install workers-py`",
        "FAIL  python3.13  not found on PATH; Cloudflare Workers needs it: Workers run Python "
        "3.13 (Pyodide 0.28)",
        "                  -> `pyenv install 3.13` and put its bin folder on PATH, or `apt-get "
        "install python3.13`",
        "6 problems, 0 warnings.",
    ]


def test_a_path_with_the_tools_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    path = every_tool(tmp_path)
    code, out = doctor(project(tmp_path, *MANIFESTS), path, monkeypatch, capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[-1] == "Everything looks right."
    checked = {line.split()[1]: line for line in lines[4:-1]}
    assert list(checked) == ["node", "npm", "python3.12", "uv", "pywrangler", "python3.13"]
    assert all(line.startswith("  ok ") for line in checked.values()), out
    assert "3.12." in checked["python3.12"] and "3.13." in checked["python3.13"]
    assert checked["pywrangler"].endswith(str(path / "pywrangler"))


def test_only_what_the_folders_manifests_need_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm
    path = linked(tmp_path, {"node": node, "npm": npm, "python3.12": python312()})
    code, out = doctor(project(tmp_path, "serverless.yml"), path, monkeypatch, capsys)
    assert code == 0, out
    assert [line.split()[1] for line in out.splitlines()[2:-1]] == ["node", "npm", "python3.12"]


def test_the_wrong_python_behind_the_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    wrong = str(getattr(sys, "_base_executable", sys.executable))  # this run's 3.11
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm
    path = linked(tmp_path, {"node": node, "npm": npm, "python3.12": wrong})
    code, out = doctor(project(tmp_path, "serverless.yml"), path, monkeypatch, capsys)
    assert code == 1
    version = ".".join(map(str, sys.version_info[:3]))
    assert (
        f"FAIL  python3.12  {path / 'python3.12'} is version {version}, not 3.12; AWS Lambda "
        "needs it: the function's packages are built for the runtime's Python 3.12"
    ) in out.splitlines()


def test_a_folder_without_manifests_is_told_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    folder = project(tmp_path)
    code, out = doctor(folder, Path(os.defpath), monkeypatch, capsys)
    assert code == 1
    assert out.splitlines()[1:3] == [
        f"FAIL  deploy  no serverless.yml, vercel.json, wrangler.toml in {folder}",
        "              -> run it in the project's folder (continuum new makes one)",
    ]
