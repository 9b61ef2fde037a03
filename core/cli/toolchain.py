"""``continuum doctor --deploy``: are the tools this project's deploys need on PATH?

The manifests in the folder say which deploys the project has (``serverless.yml``,
``vercel.json``, ``wrangler.toml``); each needs a few programs besides Python, and a
missing one otherwise shows up late, as a build tool's own error (``python3.12 not
found!``, ``uv is required but was not found``). Each is looked up on PATH, its version
checked where the deploy depends on it, and each missing one is reported with the
command that installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from continuum.cli.doctor import Level, Report


@dataclass(frozen=True)
class Tool:
    command: str
    purpose: str
    install: str
    version: str = ""  # the version `command --version` must report (a prefix), if any
    runs: bool = True  # False: only looked up (running it may download things)


NODE = Tool(
    "node",
    "the platform's command-line tool runs on it",
    "install Node.js 20 or newer: https://nodejs.org, or `apt-get install nodejs npm`",
)
NPM = Tool(
    "npm", "it installs the pinned platform tools", "it comes with Node.js (`apt-get install npm`)"
)
PYTHON312 = Tool(
    "python3.12",
    "the function's packages are built for the runtime's Python 3.12",
    "`pyenv install 3.12` and put its bin folder on PATH, or `apt-get install python3.12`",
    version="3.12",
)
PYTHON313 = Tool(
    "python3.13",
    "Workers run Python 3.13 (Pyodide 0.28)",
    "`pyenv install 3.13` and put its bin folder on PATH, or `apt-get install python3.13`",
    version="3.13",
)
UV = Tool("uv", "it installs the function's packages", "`python3 -m pip install uv`")
PYWRANGLER = Tool(
    "pywrangler",
    "it vendors the packages and deploys the Worker",
    "`uv tool install workers-py`",
    runs=False,
)

#: manifest -> (the deploy it describes, the tools it needs)
DEPLOYS: dict[str, tuple[str, tuple[Tool, ...]]] = {
    "serverless.yml": ("AWS Lambda", (NODE, NPM, PYTHON312)),
    "vercel.json": ("Vercel", (NODE, NPM, UV, PYTHON312)),
    "wrangler.toml": ("Cloudflare Workers", (NODE, NPM, UV, PYWRANGLER, PYTHON313)),
}


def check(folder: Path, path: str | None = None) -> Report:
    """The deploy tools the manifests in ``folder`` need, looked up on ``path``."""
    report = Report()
    found = [
        (manifest, *DEPLOYS[manifest]) for manifest in DEPLOYS if (folder / manifest).is_file()
    ]
    if not found:
        report.add(
            Level.FAIL,
            "deploy",
            f"no {', '.join(DEPLOYS)} in {folder}",
            "run it in the project's folder (continuum new makes one)",
        )
        return report
    needs: dict[str, list[str]] = {}
    tools: dict[str, Tool] = {}
    for manifest, deploy, wanted in found:
        report.add(Level.INFO, "deploy", f"{deploy} ({manifest})")
        for tool in wanted:
            tools[tool.command] = tool
            needs.setdefault(tool.command, []).append(deploy)
    for command, tool in tools.items():
        _check_tool(report, tool, needs[command], path)
    return report


def _check_tool(report: Report, tool: Tool, deploys: list[str], path: str | None) -> None:
    why = f"{' and '.join(deploys)} need{'s' * (len(deploys) == 1)} it: {tool.purpose}"
    found = shutil.which(tool.command, path=path)
    if found is None:
        report.add(Level.FAIL, tool.command, f"not found on PATH; {why}", tool.install)
        return
    if not tool.runs:
        report.add(Level.OK, tool.command, found)
        return
    version = _version(found, path)
    if version is None:
        report.add(Level.FAIL, tool.command, f"{found} does not run; {why}", tool.install)
    elif tool.version and not version.startswith(tool.version):
        report.add(
            Level.FAIL,
            tool.command,
            f"{found} is version {version}, not {tool.version}; {why}",
            tool.install,
        )
    else:
        report.add(Level.OK, tool.command, f"{version} ({found})")


def _version(program: str, path: str | None) -> str | None:
    env = dict(os.environ) if path is None else {**os.environ, "PATH": path}
    try:
        done = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=30, env=env
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\d+\.\d+(\.\d+)?", done.stdout + done.stderr)
    return match.group(0) if done.returncode == 0 and match else None
