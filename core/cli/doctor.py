"""``continuum doctor``: check the configuration, the token and the connection, and say
what to do about each problem.

It reads the same settings as the toolkit (environment, or the JSON file named by
``CONTINUUM_CONFIG`` / ``--config``), but looks at the raw values first, so it can explain
the usual mistakes that ``UpstashConfig`` would only refuse: a Redis-protocol URL with no
REST variables, ``CONTINUUM_CACHE_MODE=redis``, a disabled fallback, plain http:// to a
remote host, a token pasted with quotes or whitespace, a URL with a path. Then it talks
to the database: PING latency (p50/p95 over ``--pings`` calls), whether the token may
write (a SET of a throwaway key that expires in a second; ``NOPERM`` means read-only), and
the circuit breaker's state afterwards.

Exit status: 0 when nothing is wrong (warnings allowed; ``--strict`` counts them too),
1 when something must be fixed. The token is only ever shown masked.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from continuum.config import ConnectionMode, Database, UpstashConfig, mask_token
from continuum.errors import (
    AuthenticationFailed,
    CacheError,
    CacheTimeout,
    CacheUnavailable,
    CommandError,
    ConfigurationError,
    ConnectionFailed,
    PermissionDenied,
    QuotaExceeded,
)
from continuum.rest.breaker import breaker_for
from continuum.rest.executor import RestExecutor

_URL = "UPSTASH_REDIS_REST_URL"
_TOKEN = "UPSTASH_REDIS_REST_TOKEN"
_CONSOLE = "copy it from the 'REST API' section of the Upstash console"


class Level(StrEnum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


@dataclass
class Finding:
    """One line of the report; ``fix`` says what to do when it is not ok."""

    level: Level
    topic: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"level": str(self.level), "topic": self.topic, "message": self.message,
                "fix": self.fix}  # fmt: skip


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    def add(self, level: Level, topic: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(level, topic, message, fix))

    def count(self, level: Level) -> int:
        return sum(1 for f in self.findings if f.level is level)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="JSON config file (as CONTINUUM_CONFIG)")
    parser.add_argument(
        "--pings",
        type=int,
        default=10,
        metavar="N",
        help="PING calls for the latency figures (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds one request may take (default: %(default)s)",
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument(
        "--deploy",
        action="store_true",
        help="check instead the tools this folder's deploys need (from its serverless.yml, "
        "vercel.json, wrangler.toml) and say how to install what is missing",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")


def run(args: argparse.Namespace) -> int:
    if args.pings < 1 or not args.timeout > 0:
        print("continuum doctor: --pings must be >= 1 and --timeout > 0", file=sys.stderr)
        return 2
    if args.deploy:
        from pathlib import Path

        from continuum.cli.toolchain import check

        report = check(Path.cwd())
    else:
        env = dict(os.environ)
        if args.config:
            env["CONTINUUM_CONFIG"] = args.config
        report = diagnose(env, pings=args.pings, timeout=args.timeout)
    if args.json:
        print(json.dumps({"findings": [f.as_dict() for f in report.findings],
                          "latency_ms": report.latency_ms}, indent=2))  # fmt: skip
    else:
        print(render(report))
    failed = report.count(Level.FAIL) or (args.strict and report.count(Level.WARN))
    return 1 if failed else 0


def diagnose(env: Mapping[str, str], *, pings: int = 10, timeout: float = 2.0) -> Report:
    """Every check, in the order a person would fix things."""
    report = Report()
    _check_variables(env, report)
    if report.count(Level.FAIL):
        report.add(Level.INFO, "connect", "not tried: fix the problems above first")
        return report
    try:
        config = UpstashConfig.from_env(env, timeout=timeout)
    except ConfigurationError as exc:
        report.add(Level.FAIL, "config", str(exc), "fix the setting named above")
        return report
    if not _check_api_settings(env, report):
        return report
    if config.resolved_mode is ConnectionMode.LOCAL and config.databases:
        report.add(
            Level.WARN, "mode",
            "CONTINUUM_CACHE_MODE=local: the configured Upstash database is not used; the "
            "cache is in-memory, per process",
            "unset CONTINUUM_CACHE_MODE (or set it to auto or rest) to use Upstash",
        )  # fmt: skip
        return report
    if config.resolved_mode is ConnectionMode.LOCAL:
        level = Level.INFO if config.mode is ConnectionMode.LOCAL else Level.WARN
        report.add(
            level, "mode",
            "no Upstash database configured: the cache is in-memory, per process",
            f"set {_URL} and {_TOKEN} ({_CONSOLE}) to share data between invocations",
        )  # fmt: skip
        return report
    for name, database in config.databases.items():
        _check_database(name, database, config, report, pings)
    return report


def _check_api_settings(env: Mapping[str, str], report: Report) -> bool:
    """The reference API reads its own variables at cold start and refuses bad ones; the
    function would then answer nothing, so say so here rather than after a deploy."""
    from continuum.app.api import ApiSettings

    try:
        ApiSettings.from_env(env)
    except ConfigurationError as exc:
        report.add(Level.FAIL, "api", str(exc), _API_FIX)
        return False
    return True


_API_FIX = (
    "the reference API (Lambda, Vercel, Workers, continuum dev) refuses to start with it: "
    "fix or unset it"
)


def _check_variables(env: Mapping[str, str], report: Report) -> None:
    url, token = env.get(_URL), env.get(_TOKEN)
    redis_url = env.get("UPSTASH_REDIS_URL")
    if redis_url and not url:
        report.add(
            Level.FAIL, "url",
            "only UPSTASH_REDIS_URL is set: that is the Redis-protocol endpoint, and Continuum "
            "speaks only the Upstash REST API",
            f"set {_URL} and {_TOKEN} ({_CONSOLE}); UPSTASH_REDIS_URL can go",
        )  # fmt: skip
    elif redis_url:
        report.add(Level.INFO, "url", "UPSTASH_REDIS_URL is set but unused (REST only)")
    mode = (env.get("CONTINUUM_CACHE_MODE") or "").strip().lower()
    if mode in {"redis", "tcp", "traditional"}:
        report.add(
            Level.FAIL, "mode",
            f"CONTINUUM_CACHE_MODE={mode} asks for the Redis protocol; Continuum is REST-only",
            "set CONTINUUM_CACHE_MODE=rest (or auto), with the REST URL and token",
        )  # fmt: skip
    fallback = (env.get("CONTINUUM_CACHE_FALLBACK") or "").strip().lower()
    if fallback in {"0", "false", "no", "off"}:
        report.add(
            Level.WARN, "fallback",
            "CONTINUUM_CACHE_FALLBACK is off: an Upstash outage fails requests instead of "
            "degrading to the request's local store",
            "unset it (or set true) unless failing loudly is what you want",
        )  # fmt: skip
    if url is not None:
        _check_url_text(url, report)
    if token is not None:
        _check_token_text(token, report)
    if bool(url) != bool(token):
        missing = _TOKEN if url else _URL
        report.add(Level.FAIL, "config", f"{missing} is missing", f"set it: {_CONSOLE}")


def _check_url_text(url: str, report: Report) -> None:
    clean = url.strip().strip("\"'")
    if clean != url:
        report.add(
            Level.FAIL, "url", f"{_URL} has surrounding quotes or whitespace",
            "set the bare URL, e.g. https://<name>.upstash.io",
        )  # fmt: skip
    parts = urlsplit(clean)
    host = parts.hostname or ""
    if parts.scheme in {"redis", "rediss"}:
        report.add(
            Level.FAIL, "url", f"{_URL} is a Redis-protocol URL ({parts.scheme}://)",
            f"use the https:// REST URL instead: {_CONSOLE}",
        )  # fmt: skip
        return
    if parts.scheme not in {"http", "https"} or not host:
        bare = urlsplit("https://" + clean)
        fix = _CONSOLE
        if not parts.scheme and bare.hostname and "." in bare.hostname:
            fix = f"add the scheme: {display_url('https://' + clean)}"
        report.add(Level.FAIL, "url", f"{_URL} is not an https:// URL", fix)
        return
    if parts.username or parts.password:
        report.add(
            Level.FAIL, "url", f"{_URL} carries credentials (user:password@)",
            f"remove them: {display_url(clean)}; the token belongs in {_TOKEN}",
        )  # fmt: skip
    if parts.path not in {"", "/"} or parts.query:
        report.add(
            Level.FAIL, "url", f"{_URL} carries a path or query ({parts.path or '?'})",
            f"use only scheme and host: {display_url(clean)}",
        )  # fmt: skip
    if parts.scheme == "http" and not _is_loopback(host):
        report.add(
            Level.FAIL, "tls", f"plain http:// to {host}: the token would travel unencrypted",
            f"use {display_url(clean).replace('http://', 'https://', 1)}",
        )  # fmt: skip


def _check_token_text(token: str, report: Report) -> None:
    if not token.strip():
        report.add(Level.FAIL, "token", f"{_TOKEN} is empty", f"set it: {_CONSOLE}")
    elif token != token.strip() or token.strip()[:1] in {'"', "'"} or "\n" in token:
        report.add(
            Level.FAIL, "token", f"{_TOKEN} has surrounding quotes or whitespace",
            "paste the token alone, without quotes, spaces or a newline",
        )  # fmt: skip
    elif " " in token:
        report.add(
            Level.FAIL, "token", f"{_TOKEN} contains a space",
            "paste the token alone (not 'Bearer <token>' or two tokens)",
        )  # fmt: skip
    else:
        report.add(Level.OK, "token", f"present ({mask_token(token)})")


def _check_database(
    name: str, database: Database, config: UpstashConfig, report: Report, pings: int
) -> None:
    topic = "database" if name == "primary" else f"database {name}"
    report.add(Level.OK, topic, f"{display_url(database.url)} (token {mask_token(database.token)})")
    host = urlsplit(database.url).hostname or ""
    if database.url.startswith("https://"):
        report.add(Level.OK, f"tls {name}", f"https:// to {host} (certificate verified)")
    else:
        report.add(Level.INFO, f"tls {name}", f"plain http:// to loopback ({host}): the emulator?")
    executor = RestExecutor(database, config)
    try:
        latencies = _ping(executor, pings, report, name)
        if latencies:
            _check_write(executor, report, name)
    finally:
        executor.close()
    state = str(breaker_for(database.breaker_key).state)
    if state == "closed":
        report.add(Level.OK, f"circuit {name}", "closed (requests go to Upstash)")
    else:
        report.add(
            Level.WARN, f"circuit {name}",
            f"{state}: requests are served by the local fallback until a probe succeeds",
            "fix the connection problem above; the breaker closes on the next good probe",
        )  # fmt: skip


def _ping(executor: RestExecutor, pings: int, report: Report, name: str) -> list[float]:
    """One PING to open the connection (timed apart: a cold start pays it), then ``pings``."""
    latencies: list[float] = []
    for _ in range(pings + 1):
        start = time.perf_counter()
        try:
            reply = executor.execute([["PING"]], write=False)[0]
        except CacheError as exc:
            _explain(exc, report, name)
            return []
        if isinstance(reply, CommandError):
            _explain(reply, report, name)
            return []
        latencies.append((time.perf_counter() - start) * 1000)
    first, warm = latencies[0], latencies[1:]
    p50, p95 = _percentile(warm, 50), _percentile(warm, 95)
    report.latency_ms.update(
        {
            f"{name}_first": round(first, 3),
            f"{name}_p50": round(p50, 3),
            f"{name}_p95": round(p95, 3),
        }
    )
    report.add(
        Level.OK, f"ping {name}",
        f"first call {first:.1f} ms (client start-up and connection), then {pings} PINGs: "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms",
    )  # fmt: skip
    return warm


def _check_write(executor: RestExecutor, report: Report, name: str) -> None:
    key = f"continuum:doctor:{secrets.token_hex(6)}"
    try:
        reply = executor.execute([["SET", key, "1", "PX", 1000]], write=True)[0]
    except CacheError as exc:
        _explain(exc, report, name)
        return
    if isinstance(reply, PermissionDenied):
        report.add(
            Level.WARN, f"token {name}",
            "read-only token: reads work, every write (set, delete, limits) is refused",
            f"use the standard token for functions that write ({_CONSOLE})",
        )  # fmt: skip
    elif isinstance(reply, CommandError):
        report.add(Level.FAIL, f"token {name}", f"a test write failed: {reply.message}")
    else:
        report.add(Level.OK, f"token {name}", "standard (read-write): a test write succeeded")


def _explain(exc: BaseException, report: Report, name: str) -> None:
    topic = f"connect {name}"
    fixes: list[tuple[type[BaseException], str]] = [
        (AuthenticationFailed, f"the token was refused: {_CONSOLE} (the URL and token of the "
                               "same database)"),
        (QuotaExceeded, "the plan's request limit is reached: wait for the reset or upgrade"),
        (ConnectionFailed, "check the URL's host and port, DNS, and outbound network access"),
        (CacheTimeout, "the server did not answer in time: check the region, or raise "
                       "--timeout"),
        (CacheUnavailable, "the server answered badly: is this really an Upstash REST URL?"),
        (CommandError, "the server refused PING: is this really an Upstash REST URL?"),
    ]  # fmt: skip
    fix = next((text for kind, text in fixes if isinstance(exc, kind)), "")
    report.add(Level.FAIL, topic, f"{type(exc).__name__}: {exc}", fix)


def display_url(url: str) -> str:
    """Scheme, host and port only: never a password or a path someone pasted by mistake."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def render(report: Report) -> str:
    marks = {Level.OK: "  ok ", Level.INFO: "  -- ", Level.WARN: "warn ", Level.FAIL: "FAIL "}
    width = max((len(f.topic) for f in report.findings), default=0)
    lines = ["continuum doctor"]
    for f in report.findings:
        lines.append(f"{marks[f.level]} {f.topic:<{width}}  {f.message}")
        if f.fix and f.level in (Level.WARN, Level.FAIL):
            lines.append(f"      {'':<{width}}  -> {f.fix}")
    fails, warns = report.count(Level.FAIL), report.count(Level.WARN)
    if fails or warns:
        lines.append(f"{fails} problem{'s' * (fails != 1)}, {warns} warning{'s' * (warns != 1)}.")
    else:
        lines.append("Everything looks right.")
    return "\n".join(lines)
