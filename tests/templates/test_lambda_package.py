"""The Lambda starter's ``serverless.yml`` packages for real: Serverless Framework v3 with
serverless-python-requirements, offline, from a freshly generated project.

No AWS account is touched: the manifest holds no ``${ssm:}``/``${aws:}`` variable.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from continuum.cli.main import main
from tests.tooling import missing, python312

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = Path(os.environ.get("CONTINUUM_NODE_MODULES", ROOT / "node_modules"))
QUIET = {
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "SLS_INTERACTIVE_SETUP_DISABLE": "1",
    "SLS_DEPRECATION_DISABLE": "*",
}

pytestmark = [pytest.mark.slow, pytest.mark.node, pytest.mark.timeout(900)]


def python312_dir() -> str:
    return str(Path(python312()).parent)


def test_generated_lambda_project_packages_offline(tmp_path: Path) -> None:
    serverless = NODE_MODULES / ".bin" / "serverless"
    if not serverless.exists():
        missing("node_modules/.bin/serverless", "run npm ci (./scripts/test does)")
    project = tmp_path / "orders"
    assert main(["new", str(project), "--platform", "lambda"]) == 0
    (project / "node_modules").symlink_to(NODE_MODULES)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "PYTEST_"))},
        **QUIET,
        "PATH": python312_dir() + os.pathsep + os.environ.get("PATH", ""),
    }
    run = subprocess.run(
        [str(serverless), "package"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    with zipfile.ZipFile(project / ".serverless" / "orders.zip") as bundle:
        names = set(bundle.namelist())
    assert {"handler.py", "core/cache.py", "httpx/__init__.py"} <= names
    assert "platforms/aws_lambda/secrets.py" in names
    assert not any(n.startswith(("tests/", "node_modules/")) for n in names)

    stack = json.loads(
        (project / ".serverless" / "cloudformation-template-update-stack.json").read_text()
    )
    function = next(r for r in stack["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["UPSTASH_REDIS_REST_TOKEN_PARAM"] == "/orders/dev/upstash-token"
    assert "UPSTASH_REDIS_REST_TOKEN" not in variables
    assert function["Properties"]["Handler"] == "handler.handler"
