"""The Vercel starter builds with the real CLI (``vercel build``, offline) and the function
it produces answers through the emulator, called the way Vercel's Python runtime calls it.

The built function runs under Python 3.12 with ``-S``, from a folder holding only what
the build's ``filePathMap`` lists, so a dependency missing from the bundle fails here as it
would on Vercel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from continuum.cli.main import main
from tests.tooling import missing, python312

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = Path(os.environ.get("CONTINUUM_NODE_MODULES", ROOT / "node_modules"))

pytestmark = [pytest.mark.slow, pytest.mark.node, pytest.mark.timeout(900)]

# Calls the built handler once per request given as argv JSON; prints one JSON answer each.
HOST = """
import base64, importlib, json, sys
sys.path.insert(0, ".")
module, _, name = json.load(open(".vc-config.json"))["handler"].rpartition(".")
handler = getattr(importlib.import_module(module), name)
for raw in sys.argv[1:]:
    request = json.loads(raw)
    payload = {"method": request["method"], "path": request["path"],
               "headers": {"host": "shop.vercel.app", "content-type": "application/json"},
               "body": base64.b64encode(request.get("body", "").encode()).decode(),
               "encoding": "base64"}
    result = handler({"body": json.dumps(payload)}, None)
    body = result.get("body", "")
    if result.get("encoding") == "base64":
        body = base64.b64decode(body).decode()
    print(json.dumps({"status": result["statusCode"], "body": body}))
"""


def test_vercel_starter_builds_and_its_function_answers(upstash_emulator, tmp_path: Path) -> None:
    vercel = NODE_MODULES / ".bin" / "vercel"
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    if not vercel.exists() or shutil.which("node") is None:
        missing("the Vercel CLI", "run npm ci (vercel 58.10.0)")
    if not os.access(uv, os.X_OK):
        missing("uv", "pip install uv (it is in the dev extras)")
    py312 = python312()
    project = tmp_path / "shop"
    assert main(["new", str(project), "--platform", "vercel"]) == 0
    (project / ".vercel").mkdir()
    (project / ".vercel" / "project.json").write_text(
        json.dumps({"projectId": "prj_starter", "orgId": "team_starter", "settings": {}})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "PYTEST_"))}
    env["PATH"] = os.pathsep.join([str(Path(py312).parent), str(Path(uv).parent), env["PATH"]])
    env["VERCEL_TELEMETRY_DISABLED"] = "1"
    env.pop("VIRTUAL_ENV", None)
    build = subprocess.run(
        [str(vercel), "build", "--yes"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    func = project / ".vercel" / "output" / "functions" / "api" / "index.func"
    assert build.returncode == 0 and (func / ".vc-config.json").exists(), build.stderr[-3000:]
    config = json.loads((func / ".vc-config.json").read_text())
    assert (config["memory"], config["maxDuration"]) == (256, 10)  # from vercel.json

    bundle = tmp_path / "bundle"
    shutil.copytree(func, bundle)
    for inside, source in config.get("filePathMap", {}).items():
        target = bundle / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project / source, target)

    requests = [
        {"method": "GET", "path": "/"},
        {"method": "PUT", "path": "/notes/a", "body": json.dumps({"text": "built"})},
        {"method": "GET", "path": "/notes/a"},
    ]
    run = subprocess.run(
        [py312, "-S", "-c", HOST, *[json.dumps(r) for r in requests]],
        cwd=bundle,
        env={
            "PATH": env["PATH"],
            "LANG": "C.UTF-8",
            **config.get("environment", {}),
            **upstash_emulator.env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["status"] for a in answers] == [200, 201, 200]
    assert json.loads(answers[0]["body"])["backend"] == "upstash"
    assert json.loads(answers[2]["body"])["note"] == {"text": "built"}
