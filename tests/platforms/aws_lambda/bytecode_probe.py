"""What a Lambda zip's bytecode is worth to the runtime's Python (run it under 3.12).

    python3.12 -I -S bytecode_probe.py ZIP MODULE

Prints one JSON object, each entry a list of paths inside the zip:

- ``missing``: ``.py`` files with no ``__pycache__/NAME.<this cache tag>.pyc`` beside them;
- ``foreign``: ``.pyc`` files for another Python (another cache tag or magic number);
- ``timestamp``: pycs validated by the source's mtime, which Lambda's files never match;
- ``stale``: hash-based pycs whose recorded hash is not their source's hash;
- ``compiled``: what Python compiled from source while importing MODULE from the zip's
  files laid out as Lambda lays them out (the zip's dates, nothing writable), i.e. every
  module whose bytecode was not used.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

TAG = sys.implementation.cache_tag


def audit(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    names = set(archive.namelist())
    found: dict[str, list[str]] = {"missing": [], "foreign": [], "timestamp": [], "stale": []}
    for name in sorted(names):
        path = PurePosixPath(name)
        if path.suffix == ".py":
            pyc = str(path.parent / "__pycache__" / f"{path.stem}.{TAG}.pyc").removeprefix("./")
            if pyc not in names:
                found["missing"].append(name)
        elif path.suffix == ".pyc":
            data = archive.read(name)
            if f".{TAG}." not in path.name or data[:4] != importlib.util.MAGIC_NUMBER:
                found["foreign"].append(name)
                continue
            flags = int.from_bytes(data[4:8], "little")
            if not flags & 0b1:
                found["timestamp"].append(name)
                continue
            source = str(path.parent.parent / f"{path.name.split('.')[0]}.py").removeprefix("./")
            if source not in names or data[8:16] != importlib.util.source_hash(
                archive.read(source)
            ):
                found["stale"].append(name)
    return found


def cold_import(archive: zipfile.ZipFile, module: str) -> list[str]:
    """Import MODULE as a cold Lambda start would, and list what had to be compiled."""
    root = Path(tempfile.mkdtemp(prefix="var-task-"))
    for info in archive.infolist():
        target = Path(archive.extract(info, root))
        stamp = time.mktime((*info.date_time, 0, 0, -1))
        os.utime(target, (stamp, stamp))
    sys.dont_write_bytecode = True  # /var/task is read-only
    sys.path.insert(0, str(root))
    compiled: list[str] = []
    original = importlib.machinery.SourceFileLoader.source_to_code

    def counting(self, data, path, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).startswith(str(root)):
            compiled.append(str(Path(path).relative_to(root)))
        return original(self, data, path, **kwargs)

    importlib.machinery.SourceFileLoader.source_to_code = counting  # type: ignore[method-assign]
    importlib.import_module(module)
    return compiled


def main() -> None:
    zip_path, module = sys.argv[1:3]
    with zipfile.ZipFile(zip_path) as archive:
        report = audit(archive)
        report["compiled"] = cold_import(archive, module)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
