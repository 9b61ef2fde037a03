"""Where a migration stands, on disk, so an interrupted run resumes without loss or repeat.

Two files, both replaced atomically (written to a temporary file, flushed to disk, then
renamed over the old one), so a crash leaves the old version or the new one, never half:

- ``<name>.keys``: the keys to copy, fixed when the run starts (one base64 line each,
  binary-safe), with their SHA-256 in the checkpoint;
- ``<name>.json``: the run's identity (source, target, pattern, a random run id) and its
  progress: how far the target-existence check got, which keys existed, the last chunk
  applied, the counts so far.

The one thing a local file cannot know is whether the request in flight when the process
died reached Upstash. Each request is therefore a transaction that also stores the
position in a marker key on the target (:func:`marker_key`); a resumed run reads it and
takes the later of the two positions. The marker is deleted when the run completes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from continuum.errors import ConfigurationError

__all__ = [
    "DONE", "Checkpoint", "Position", "later", "lock_path", "marker_key", "parse_marker",
]  # fmt: skip

FORMAT = 1
#: The chunk index of a position whose key is complete.
DONE = -1
Position = tuple[int, int]


def marker_key(run: str) -> str:
    """The target key holding a run's position while it runs."""
    return f"continuum:migrate:{run}"


def parse_marker(value: object) -> Position | None:
    """A position from the marker's value (None for the start marker or garbage)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    parts = value.split()
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def later(a: Position, b: Position) -> Position:
    """The further of two positions (a complete key is past all of its chunks)."""

    def rank(p: Position) -> tuple[int, float]:
        return (p[0], float("inf") if p[1] == DONE else p[1])

    return a if rank(a) >= rank(b) else b


@dataclass
class Checkpoint:
    """One run's identity and progress (see the module docstring)."""

    path: Path | None  # None: a dry run, kept in memory only
    run: str
    source: str
    target: str
    match: str
    key_count: int
    keys_sha256: str
    checked: int = 0
    conflicts: list[int] = field(default_factory=list)
    position: Position = (-1, DONE)
    partial: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[list[Any]] = field(default_factory=list)
    in_flight: dict[str, Any] | None = None
    complete: bool = False

    @classmethod
    def create(
        cls, path: Path | None, *, source: str, target: str, match: str, keys: Sequence[bytes]
    ) -> Checkpoint:
        """A new run over ``keys``: the key list is written first, then the checkpoint."""
        lines = b"".join(base64.b64encode(k) + b"\n" for k in keys)
        if path is not None:
            _atomic_write(_keys_path(path), lines)
        checkpoint = cls(
            path=path,
            run=secrets.token_hex(8),
            source=source,
            target=target,
            match=match,
            key_count=len(keys),
            keys_sha256=hashlib.sha256(lines).hexdigest(),
        )
        checkpoint.save()
        return checkpoint

    @classmethod
    def load(cls, path: Path) -> tuple[Checkpoint, list[bytes]] | None:
        """The checkpoint at ``path`` and its keys, or None when there is none."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            lines = _keys_path(path).read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"the checkpoint {path} cannot be read ({exc}); remove it, or pass --restart"
            ) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ConfigurationError(
                f"the checkpoint {path} is not one this version writes; pass --restart"
            )
        if hashlib.sha256(lines).hexdigest() != raw.get("keys_sha256"):
            raise ConfigurationError(
                f"the key list beside {path} does not match its checkpoint; pass --restart"
            )
        keys = [base64.b64decode(line) for line in lines.splitlines()]
        fields = {k: v for k, v in raw.items() if k != "format"}
        try:
            fields["position"] = tuple(fields["position"])
            return cls(path=path, **fields), keys
        except (KeyError, TypeError):
            raise ConfigurationError(
                f"the checkpoint {path} is not one this version writes; pass --restart"
            ) from None

    def save(self) -> None:
        if self.path is None:
            return
        data = asdict(self)
        data.pop("path")
        data["format"] = FORMAT
        _atomic_write(self.path, json.dumps(data, sort_keys=True).encode("utf-8"))

    def count(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    def remove(self) -> None:
        """Delete the run's files (it is over), and any temporary file a process killed
        in the middle of a write left behind."""
        if self.path is None:
            return
        for path in (self.path, _keys_path(self.path)):
            for stray in path.parent.glob(path.name + ".*.tmp"):
                stray.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        lock_path(self.path).unlink(missing_ok=True)


def _keys_path(path: Path) -> Path:
    return path.with_suffix(".keys")


def lock_path(path: Path) -> Path:
    """The lock a run holds while it works on the checkpoint at ``path``."""
    return path.with_suffix(".lock")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
