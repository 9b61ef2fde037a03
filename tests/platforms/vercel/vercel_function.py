"""Build the Vercel function offline with the real CLI, then run what was built.

``vercel build`` (the pinned 58.10.0) runs in a temporary copy holding exactly what
``vercel deploy`` would upload: the repository's files minus ``.vercelignore`` (applied
with the ``ignore`` package, the matcher the CLI uses), plus a stub
``.vercel/project.json`` (without one the CLI builds nothing and still exits 0). The
repository itself is never written to.

The built function is then run as Vercel runs it: its ``filePathMap`` is materialised
into a folder (the bundle Vercel would upload) and started under Python 3.12 in either
of the runtime's two modes: the server mode used in production (``ServedFunction``: the
runtime serves real HTTP after announcing its port over an IPC socket) and the event
mode (``FunctionProcess``: ``func_host.py`` calls ``vc__handler__python.vc_handler``
with the events Vercel's proxy sends).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.tooling import JsonLinesChild, missing, python312, repository_files

ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = Path(os.environ.get("CONTINUUM_NODE_MODULES", ROOT / "node_modules"))
VERCEL = NODE_MODULES / ".bin" / "vercel"
FUNC = Path(".vercel/output/functions/api/index.func")
HOST = Path(__file__).with_name("func_host.py")

BUILD_TIMEOUT = 600.0
ANSWER_TIMEOUT = 60.0


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    if not os.access(found, os.X_OK):
        missing("uv", "pip install uv (it is in the dev extras)")
    return found


def vercel_cli() -> Path:
    if not VERCEL.exists() or shutil.which("node") is None:
        missing("the Vercel CLI", "install Node.js 20 and run npm ci (vercel 58.10.0)")
    return VERCEL


def uploaded_files() -> list[str]:
    """What ``vercel deploy`` uploads: files git sees, minus ``.vercelignore``."""
    names = repository_files()
    script = (
        "const ignore = require(process.argv[1]);"
        "const fs = require('fs');"
        "const ig = ignore().add(fs.readFileSync(process.argv[2], 'utf8'));"
        "const names = JSON.parse(fs.readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(names.filter((n) => !ig.ignores(n))));"
    )
    kept = subprocess.run(
        ["node", "-e", script, str(NODE_MODULES / "ignore"), str(ROOT / ".vercelignore")],
        input=json.dumps(names).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    result: list[str] = json.loads(kept)
    return result


@dataclass
class Build:
    project: Path  # the temporary copy the CLI built in
    log: str

    @property
    def function(self) -> Path:
        return self.project / FUNC

    def vc_config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads((self.function / ".vc-config.json").read_text())
        return config

    def output_config(self) -> dict[str, Any]:
        path = self.project / ".vercel" / "output" / "config.json"
        config: dict[str, Any] = json.loads(path.read_text())
        return config

    def bundle(self) -> dict[str, str]:
        """Function file -> source file (relative to the project), as Vercel uploads it."""
        mapping: dict[str, str] = self.vc_config().get("filePathMap", {})
        return mapping


def build(workdir: Path) -> Build:
    """Run ``vercel build`` on a copy of the deployable files; fail with its log."""
    project = workdir / "project"
    for name in uploaded_files():
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return build_in(project)


def build_in(project: Path) -> Build:
    """Run ``vercel build`` in ``project`` (with a stub project file); fail with its log."""
    cli, py312, uv_bin = vercel_cli(), python312(), uv()
    (project / ".vercel").mkdir(exist_ok=True)
    (project / ".vercel" / "project.json").write_text(
        json.dumps(
            {"projectId": "prj_continuum_test", "orgId": "team_continuum_test", "settings": {}}
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "PYTEST_"))}
    env["PATH"] = os.pathsep.join(
        [str(Path(py312).parent), str(Path(uv_bin).parent), os.environ.get("PATH", "")]
    )
    env["VERCEL_TELEMETRY_DISABLED"] = "1"
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [str(cli), "build", "--yes"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    log = done.stdout + done.stderr
    result = Build(project, log)
    if done.returncode != 0 or not (result.function / ".vc-config.json").exists():
        pytest.fail(f"vercel build produced no function (exit {done.returncode}):\n{log[-4000:]}")
    return result


def materialise(built: Build, dest: Path) -> Path:
    """Lay the function out as Vercel deploys it: its own files plus ``filePathMap``."""
    shutil.copytree(built.function, dest)
    for inside, source in built.bundle().items():
        target = dest / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built.project / source, target)
    return dest


class FunctionProcess(JsonLinesChild):
    """One warm instance of the built function, answering requests one at a time."""

    def __init__(self, func_dir: Path, env: Mapping[str, str], log: IO[bytes]) -> None:
        config = json.loads((func_dir / ".vc-config.json").read_text())
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
            **config.get("environment", {}),
            **env,
        }
        super().__init__(
            [python312(), "-S", "-u", str(HOST)],
            what="the built function",
            cwd=func_dir,
            log=log,
            boot_timeout=ANSWER_TIMEOUT,
            env=full_env,
        )

    def send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        sent = {"host": "continuum.vercel.app", "x-forwarded-proto": "https", **headers}
        message = {
            "method": method,
            "path": path,
            "headers": sent,
            "body": base64.b64encode(body or b"").decode(),
        }
        self._write(message)
        answer = self._next(ANSWER_TIMEOUT)
        if "error" in answer:
            pytest.fail(f"the function's handler raised:\n{answer['error']}")
        got = {
            k.lower(): ", ".join(v) if isinstance(v, list) else str(v)
            for k, v in answer["headers"].items()
        }
        return int(answer["status"]), got, base64.b64decode(answer["body"])


class ServedFunction:
    """The built function in the runtime's server mode, as Vercel runs it in production.

    With ``VERCEL_IPC_PATH`` set, importing ``vc__handler__python`` connects to that
    Unix socket, serves the app on a loopback HTTP port, announces the port with a
    ``server-started`` message and then takes real HTTP requests. This plays the
    platform's side: it listens on the socket, reads the announcement (and every later
    message, so the function never blocks on a full socket) and sends requests with the
    internal headers the platform adds.
    """

    def __init__(self, func_dir: Path, env: Mapping[str, str], log: IO[bytes]) -> None:
        import httpx

        self._dir = Path(tempfile.mkdtemp(prefix="vcipc"))  # short: Unix socket paths are
        ipc_path = self._dir / "ipc.sock"  # limited to ~100 bytes
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(ipc_path))
        self._listener.listen(1)
        self._listener.settimeout(ANSWER_TIMEOUT)
        config = json.loads((func_dir / ".vc-config.json").read_text())
        module = config["handler"].rpartition(".")[0]
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
            **config.get("environment", {}),
            **env,
            "VERCEL_IPC_PATH": str(ipc_path),
        }
        self._proc = subprocess.Popen(
            [python312(), "-S", "-u", "-c", f"import {module}"],
            cwd=func_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        try:
            conn, _ = self._listener.accept()
        except TimeoutError:
            self.close()
            pytest.fail("the built function never connected to the IPC socket")
        threading.Thread(target=self._pump, args=(conn,), daemon=True).start()
        port = self._wait_for_port()
        self._client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=ANSWER_TIMEOUT)
        self._invocations = itertools.count(1)

    def _pump(self, conn: socket.socket) -> None:
        buffer = b""
        while chunk := conn.recv(65536):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))
        conn.close()

    def _wait_for_port(self) -> int:
        while True:
            try:
                message = self._messages.get(timeout=ANSWER_TIMEOUT)
            except queue.Empty:
                self.close()
                pytest.fail("the built function never announced its HTTP port")
            if message.get("type") == "server-started":
                return int(message["payload"]["httpPort"])
            if message.get("type") == "unrecoverable-error":
                self.close()
                pytest.fail(f"the built function failed to start: {message['payload']}")

    def send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        invocation = str(next(self._invocations))
        sent = {
            "x-forwarded-proto": "https",
            "x-vercel-internal-invocation-id": invocation,
            "x-vercel-internal-request-id": invocation,
            **headers,
        }
        response = self._client.request(method, path, headers=sent, content=body or b"")
        got = {k.lower(): v for k, v in response.headers.items()}
        return response.status_code, got, response.content

    def close(self) -> None:
        if getattr(self, "_client", None) is not None:
            self._client.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)
