"""Runs a function built by ``vercel build`` the way Vercel's Python runtime calls it.

Started by the tests with Python 3.12, ``-S`` (the interpreter's own site-packages stay
off the path, so a dependency missing from the bundle fails here as it would on Vercel)
and the working directory set to the materialised ``index.func`` folder. Like the
Lambda bootstrap, it puts that folder first on ``sys.path``, imports the handler named
in ``.vc-config.json`` (``vc__handler__python.vc_handler``) and calls it with the event
Vercel's proxy sends: ``{"body": json.dumps({"method", "path", "headers", "body",
"encoding"})}``.

One JSON request per line on stdin, one JSON answer per line on stdout; the first line
written is ``{"ready": true}`` or ``{"ready": false, "error": ...}``. The function's own
output (its log lines) is moved to stderr so it cannot corrupt the protocol.
"""

import base64
import importlib
import json
import os
import sys
import traceback


def main() -> int:
    protocol = sys.stdout
    sys.stdout = sys.stderr
    root = os.getcwd()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [root] + [p for p in sys.path if p not in (here, "")]
    with open(os.path.join(root, ".vc-config.json"), encoding="utf-8") as fh:
        module_name, _, function_name = json.load(fh)["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except BaseException:
        protocol.write(json.dumps({"ready": False, "error": traceback.format_exc()}) + "\n")
        protocol.flush()
        return 1
    protocol.write(json.dumps({"ready": True}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        payload = {
            "method": message["method"],
            "path": message["path"],
            "headers": message["headers"],
            "body": message["body"],
            "encoding": "base64",
        }
        try:
            result = handler({"body": json.dumps(payload)}, None)
            body = result.get("body", "")
            if result.get("encoding") != "base64":
                body = base64.b64encode(body.encode()).decode()
            answer = {"status": result["statusCode"], "headers": result["headers"], "body": body}
        except BaseException:
            answer = {"error": traceback.format_exc()}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
