"""``continuum invalidate PATTERN``: delete the keys matching a pattern, showing progress.

    continuum invalidate 'session:42:*'          # glob, as SCAN MATCH understands it
    continuum invalidate --prefix 'user:a*b'     # a literal prefix: '*' here is a character
    continuum invalidate 'query:*' --dry-run     # list what would go, delete nothing
    continuum invalidate --layer sessions 'u42:*'  # within a layer: its prefix, its database

It walks the database with SCAN MATCH (never KEYS, so no single command blocks Upstash)
and UNLINKs each page as it arrives. Progress goes to stderr: a bar estimated from the
SCAN calls made against DBSIZE, plus the keys matched and deleted so far. A dry run
prints each matching key on stdout instead.

A pattern that can match every key in its scope (the database, or the layer given with
``--layer``) needs confirmation: the rule of ``continuum.cache.guard``, a pattern that does
not start with a literal character. Confirm with a typed "yes" at a terminal, or ``--yes``;
without a terminal and without ``--yes`` it is refused, so a script cannot wipe a
database or a layer by accident.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from continuum.cache.guard import literal_start
from continuum.cache.operations import check_key, escape_glob
from continuum.cli.doctor import display_url
from continuum.config import ConnectionMode, UpstashConfig
from continuum.errors import (
    CacheError,
    CommandError,
    PermissionDenied,
    ServerError,
    ValidationError,
)
from continuum.namespace import layer_spec
from continuum.rest.executor import RestExecutor
from continuum.rest.protocol import Reply


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", metavar="PATTERN", help="a glob (SCAN MATCH syntax)")
    parser.add_argument(
        "--prefix", action="store_true", help="treat PATTERN as a literal prefix, not a glob"
    )
    parser.add_argument("--dry-run", action="store_true", help="list matching keys, delete none")
    parser.add_argument("--yes", "-y", action="store_true", help="no confirmation prompt")
    parser.add_argument(
        "--count",
        type=int,
        default=500,
        metavar="N",
        help="SCAN COUNT hint, keys per call (default: %(default)s)",
    )
    parser.add_argument(
        "--layer",
        help="a cache layer (sessions, query, memory, ratelimit, federation, websocket): "
        "PATTERN is then relative to its key prefix, on its database",
    )
    parser.add_argument(
        "--database", help="named database (primary, sessions, federation; default: primary)"
    )


def glob_for(pattern: str, *, prefix: bool, layer_prefix: str = "") -> tuple[str, str]:
    """``(glob, literal start)``: what SCAN MATCH gets, and the part that must match exactly.

    ``layer_prefix`` (a layer's key prefix, e.g. ``query:``) is prepended literally.
    """
    if not pattern:
        raise ValidationError("the pattern is empty; use '*' to mean every key")
    check_key(layer_prefix + pattern)
    if layer_prefix:
        inner, start = glob_for(pattern, prefix=prefix)
        return escape_glob(layer_prefix) + inner, layer_prefix + start
    if prefix:
        return escape_glob(pattern) + "*", pattern
    return pattern, literal_start(pattern)


@dataclass
class Progress:
    """The stderr progress line: redrawn in place on a terminal, else once a second."""

    stream: TextIO
    total: int
    count: int
    dry_run: bool
    calls: int = 0
    matched: int = 0
    deleted: int = 0
    _last: float = 0.0

    def update(self, *, final: bool = False, complete: bool = False) -> None:
        """Redraw (throttled unless ``final``); ``complete`` means the SCAN finished."""
        now = time.monotonic()
        tty = self.stream.isatty()
        if not final and now - self._last < (0.1 if tty else 1.0):
            return
        self._last = now
        examined = self.total if complete else min(self.calls * self.count, self.total)
        fraction = examined / self.total if self.total else 1.0
        if not complete:
            fraction = min(fraction, 0.99)
        width = 24
        filled = int(fraction * width)
        bar = "#" * filled + "-" * (width - filled)
        done = "would delete" if self.dry_run else "deleted"
        count = self.matched if self.dry_run else self.deleted
        line = (
            f"[{bar}] {fraction:4.0%} scanned ~{examined:,}/{self.total:,} keys, "
            f"matched {self.matched:,}, {done} {count:,}"
        )
        if tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        spec = layer_spec(args.layer) if args.layer else None
        glob, _ = glob_for(
            args.pattern, prefix=args.prefix, layer_prefix=spec.prefix if spec else ""
        )
        if args.count < 1:
            raise ValidationError("--count must be at least 1")
        config = UpstashConfig.from_env()
        if config.resolved_mode is not ConnectionMode.REST:
            raise ValidationError(
                "no Upstash database configured: set UPSTASH_REDIS_REST_URL and "
                "UPSTASH_REDIS_REST_TOKEN (an in-memory cache has nothing to invalidate)"
            )
        database = config.database(args.database or (spec.database if spec else "primary"))
    except CacheError as exc:
        print(f"continuum invalidate: {exc}", file=err)
        return 2
    # The one rule, on the pattern as given: relative to the layer when there is one.
    broad = not (args.pattern if args.prefix else literal_start(args.pattern))
    scope = f"the {spec.name!r} layer" if spec else "the database"
    if broad and not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            print(
                f"continuum invalidate: {args.pattern!r} can match every key in {scope}; "
                "refusing without confirmation (stdin is not a terminal). Re-run with --yes, "
                "or --dry-run to see what matches.",
                file=err,
            )
            return 2
        where = display_url(database.url)
        answer = _ask(
            f"Delete every key matching {glob!r} in {where}? This cannot be undone. "
            'Type "yes" to go on: ',
            err,
        )
        if answer.strip().lower() != "yes":
            print("Nothing deleted.", file=err)
            return 1
    executor = RestExecutor(database, config)
    try:
        return _invalidate(executor, glob, args, err)
    finally:
        executor.close()


def _ask(prompt: str, err: TextIO) -> str:
    err.write(prompt)
    err.flush()
    return sys.stdin.readline()


def _invalidate(executor: RestExecutor, glob: str, args: argparse.Namespace, err: TextIO) -> int:
    def one(command: list[str | bytes | int], write: bool = False) -> Reply:
        reply = executor.execute([command], write=write)[0]
        if isinstance(reply, CommandError):
            raise reply
        return reply

    progress: Progress | None = None
    try:
        total = one(["DBSIZE"])
        progress = Progress(err, total if isinstance(total, int) else 0, args.count, args.dry_run)
        cursor: Reply = b"0"
        while True:
            page = one(["SCAN", _text(cursor), "MATCH", glob, "COUNT", args.count])
            if not isinstance(page, list) or len(page) != 2 or not isinstance(page[1], list):
                raise ServerError("SCAN answered an unexpected shape")
            cursor, keys = page[0], page[1]
            progress.calls += 1
            names = [k if isinstance(k, bytes) else str(k).encode() for k in keys]
            progress.matched += len(names)
            if names and args.dry_run:
                _print_keys(names)
            elif names:
                deleted = one(["UNLINK", *names], write=True)
                progress.deleted += deleted if isinstance(deleted, int) else 0
            progress.update()
            if _text(cursor) == "0":
                break
    except KeyboardInterrupt:
        _finish(progress, err, interrupted=True)
        return 130
    except PermissionDenied:
        _finish(progress, err)
        print(
            "continuum invalidate: the token is read-only (SCAN and UNLINK were refused); "
            "use the database's standard REST token",
            file=err,
        )
        return 1
    except CacheError as exc:
        _finish(progress, err)
        print(f"continuum invalidate: stopped: {type(exc).__name__}: {exc}", file=err)
        return 1
    progress.update(final=True, complete=True)
    verb = "would delete" if args.dry_run else "deleted"
    count = progress.matched if args.dry_run else progress.deleted
    summary = f"{verb} {count:,} key{'s' * (count != 1)} matching {glob!r}"
    print(summary, file=err if args.dry_run else sys.stdout)  # stdout holds the keys then
    return 0


def _finish(progress: Progress | None, err: TextIO, *, interrupted: bool = False) -> None:
    """The progress line as it stood when the walk stopped early."""
    if progress is None:
        return
    progress.update(final=True)
    if interrupted:
        print(f"interrupted: {progress.deleted:,} keys deleted so far", file=err)


def _print_keys(names: list[bytes]) -> None:
    sys.stdout.write("".join(n.decode("utf-8", "backslashreplace") + "\n" for n in names))
    sys.stdout.flush()


def _text(value: Reply) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)
