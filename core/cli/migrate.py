"""``continuum migrate [SOURCE]``: copy a Redis's keys into the configured Upstash database.

    continuum migrate redis://old:6379/0 --dry-run     # keys, billed commands, cost; no write
    continuum migrate redis://old:6379/0               # stops first if a key exists there
    continuum migrate redis://old:6379/0 --skip-existing --verify
    continuum migrate --match 'session:*'              # SOURCE from $REDIS_URL

The target is the database the other commands use (``UPSTASH_REDIS_REST_URL`` and
``UPSTASH_REDIS_REST_TOKEN``). Strings, hashes, lists, sets, sorted sets and streams are
copied byte for byte with their remaining TTLs, in transactions under Upstash's request
size limit. A checkpoint (``.continuum-migrate/`` in the current directory, or
``--checkpoint``) makes an interrupted run resumable: run the same command again and it
goes on where it stopped, copying nothing twice. How it works: docs/MIGRATING.md.

It needs the ``redis`` extra: ``pip install 'continuum-cache[redis]'``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from continuum.cli.doctor import display_url
from continuum.config import ConnectionMode, UpstashConfig
from continuum.cost import GB, Usage, estimate
from continuum.errors import (
    AuthenticationFailed,
    CacheError,
    CacheUnavailable,
    ConfigurationError,
    PermissionDenied,
    QuotaExceeded,
)

if TYPE_CHECKING:
    from continuum.migrate.checkpoint import Checkpoint
    from continuum.migrate.copier import Migration

#: Problems that leave a key uncopied: the run reports them and exits 1.
_UNCOPIED = ("unsupported", "too_large", "failed", "appeared")
_FREE_DAILY_COMMANDS = 10_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="redis:// (or rediss:// for TLS) URL of the Redis to copy from; default "
        "$REDIS_URL, the better place for a URL holding a password",
    )
    parser.add_argument("--match", default="*", metavar="GLOB", help="only keys matching GLOB")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the key count, the commands Upstash would bill and their cost; write nothing",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--replace", action="store_true", help="overwrite keys that already exist in the target"
    )
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave keys that already exist in the target as they are (a parallel run's writes)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="compare every copied key with the source afterwards"
    )
    parser.add_argument(
        "--verify-sample", type=int, metavar="N", help="compare N copied keys chosen at random"
    )
    parser.add_argument(
        "--checkpoint", type=Path, metavar="PATH", help="the checkpoint file (default: derived "
        "from source, target and --match, under .continuum-migrate/)",
    )  # fmt: skip
    parser.add_argument(
        "--restart", action="store_true", help="ignore an earlier run's checkpoint; start over"
    )
    parser.add_argument(
        "--max-key-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="report and skip keys larger than this (default: 100 MB, Upstash's record limit)",
    )
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow plain redis:// to a non-loopback host (a private network)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="the progress bar on stderr (auto: when stderr is a terminal)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="per request to Upstash"
    )
    parser.add_argument(
        "--request-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="bytes per request to Upstash (default 8 MiB, under its 10 MB limit; at least "
        "64 KiB): smaller requests for a slow link",
    )


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        from continuum.migrate.connection import RedisConnection
    except ImportError as exc:
        print(f"continuum migrate: {exc}", file=err)
        return 2
    source_url = args.source or os.environ.get("REDIS_URL")
    try:
        if not source_url:
            raise ConfigurationError("name the Redis to copy from: continuum migrate redis://...")
        _check_numbers(args)
        source = RedisConnection(
            source_url, timeout=max(args.timeout, 5.0), allow_insecure=args.allow_insecure,
            name="the source Redis",
        )  # fmt: skip
        sink, target = (None, "(dry run)") if args.dry_run else _target(args)
    except CacheError as exc:
        print(f"continuum migrate: {exc}", file=err)
        return 2
    try:
        source.execute([("PING",)])
    except CacheError as exc:
        print(f"continuum migrate: cannot read the source: {exc}", file=err)
        return 1
    if args.dry_run:
        return _dry_run(args, source, err)
    assert sink is not None
    try:
        return _migrate(args, source, sink, target, err)
    finally:
        sink.close()
        source.close()


def _check_numbers(args: argparse.Namespace) -> None:
    if args.verify_sample is not None and args.verify_sample < 1:
        raise ConfigurationError("--verify-sample must be at least 1")
    if args.max_key_size is not None and args.max_key_size < 1:
        raise ConfigurationError("--max-key-size must be at least 1 byte")
    if not args.timeout > 0:
        raise ConfigurationError("--timeout must be a positive number of seconds")
    from continuum.migrate.copier import MIN_REQUEST_BYTES, REQUEST_BYTES

    size = args.request_size
    if size is not None and not MIN_REQUEST_BYTES <= size <= REQUEST_BYTES:
        raise ConfigurationError(
            f"--request-size must be from {MIN_REQUEST_BYTES:,} to {REQUEST_BYTES:,} bytes"
        )


def _target(args: argparse.Namespace) -> tuple[Any, str]:
    """The configured Upstash database, strict: an outage stops the copy, never a fallback."""
    from continuum.cache import UpstashCache

    config = UpstashConfig.from_env(fallback=False, timeout=args.timeout, budget=args.timeout * 4)
    if config.resolved_mode is not ConnectionMode.REST:
        raise ConfigurationError(
            "no Upstash database configured: set UPSTASH_REDIS_REST_URL and "
            "UPSTASH_REDIS_REST_TOKEN (the database to copy into)"
        )
    return UpstashCache(config), display_url(config.database("primary").url)


def _settings(args: argparse.Namespace) -> Any:
    from continuum.migrate.copier import MAX_KEY_BYTES, REQUEST_BYTES, Policy, Settings

    policy: Policy = "replace" if args.replace else "skip" if args.skip_existing else "refuse"
    return Settings(
        match=args.match,
        policy=policy,
        max_key_bytes=args.max_key_size or MAX_KEY_BYTES,
        request_bytes=args.request_size or REQUEST_BYTES,
    )


def _checkpoint_path(args: argparse.Namespace, source: str, target: str) -> Path:
    if args.checkpoint is not None:
        return Path(args.checkpoint)
    digest = hashlib.sha256("\0".join((source, target, args.match)).encode()).hexdigest()
    return Path(".continuum-migrate") / f"{digest[:16]}.json"


def _bar(args: argparse.Namespace, total: int, initial: int, desc: str) -> Any:
    from tqdm import tqdm

    disable = {"auto": None, "always": False, "never": True}[args.progress]
    return tqdm(
        total=total, initial=initial, desc=desc, unit="key", file=sys.stderr,
        disable=disable, dynamic_ncols=True, smoothing=0.1,
    )  # fmt: skip


def _run_with_bar(
    args: argparse.Namespace, migration: Migration, checkpoint: Checkpoint, desc: str,
    done: int = 0,
) -> None:  # fmt: skip
    bar = _bar(args, checkpoint.key_count, done, desc)
    migration.on_progress = lambda keys, size: bar.update(keys)
    try:
        migration.run(checkpoint)
    finally:
        bar.close()


def _migrate(args: argparse.Namespace, source: Any, sink: Any, target: str, err: TextIO) -> int:
    from continuum.migrate.copier import Migration

    path = _checkpoint_path(args, source.display, target)
    migration = Migration(source, sink, target=target, settings=_settings(args), checkpoint=path)
    try:  # the run holds its checkpoint's lock until its files are gone
        return _copy(args, migration, path, target, err)
    finally:
        migration.close()


def _copy(args: argparse.Namespace, migration: Migration, path: Path, target: str,
          err: TextIO) -> int:  # fmt: skip
    from continuum.migrate.copier import ConflictError

    checkpoint: Checkpoint | None = None
    try:
        checkpoint = migration.open(restart=args.restart)
        if migration.resumed_from is not None:
            at = migration.resumed_from[0] + 1
            print(f"resuming the run of {path} after key {at:,} of {checkpoint.key_count:,}",
                  file=err)  # fmt: skip
        _run_with_bar(args, migration, checkpoint, "copying", _keys_done(checkpoint))
    except ConflictError as exc:
        print(f"continuum migrate: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: rerun the same command to resume (checkpoint: {path})", file=err)
        return 130
    except (CacheError, OSError) as exc:
        print(f"continuum migrate: {_explain(exc, path, checkpoint)}", file=err)
        return 1
    code = _report(migration, checkpoint, target, sys.stdout)
    if args.verify or args.verify_sample:
        code = max(code, _verify(args, migration, checkpoint, err))
    checkpoint.remove()
    return code


def _keys_done(checkpoint: Checkpoint) -> int:
    from continuum.migrate.checkpoint import DONE

    index, chunk = checkpoint.position
    return index + 1 if chunk == DONE else index


def _explain(exc: BaseException, path: Path, checkpoint: Checkpoint | None) -> str:
    from continuum.migrate.copier import MigrationError

    resume = (
        f" Everything copied so far is recorded: rerun the same command to resume "
        f"(checkpoint: {path})."
        if checkpoint is not None
        else ""
    )
    if isinstance(exc, PermissionDenied):
        return "the Upstash token is read-only; use the database's standard REST token."
    if isinstance(exc, QuotaExceeded):
        return f"{exc}.{resume}"
    if isinstance(exc, AuthenticationFailed | ConfigurationError | MigrationError):
        return str(exc)
    if isinstance(exc, CacheUnavailable):
        return f"stopped: {exc}.{resume}"
    return f"stopped: {type(exc).__name__}: {exc}.{resume}"


def _report(migration: Migration, checkpoint: Checkpoint, target: str, out: TextIO) -> int:
    from continuum.migrate.copier import show_key

    counts = checkpoint.counts
    copied = counts.get("copied", 0)
    size = counts.get("bytes", 0)
    out.write(
        f"copied {copied:,} key{'s' * (copied != 1)} ({_size(size)}) from "
        f"{migration.source.display} to {target}; this run billed "
        f"{migration.billed:,} commands in {migration.requests:,} requests\n"
    )
    skipped = [
        (counts.get(name, 0), text)
        for name, text in (
            ("skipped_existing", "existed in the target (kept)"),
            ("vanished", "were gone from the source when read"),
        )
    ]
    for n, text in skipped:
        if n:
            out.write(f"  {n:,} {text}\n")
    uncopied = [p for p in checkpoint.problems if p[1] in _UNCOPIED or p[1] == "restarted"]
    for index, kind, text in uncopied[:20]:
        out.write(f"  {kind}: {show_key(migration.keys[index])}: {text}\n")
    if len(uncopied) > 20:
        out.write(f"  ... and {len(uncopied) - 20:,} more\n")
    return 1 if any(p[1] in _UNCOPIED for p in checkpoint.problems) else 0


def _verify(args: argparse.Namespace, migration: Migration, checkpoint: Checkpoint,
            err: TextIO) -> int:  # fmt: skip
    from continuum.migrate.copier import show_key

    billed = migration.billed
    bar = _bar(args, args.verify_sample or checkpoint.counts.get("copied", 0), 0, "verifying")
    checked = 0

    def advance(keys: int, size: int) -> None:
        nonlocal checked
        checked += keys
        bar.update(keys)

    migration.on_progress = advance
    try:
        mismatches = migration.verify(checkpoint, sample=args.verify_sample)
    except CacheError as exc:
        print(f"continuum migrate: verification stopped: {exc}", file=err)
        return 1
    finally:
        bar.close()
    cost = migration.billed - billed
    if not mismatches:
        print(f"verified {checked:,} keys: identical in both stores ({cost:,} commands billed)")
        return 0
    print(f"verification found {len(mismatches):,} of {checked:,} keys different:")
    for mismatch in mismatches[:20]:
        print(f"  {show_key(mismatch.key)}: {mismatch.reason}")
    return 1


def _dry_run(args: argparse.Namespace, source: Any, err: TextIO) -> int:
    from continuum.migrate.copier import DrySink, Migration

    migration = Migration(source, DrySink(), target="(dry run)", settings=_settings(args))
    try:
        checkpoint = migration.open()
        _run_with_bar(args, migration, checkpoint, "reading")
    except CacheError as exc:
        print(f"continuum migrate: cannot read the source: {exc}", file=err)
        return 1
    counts = checkpoint.counts
    kinds = ", ".join(
        f"{n:,} {name.removeprefix('type:')}" for name, n in sorted(counts.items())
        if name.startswith("type:")
    )  # fmt: skip
    size = counts.get("bytes", 0)
    usage = Usage(
        commands=Decimal(migration.billed),
        storage_gb=Decimal(size) / GB,
        bandwidth_gb=Decimal(migration.sent_bytes) / GB,
    )
    lines = {line.item: line for line in estimate(usage).payg.lines}
    out = sys.stdout
    out.write(f"dry run: nothing was written. Source {source.display}, keys matching "
              f"{args.match!r}: {checkpoint.key_count:,}\n")  # fmt: skip
    out.write(f"to copy: {counts.get('copied', 0):,} keys ({kinds or 'none'}), {_size(size)}\n")
    out.write(
        f"billed commands: {migration.billed:,} in {migration.requests:,} requests "
        f"({_size(migration.sent_bytes)}), assuming none of the keys exists in the target\n"
    )
    out.write(
        f"cost on pay-as-you-go: ${lines['commands'].cost} for the commands and "
        f"${lines['bandwidth'].cost} for the traffic, once; then "
        f"${lines['storage'].cost} a month to store the data\n"
    )
    if migration.billed > _FREE_DAILY_COMMANDS:
        out.write(
            f"note: the free plan allows {_FREE_DAILY_COMMANDS:,} commands a day; there the "
            "copy stops at the limit and resumes when rerun the next day\n"
        )
    _report_problems(migration, checkpoint, out)
    return 0


def _report_problems(migration: Migration, checkpoint: Checkpoint, out: TextIO) -> None:
    from continuum.migrate.copier import show_key

    for index, kind, text in checkpoint.problems[:20]:
        out.write(f"  would not copy ({kind}): {show_key(migration.keys[index])}: {text}\n")


def _size(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f} KiB"
    return f"{size / 1024 / 1024:,.1f} MiB"
