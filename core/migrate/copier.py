"""The copy engine behind ``continuum migrate``: a Redis's keys into an Upstash database.

A run goes:

1. **Keys.** SCAN MATCH on the source, duplicates dropped; the list is fixed for the run
   and kept beside the checkpoint (:mod:`continuum.migrate.checkpoint`).
2. **Existence check.** ``EXISTS k1 ... k500`` on the target (one billed command per
   500 keys; only a page that counts any is asked key by key). By default a key that
   exists stops the run before anything is written; ``replace`` overwrites such keys,
   ``skip`` leaves them as they are. Strings are written with NX unless replacing, so a
   string that appears in the target after the check (a dual write) is not overwritten.
3. **Copy.** Keys are read in lockstep groups (:mod:`continuum.migrate.keydata`), planned
   into chunks (:mod:`continuum.migrate.plan`) and sent as ``/multi-exec`` transactions
   under Upstash's request size, each ending with the marker that records its position.
   Before a request goes, the checkpoint records what it will do; after, that it did.
4. **End.** The marker is deleted.

``verify`` then reads every copied key (or a sample) from both stores and compares them.

The target is anything with ``execute(commands, *, write, transaction)``: an
``UpstashCache(fallback=False)`` for real, a :class:`DrySink` for ``--dry-run``, which
answers without sending so the very same code counts what a real run would bill.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from filelock import FileLock, Timeout

from continuum.errors import CacheError, CommandError
from continuum.migrate.checkpoint import (
    DONE,
    Checkpoint,
    Position,
    later,
    lock_path,
    marker_key,
    parse_marker,
)
from continuum.migrate.connection import RedisConnection
from continuum.migrate.keydata import KeyData, read_keys
from continuum.migrate.plan import PIECE, TTL, Written, finish, plan_key

__all__ = [
    "MAX_KEY_BYTES",
    "REQUEST_BYTES",
    "ConflictError",
    "DrySink",
    "Migration",
    "MigrationError",
    "Mismatch",
    "Policy",
    "Settings",
    "Sink",
    "show_key",
]

#: Upstash's largest record (the plan's limit may be lower); bigger keys are reported.
MAX_KEY_BYTES = 100 * 1000 * 1000
#: Bytes of one request body at most: Upstash refuses 10 MB, this leaves room for framing.
REQUEST_BYTES = 8 * 1024 * 1024
#: The smallest request size allowed (a slow link may want small ones).
MIN_REQUEST_BYTES = 64 * 1024
_REQUEST_COMMANDS = 5000
_GROUP = 500  # keys read from the source per lockstep pass
_EXISTS_PAGE = 500  # keys per EXISTS
_EXISTS_PER_REQUEST = 40
_MARKER_TTL_MS = 7 * 24 * 3600 * 1000
_SCAN_COUNT = 1000

Policy = Literal["refuse", "replace", "skip"]


class MigrationError(CacheError):
    """The run stopped: what is done stays done, and a rerun resumes."""


class ConflictError(MigrationError):
    """Keys to copy already exist in the target and no policy says what to do."""

    def __init__(self, message: str, keys: list[bytes], total: int) -> None:
        super().__init__(message)
        self.keys = keys
        self.total = total


class Sink(Protocol):
    """Where target commands go: ``UpstashCache.execute`` has this shape."""

    def execute(
        self, commands: Sequence[Sequence[Any]], *, write: bool = ..., transaction: bool = ...
    ) -> list[Any]: ...


class DrySink:
    """Answers like an empty database, sends nothing: a dry run counts with it."""

    def execute(
        self, commands: Sequence[Sequence[Any]], *, write: bool = True, transaction: bool = False
    ) -> list[Any]:
        return [0 if str(c[0]).upper() in ("EXISTS", "EVAL") else "OK" for c in commands]


@dataclass(frozen=True)
class Settings:
    match: str = "*"
    policy: Policy = "refuse"
    max_key_bytes: int = MAX_KEY_BYTES
    request_bytes: int = REQUEST_BYTES


@dataclass(frozen=True)
class Mismatch:
    key: bytes
    reason: str


@dataclass
class _Entry:
    """One chunk of one key (or a key that writes nothing, with its outcome)."""

    position: Position
    commands: list[tuple[Any, ...]] = field(default_factory=list)
    written: list[Written] = field(default_factory=list)
    data: KeyData | None = None
    outcome: str | None = None
    problem: tuple[str, str] | None = None  # (kind, what happened), reported at the end
    partial: str | None = None  # the key's fingerprint while it is not complete


class Migration:
    """One migration from ``source`` into ``sink`` (see the module docstring)."""

    def __init__(
        self,
        source: RedisConnection,
        sink: Sink,
        *,
        target: str,
        settings: Settings | None = None,
        checkpoint: Path | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.source = source
        self.sink = sink
        self.target = target
        self.settings = settings or Settings()
        self.checkpoint_path = checkpoint
        self.on_progress = on_progress or (lambda keys, size: None)
        # What this process sent (a resumed run counts its own): billed commands, bytes
        # of request bodies, requests.
        self.billed = self.sent_bytes = self.requests = 0
        self.keys: list[bytes] = []
        self.resumed_from: Position | None = None
        self._lock: FileLock | None = None

    # -- the run ---------------------------------------------------------------------------

    def open(self, *, restart: bool = False) -> Checkpoint:
        """Resume the checkpoint of an earlier run, or start one (scanning the source)."""
        path = self.checkpoint_path
        if path is not None:
            self._hold_lock(path)
        loaded = Checkpoint.load(path) if path is not None and not restart else None
        if loaded is not None:
            checkpoint, self.keys = loaded
            self._check_identity(checkpoint)
            if not checkpoint.complete:
                self._recover(checkpoint)
            return checkpoint
        self.keys = self._scan()
        return Checkpoint.create(
            path, source=self.source.display, target=self.target,
            match=self.settings.match, keys=self.keys,
        )  # fmt: skip

    def _hold_lock(self, path: Path) -> None:
        """One process per checkpoint: two interleaved runs would copy keys twice."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path(path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise MigrationError(
                f"another run of this migration is in progress (its checkpoint is {path})"
            ) from None
        self._lock = lock

    def close(self) -> None:
        """Let another run take over the checkpoint."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def run(self, checkpoint: Checkpoint) -> Checkpoint:
        """Check the target, copy what is left, remove the marker."""
        if checkpoint.complete:
            return checkpoint
        self._preflight(checkpoint)
        if checkpoint.position == (-1, DONE):  # the first write: also tells if we may write
            self._send([_marker(checkpoint.run, "start")], write=True)
        self._copy(checkpoint)
        self._send([("DEL", marker_key(checkpoint.run))], write=True)
        checkpoint.complete = True
        checkpoint.save()
        return checkpoint

    def _check_identity(self, checkpoint: Checkpoint) -> None:
        mine = (self.source.display, self.target, self.settings.match)
        theirs = (checkpoint.source, checkpoint.target, checkpoint.match)
        if mine != theirs:
            raise MigrationError(
                f"the checkpoint {checkpoint.path} belongs to another migration "
                f"({theirs[0]} -> {theirs[1]}, match {theirs[2]!r}); pass --restart or "
                "another --checkpoint"
            )

    def _recover(self, checkpoint: Checkpoint) -> None:
        """Settle the request that was in flight when the last run stopped."""
        (reply,) = self._send([("GET", marker_key(checkpoint.run))], write=False)
        if reply is None:
            if checkpoint.position != (-1, DONE) or checkpoint.in_flight is not None:
                raise MigrationError(
                    "the target no longer holds this run's progress marker (it expires "
                    "after 7 days, or the database was flushed): the copy cannot resume "
                    "exactly. Pass --restart (with --replace) to copy again."
                )
            return
        marker = parse_marker(reply)
        self.resumed_from = checkpoint.position
        flight = checkpoint.in_flight
        if flight is not None:
            end = (flight["end"][0], flight["end"][1])
            if marker is not None and later(marker, end) == marker:
                _apply(checkpoint, flight)  # it reached Upstash before the process died
            checkpoint.in_flight = None
            checkpoint.save()

    def _scan(self) -> list[bytes]:
        found: dict[bytes, None] = {}
        cursor: Any = b"0"
        while True:
            (page,) = self._source([("SCAN", cursor, "MATCH", self.settings.match,
                                     "COUNT", _SCAN_COUNT)])  # fmt: skip
            cursor, names = page[0], page[1]
            found.update(dict.fromkeys(names))
            if cursor in (b"0", 0, "0"):
                return list(found)

    # -- existence check -------------------------------------------------------------------

    def _preflight(self, checkpoint: Checkpoint) -> None:
        keys = self.keys
        step = _EXISTS_PAGE * _EXISTS_PER_REQUEST
        while checkpoint.checked < len(keys):
            start = checkpoint.checked
            pages = [keys[i : i + _EXISTS_PAGE] for i in range(start, start + step, _EXISTS_PAGE)]
            pages = [p for p in pages if p]
            counts = self._send([("EXISTS", *page) for page in pages], write=False)
            for n, (page, count) in enumerate(zip(pages, counts, strict=True)):
                if _integer(count) > 0:
                    found = self._send([("EXISTS", key) for key in page], write=False)
                    base = start + n * _EXISTS_PAGE
                    checkpoint.conflicts += [base + i for i, f in enumerate(found) if _integer(f)]
            checkpoint.checked = min(len(keys), start + step)
            checkpoint.save()
        if checkpoint.conflicts and self.settings.policy == "refuse":
            sample = [keys[i] for i in checkpoint.conflicts[:10]]
            total = len(checkpoint.conflicts)
            # Checked again next time: the keys in the way may be gone by then.
            checkpoint.checked, checkpoint.conflicts = 0, []
            checkpoint.save()
            shown = ", ".join(show_key(k) for k in sample) + (", ..." if total > 10 else "")
            raise ConflictError(
                f"{total:,} of the keys to copy already exist in the target ({shown}); "
                "nothing was written. Rerun with --replace to overwrite them, or "
                "--skip-existing to keep the target's values.",
                sample,
                total,
            )

    # -- copy ------------------------------------------------------------------------------

    def _copy(self, checkpoint: Checkpoint) -> None:
        index, chunk = checkpoint.position
        first = index + 1 if chunk == DONE else index
        conflicts = set(checkpoint.conflicts)
        entries: list[_Entry] = []
        size, commands = 2, 0
        for start in range(first, len(self.keys), _GROUP):
            indexes = list(range(start, min(len(self.keys), start + _GROUP)))
            datas = read_keys(
                [self.keys[i] for i in indexes], self._source, limit=self.settings.max_key_bytes
            )
            for i, data in zip(indexes, datas, strict=True):
                resume = chunk + 1 if i == index and chunk != DONE else 0
                for entry in self._entries(checkpoint, i, data, i in conflicts, resume):
                    weight = sum(w.size + 1 for w in entry.written)
                    if entries and (
                        size + weight > self.settings.request_bytes
                        or commands + len(entry.written) > _REQUEST_COMMANDS
                    ):
                        self._flush(checkpoint, entries)
                        entries, size, commands = [], 2, 0
                    entries.append(entry)
                    size += weight
                    commands += len(entry.written)
        if entries:
            self._flush(checkpoint, entries)

    def _entries(
        self, checkpoint: Checkpoint, i: int, data: KeyData | None, exists: bool, resume: int
    ) -> list[_Entry]:
        """The chunks of key ``i`` from chunk ``resume`` on (or its outcome alone)."""
        done = (i, DONE)
        if data is None:
            return [_Entry(done, outcome="vanished")]
        if not data.supported:
            why = ("unsupported", f"type {data.kind} is not copied")
            return [_Entry(done, outcome="unsupported", problem=why)]
        if data.too_large:
            why = ("too_large", f"over {self.settings.max_key_bytes:,} bytes")
            return [_Entry(done, outcome="too_large", problem=why)]
        policy = self.settings.policy
        if exists and policy == "skip":
            return [_Entry(done, outcome="skipped_existing")]
        overwrite = exists and policy == "replace"
        piece = min(PIECE, self.settings.request_bytes // 8)  # JSON may escape 1 byte as 6
        chunks = plan_key(data, overwrite=overwrite, guard=policy != "replace", piece=piece)
        fingerprint = data.fingerprint()
        restarted = None
        if resume and fingerprint != checkpoint.partial:  # it changed since: start it again
            chunks = plan_key(data, overwrite=True, guard=False, piece=piece)
            restarted = ("restarted", "changed in the source while the copy was interrupted")
            resume = 0
        written = [[finish(c, max(1, data.pttl)) for c in chunk] for chunk in chunks]
        limit = self.settings.request_bytes - 200
        if any(w.size > limit for ws in written for w in ws):
            why = ("too_large", "an element is larger than one request may be")
            return [_Entry(done, outcome="too_large", problem=why)]
        entries = []
        last = len(chunks) - 1
        for c in range(resume, len(chunks)):
            final = c == last
            entries.append(_Entry(
                done if final else (i, c), list(chunks[c]), written[c], data,
                outcome="copied" if final else None,
                problem=restarted if c == resume else None,
                partial=None if final else fingerprint,
            ))  # fmt: skip
        return entries or [_Entry(done, outcome="copied", data=data)]

    def _flush(self, checkpoint: Checkpoint, entries: list[_Entry]) -> None:
        """Send one request's entries (if any write anything) and record their outcome."""
        end = entries[-1].position
        counts: dict[str, int] = {}
        problems: list[list[Any]] = []
        keys = size = 0
        for entry in entries:
            if entry.outcome is not None:
                counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
                keys += 1
            if entry.outcome == "copied" and entry.data is not None:
                size += entry.data.size
                kind = "type:" + entry.data.kind
                counts[kind] = counts.get(kind, 0) + 1
            if entry.problem is not None:
                problems.append([entry.position[0], *entry.problem])
        counts["bytes"] = size
        flight = {"end": list(end), "counts": counts, "problems": problems,
                  "partial": entries[-1].partial}  # fmt: skip
        commands = [w for e in entries for w in _sent(e)]
        if commands:
            checkpoint.in_flight = flight
            checkpoint.save()
            marker = finish(_marker(checkpoint.run, f"{end[0]} {end[1]}"), 0)
            replies = self._send_written([*commands, marker], transaction=True)
            _outcomes(flight, entries, replies)
            checkpoint.in_flight = None
        _apply(checkpoint, flight)
        checkpoint.save()
        self.on_progress(keys, size)

    # -- verification ----------------------------------------------------------------------

    def verify(self, checkpoint: Checkpoint, *, sample: int | None = None) -> list[Mismatch]:
        """Compare copied keys (all, or ``sample`` of them) between source and target."""
        excluded = {p[0] for p in checkpoint.problems if p[1] != "restarted"}
        if self.settings.policy == "skip":
            excluded.update(checkpoint.conflicts)
        candidates = [i for i in range(len(self.keys)) if i not in excluded]
        if sample is not None and sample < len(candidates):
            candidates = sorted(random.sample(candidates, sample))
        mismatches: list[Mismatch] = []
        limit = self.settings.max_key_bytes

        def target(commands: list[Any]) -> list[Any]:
            return self._send_written([finish(c, 0) for c in commands], write=False)

        for start in range(0, len(candidates), _GROUP):
            keys = [self.keys[i] for i in candidates[start : start + _GROUP]]
            ours = read_keys(keys, self._source, limit=limit)
            theirs = read_keys(keys, target, limit=limit, metadata=False)
            for key, a, b in zip(keys, ours, theirs, strict=True):
                reason = _difference(a, b)
                if reason is not None:
                    mismatches.append(Mismatch(key, reason))
            self.on_progress(len(keys), 0)
        return mismatches

    # -- I/O -------------------------------------------------------------------------------

    def _source(self, commands: list[Any]) -> list[Any]:
        return self.source.execute(commands)

    def _send(self, commands: list[tuple[Any, ...]], *, write: bool) -> list[Any]:
        """Commands outside a copy transaction: an error in any of them is raised."""
        replies = self._send_written([finish(c, 0) for c in commands], write=write)
        for reply in replies:
            if isinstance(reply, CommandError):
                raise reply
        return replies

    def _send_written(
        self, written: list[Written], *, write: bool = True, transaction: bool = False
    ) -> list[Any]:
        self.billed += sum(w.billed for w in written)
        self.sent_bytes += sum(w.size + 1 for w in written) + 1
        self.requests += 1
        replies = self.sink.execute(
            [w.command for w in written], write=write, transaction=transaction
        )
        return list(replies)


def _marker(run: str, value: str) -> tuple[Any, ...]:
    return ("SET", marker_key(run), value, "PX", _MARKER_TTL_MS)


def _sent(entry: _Entry) -> list[Written]:
    """The entry's commands as sent now: a TTL is what is left of it at this moment."""
    data = entry.data
    if data is None or data.pttl <= 0:
        return entry.written
    left = max(1, data.pttl - round((time.monotonic() - data.read_at) * 1000))
    return [
        finish(c, left) if any(a is TTL for a in c) else w
        for c, w in zip(entry.commands, entry.written, strict=True)
    ]


def _outcomes(flight: dict[str, Any], entries: list[_Entry], replies: list[Any]) -> None:
    """Refine the request's counts from its replies: a refused command, an NX miss."""
    at = 0
    counts, problems = flight["counts"], flight["problems"]
    for entry in entries:
        for command, reply in zip(
            entry.commands, replies[at : at + len(entry.commands)], strict=True
        ):
            index = entry.position[0]
            if isinstance(reply, CommandError):
                problems.append([index, "failed", f"{command[0]}: {reply}"])
                counts["failed"] = counts.get("failed", 0) + 1
            elif reply is None and command[0] == "SET" and "NX" in command:
                problems.append([index, "appeared", "created in the target during the copy"])
                counts["appeared"] = counts.get("appeared", 0) + 1
                counts["copied"] = counts.get("copied", 0) - 1
        at += len(entry.commands)
    if any(isinstance(r, CommandError) for r in replies[at:]):
        raise MigrationError(f"the target refused the progress marker: {replies[at]}")


def _apply(checkpoint: Checkpoint, flight: dict[str, Any]) -> None:
    checkpoint.position = (flight["end"][0], flight["end"][1])
    for name, value in flight["counts"].items():
        checkpoint.count(name, value)
    checkpoint.problems += flight["problems"]
    checkpoint.partial = flight["partial"]


def _difference(ours: KeyData | None, theirs: KeyData | None) -> str | None:
    """Why the target's copy differs from the source's key, or None when it does not."""
    if ours is None:
        return None  # gone from the source since: nothing to compare
    if theirs is None:
        return "missing in the target"
    if ours.content() != theirs.content():
        return f"content differs ({ours.kind} in the source, {theirs.kind} in the target)"
    if ours.pttl < 0 and theirs.pttl >= 0:
        return "a TTL in the target, but the source's key never expires"
    if theirs.pttl < 0:
        return None if ours.pttl < 0 else "no TTL in the target, but the source's key expires"
    expected = ours.pttl - (theirs.read_at - ours.read_at) * 1000
    if abs(theirs.pttl - expected) > 1000:
        return f"TTL {theirs.pttl} ms in the target, {round(expected)} ms expected"
    return None


def _integer(reply: Any) -> int:
    if isinstance(reply, CommandError):
        raise reply
    return int(reply)


def show_key(key: bytes) -> str:
    """A key for a message: text as is, other bytes escaped."""
    return repr(key.decode("utf-8", "backslashreplace"))
