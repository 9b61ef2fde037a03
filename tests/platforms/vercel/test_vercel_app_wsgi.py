"""The Vercel app under an ordinary WSGI caller (Flask's test client), outside Vercel.

Vercel's runtime hands WSGI the raw path in ``PATH_INFO``; ordinary servers decode
``PATH_INFO`` and keep the raw target in ``REQUEST_URI``/``RAW_URI``. Both must decode a
path exactly once. Each case runs in a fresh interpreter because the app keeps its API
object for the process's life, as a warm instance does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import behaviour

from continuum.emulator.pytest_plugin import EmulatorHandle

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, sys
from continuum.platforms.vercel.app import app
client = app.test_client()
out = []
for method, path, headers, body in json.loads(sys.argv[1]):
    reply = client.open(path, method=method, headers=headers, data=body)
    out.append([reply.status_code, dict(reply.headers), reply.get_data(as_text=True)])
print(json.dumps(out))
"""


def _run(env: dict[str, str], calls: list[tuple[str, str, dict[str, str], str]]) -> list[Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(calls)],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_plain_wsgi_server_decodes_the_path_once(emulator: EmulatorHandle) -> None:
    auth = {
        "authorization": f"Bearer {behaviour.KEYS['cache']}",
        "content-type": "application/json",
    }
    put, got, other, options = _run(
        {**behaviour.ENV, **emulator.env},
        [
            ("PUT", "/v1/cache/query/%2541", auth, json.dumps({"value": "pct"})),
            ("GET", "/v1/cache/query/%2541", auth, ""),
            ("GET", "/v1/cache/query/A", auth, ""),
            ("OPTIONS", "/v1/stats", auth, ""),
        ],
    )
    assert put[0] == 200 and json.loads(put[2])["key"] == "%41", put
    assert got[0] == 200 and json.loads(got[2])["value"] == "pct", got
    assert other[0] == 404, "the path was decoded twice"
    assert options[0] == 405 and json.loads(options[2])["error"]["code"] == "method_not_allowed"
    headers = {k.lower(): v for k, v in put[1].items()}
    assert headers["x-cache-backend"] == "upstash" and "server-timing" in headers


CHUNKED = """
import io, json
from continuum.platforms.vercel.app import app


class Upload(io.RawIOBase):
    '''A chunked upload of 50 MB that counts what the app pulls from it.'''

    def __init__(self) -> None:
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.sent >= 50 * 1024 * 1024:
            return 0
        size = min(len(buffer), 65536)
        buffer[:size] = b"x" * size
        self.sent += size
        return size


upload = Upload()
environ = {"wsgi.input": io.BufferedReader(upload), "HTTP_TRANSFER_ENCODING": "chunked",
           "wsgi.input_terminated": True}
reply = app.test_client().put("/v1/cache/query/big", headers={"authorization": "Bearer %s"},
                              environ_overrides=environ)
print(json.dumps([reply.status_code, reply.get_json(), upload.sent]))
"""


def test_a_chunked_upload_is_refused_without_reading_it_all(emulator: EmulatorHandle) -> None:
    """No declared length: the app stops reading just past CONTINUUM_MAX_BODY.

    Flask's test client drives the app because the upload must be counted as it is read;
    a socket server would hide how much of it the app pulled.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    done = subprocess.run(
        [sys.executable, "-c", CHUNKED % behaviour.KEYS["cache"]],
        cwd=ROOT,
        env={**clean, **behaviour.ENV, **emulator.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    status, payload, read = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 413 and payload["error"]["code"] == "payload_too_large", payload
    assert read <= behaviour.MAX_BODY + 2 * 65536, f"the app read {read} bytes of the upload"
