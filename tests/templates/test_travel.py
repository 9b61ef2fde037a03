"""Each starter travels: made by ``continuum new``, committed and git-cloned to another
folder, its README's first block installs the dev dependencies and runs the tests there
with nothing but a stock Python (the interpreter this venv came from, and the pip its
``-m venv`` ships), without the checkout on any path; then the clone builds its bundle
with the platform's real tool, and the bundle holds only what runs.

The Lambda starter is also tried as a project grows: with its own ``core/``,
``platforms/`` and ``emulator/`` packages, which must work beside the toolkit in the
tests and arrive intact in the zip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from continuum.emulator.pytest_plugin import EmulatorHandle
from tests.bundles import unexpected
from tests.templates.conftest import New
from tests.tooling import SERVERLESS_QUIET, base_python, missing, project_wheel, python312

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = Path(os.environ.get("CONTINUUM_NODE_MODULES", ROOT / "node_modules"))
PROBE = ROOT / "tests" / "platforms" / "aws_lambda" / "bytecode_probe.py"
for helpers in ("vercel", "cloudflare"):
    if str(ROOT / "tests" / "platforms" / helpers) not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / "platforms" / helpers))

pytestmark = [pytest.mark.slow, pytest.mark.node, pytest.mark.timeout(900)]

#: What a user's own packages say, so the test can tell them from the toolkit's.
OWN_PACKAGES = {
    "core/__init__.py": 'NAME = "the user\'s core"\n',
    "platforms/__init__.py": 'NAME = "the user\'s platforms"\n',
    "emulator/__init__.py": 'NAME = "the user\'s emulator"\n',
    "tests/test_own_packages.py": '''"""The project's own packages beside the toolkit's."""

import core
import emulator
import platforms
from continuum.cache import UpstashCache


def test_own_packages_and_the_toolkit_side_by_side(upstash_emulator, monkeypatch):
    names = (core.NAME, platforms.NAME, emulator.NAME)
    assert names == ("the user's core", "the user's platforms", "the user's emulator")
    upstash_emulator.apply_env(monkeypatch)
    cache = UpstashCache()
    cache.set("side-by-side", [1, 2])
    assert cache.get("side-by-side") == [1, 2]
''',
}


def clean_env(**extra: str) -> dict[str, str]:
    """A user's shell: no trace of this checkout, its venv or this test run."""
    drop = ("UPSTASH_", "CONTINUUM_", "PYTEST_", "PYTHON", "VIRTUAL_ENV", "UV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))]
    env["PATH"] = os.pathsep.join(path)
    return {**env, **extra}


def travel(made: Path, dest: Path) -> Path:
    """Commit the project and clone it elsewhere, as a teammate would get it."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=made, check=True)
    subprocess.run([*git, "add", "-A"], cwd=made, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=made, check=True)
    subprocess.run(["git", "clone", "-q", str(made), str(dest)], check=True)
    return dest


def readme_block(project: Path) -> str:
    """The README's opening fenced block: the first thing after its title."""
    text = (project / "README.md").read_text()
    match = re.match(r"# [^\n]+\n\n```sh\n(.*?)\n```\n", text, re.DOTALL)
    assert match, f"README.md does not open with a fenced sh block:\n{text[:500]}"
    return match.group(1)


def run_readme(project: Path, tmp: Path) -> str:
    """Run the opening block with `python3` being a stock Python; returns pytest's output."""
    stock = tmp / "stock-bin"
    stock.mkdir()
    (stock / "python3").symlink_to(base_python())
    env = clean_env(PATH=f"{stock}{os.pathsep}{clean_env()['PATH']}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    # The whole summary line: every test passed, none skipped, and the project's own
    # pytest configuration raised no warning in the project's own venv.
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ [1-9]\d* passed in [\d.]+s =+", summary), done.stdout[-2000:]
    pip = subprocess.run(
        [str(project / ".venv" / "bin" / "pip"), "--version"], capture_output=True, text=True
    ).stdout
    stock_pip = subprocess.run(
        [base_python(), "-c", "import ensurepip; print(ensurepip.version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert pip.startswith(f"pip {stock_pip} "), (pip, stock_pip)
    return done.stdout


def started(new: New, tmp: Path, platform: str) -> Path:
    made = tmp / "made" / "shop"
    assert new(made, platform) == 0
    return made


# -- AWS Lambda -------------------------------------------------------------------------


def serverless_package(project: Path) -> Path:
    serverless = NODE_MODULES / ".bin" / "serverless"
    if not serverless.exists():
        missing("node_modules/.bin/serverless", "run npm ci (./scripts/test does)")
    (project / "node_modules").symlink_to(NODE_MODULES)
    env = clean_env(**SERVERLESS_QUIET)
    env["PATH"] = f"{Path(python312()).parent}{os.pathsep}{env['PATH']}"
    run = subprocess.run(
        [str(serverless), "package"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return project / ".serverless"


@pytest.mark.parametrize("own_packages", [False, True], ids=["starter", "own-core-platforms"])
def test_lambda_starter_travels_and_packages_only_what_runs(
    new: New, tmp_path: Path, own_packages: bool
) -> None:
    made = started(new, tmp_path, "lambda")
    if own_packages:
        for name, text in OWN_PACKAGES.items():
            (made / name).parent.mkdir(exist_ok=True)
            (made / name).write_text(text)
        handler = made / "handler.py"
        handler.write_text(handler.read_text() + "\nfrom core import NAME as CORE_NAME  # noqa\n")
    project = travel(made, tmp_path / "elsewhere" / "shop")
    output = run_readme(project, tmp_path)
    assert ("tests/test_own_packages.py ." in output) is own_packages

    built = serverless_package(project)
    stack = json.loads((built / "cloudformation-template-update-stack.json").read_text())
    function = next(r for r in stack["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    assert function["Properties"]["Handler"] == "handler.handler"
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["UPSTASH_REDIS_REST_TOKEN_PARAM"] == "/shop/dev/upstash-token"

    mine = {"handler.py"} | {n for n in OWN_PACKAGES if own_packages and not n.startswith("tests/")}
    compiled = {re.sub(r"([^/]+)\.py$", r"__pycache__/\1.cpython-312.pyc", n) for n in mine}
    with zipfile.ZipFile(built / "shop.zip") as archive:
        names = archive.namelist()
        wrong = unexpected(
            names,
            archive.read,
            requirements=["continuum-cache"],
            own=lambda name: name in mine | compiled,
            python="3.12",
            never=("continuum/platforms/vercel/", "continuum/platforms/cloudflare/"),
        )
        assert wrong == [], wrong
        with zipfile.ZipFile(project_wheel()) as wheel:
            assert archive.read("continuum/__init__.py") == wheel.read("continuum/__init__.py")
        for name in mine - {"handler.py"}:
            assert archive.read(name).decode() == OWN_PACKAGES[name], f"{name} was replaced"
    probe = subprocess.run(
        [python312(), "-I", "-S", str(PROBE), str(built / "shop.zip"), "handler"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert json.loads(probe.stdout) == {
        "missing": [],
        "foreign": [],
        "timestamp": [],
        "stale": [],
        "compiled": [],
    }


# -- Vercel -----------------------------------------------------------------------------


def test_vercel_starter_travels_builds_only_what_runs_and_answers(
    new: New, tmp_path: Path, upstash_emulator: EmulatorHandle
) -> None:
    from vercel_function import FunctionProcess, build_in, materialise

    project = travel(started(new, tmp_path, "vercel"), tmp_path / "elsewhere" / "shop")
    run_readme(project, tmp_path)
    shutil.rmtree(project / ".venv")  # a deploy builds from the clone, not from the venv
    built = build_in(project)
    config = built.vc_config()
    assert (config["memory"], config["maxDuration"]) == (256, 10)  # from vercel.json
    pyproject = (project / "pyproject.toml").read_text()
    assert str(tmp_path) not in pyproject, "vercel build wrote an absolute path"
    files = built.bundle()
    wrong = unexpected(
        files,
        lambda name: (project / files[name]).read_bytes(),
        requirements=["continuum-cache[vercel]", "vercel-runtime", "pip"],
        own=lambda name: name == "api/index.py",
        python="3.12",
        site="_vendor/",
        never=("continuum/platforms/",),
    )
    assert wrong == [], wrong

    function = materialise(built, tmp_path / "deployed" / "index.func")
    log = (tmp_path / "function.log").open("wb")
    instance = FunctionProcess(function, upstash_emulator.env, log)
    try:
        status, _, body = instance.send("GET", "/", {}, None)
        assert (status, json.loads(body)) == (200, {"service": "shop", "backend": "upstash"})
        put = instance.send("PUT", "/notes/a", {"content-type": "application/json"}, b'{"x": 1}')
        assert put[0] == 201, put
        status, _, body = instance.send("GET", "/notes/a", {}, None)
        assert (status, json.loads(body)["note"]) == (200, {"x": 1})
    finally:
        instance.close()
        log.close()


# -- Cloudflare Workers -----------------------------------------------------------------


def test_cloudflare_starter_travels_and_uploads_only_what_runs(new: New, tmp_path: Path) -> None:
    """``pywrangler sync`` cannot run offline (it downloads a Pyodide Python), so its one
    step is played here: the project's dependencies installed into ``python_modules/``
    for Python 3.13, pure wheels only, without bytecode, as it does. The rest is the
    pinned wrangler's own dry run: the ``[build]`` step, module collection and the
    upload list."""
    from pyodide_worker import wrangler_cli

    project = travel(started(new, tmp_path, "cloudflare"), tmp_path / "elsewhere" / "shop")
    run_readme(project, tmp_path)
    vendored = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target",
         "python_modules", "--only-binary=:all:", "--platform", "any", "--implementation",
         "py", "--python-version", "3.13", *map(str, (project / "vendor").glob("*.whl"))],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert vendored.returncode == 0, vendored.stderr
    (project / "node_modules").symlink_to(NODE_MODULES)
    out = tmp_path / "upload"
    done = subprocess.run(
        [str(wrangler_cli()), "deploy", "--dry-run", "--outdir", str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(WRANGLER_SEND_METRICS="false", CI="true"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    uploaded = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    uploaded.discard("README.md")  # wrangler's note on the output folder
    assert {"entry.py", "app.py", "python_modules/continuum/cache/client.py"} <= uploaded

    def read(name: str) -> bytes:
        return (project / name).read_bytes()

    wrong = unexpected(
        uploaded,
        read,
        requirements=["continuum-cache"],
        own=lambda name: name in {"entry.py", "app.py"},
        python="3.13",
        site="python_modules/",
        never=("continuum/platforms/aws_lambda/", "continuum/platforms/vercel/"),
    )
    assert wrong == [], wrong
