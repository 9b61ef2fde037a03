"""Cold-start import cost of the platform handlers, as ratios to what users would import.

Each sample is a fresh interpreter (``python -c``) timing only the ``import`` statement
(interpreter start-up excluded), so nothing is cached in ``sys.modules``; subject and
baseline samples alternate so machine noise hits both alike, and the fastest sample of
each is compared (the least-disturbed one, as ``bench.report.per_op_seconds`` does: on a
shared machine the median mostly measures the neighbours).

- Lambda: ``import continuum.platforms.aws_lambda.handler`` (Mangum, the raw ASGI app, the async
  client built from the environment) against ``import mangum, upstash_redis`` (the
  usual Mangum + official SDK stack). Target: at most 0.75x.
- Vercel: ``import continuum.platforms.vercel.app`` against ``import flask``. Target: at most 1.2x.

httpx is imported by the client on its first request, not at import; a third,
informational figure adds ``import httpx`` to the handler import so the first request's
cost is visible too. Diagnose a regression with
``python -X importtime -c "import continuum.platforms.aws_lambda.handler"``.

    python -m bench.bench_coldstart          # or: python -m bench.run --only coldstart
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent
REPRODUCE = "python -m bench.run --only coldstart"
# A configured function: URL and token present (no network happens at import).
ENV = {
    "UPSTASH_REDIS_REST_URL": "https://example-12345.upstash.io",
    "UPSTASH_REDIS_REST_TOKEN": "bench-token-not-secret",
    "CONTINUUM_API_KEYS": "bench-key",
}
_TIMER = (
    "import time, warnings\nwarnings.simplefilter('ignore')\n"
    "t = time.perf_counter()\n{stmt}\nprint(time.perf_counter() - t)\n"
)


def import_seconds(stmt: str) -> float:
    """Seconds ``stmt`` takes in a fresh interpreter (bytecode caches warm, modules not)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    env.update(ENV)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # samples load .pyc, as a deployed bundle does
    out = subprocess.run(
        [sys.executable, "-c", _TIMER.format(stmt=stmt)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def fastest(statements: list[str], rounds: int) -> list[float]:
    """Fastest milliseconds of each statement, sampled round-robin."""
    for stmt in statements:  # write the bytecode caches once
        import_seconds(stmt)
    samples: list[list[float]] = [[] for _ in statements]
    for _ in range(rounds):
        for i, stmt in enumerate(statements):
            samples[i].append(import_seconds(stmt))
    return [min(s) * 1000 for s in samples]


def run(quick: bool = False) -> list[Figure]:
    rounds = 7 if quick else 25
    handler = "import continuum.platforms.aws_lambda.handler"
    baseline = "import mangum, upstash_redis"
    lam, first, base = fastest([handler, f"{handler}; import httpx", baseline], rounds)
    note = f"best of {rounds} fresh interpreters each, Python {sys.version.split()[0]}"
    figures = [
        Figure(
            name="cold import: Lambda handler",
            value=round(lam, 1),
            unit="ms",
            baseline_name=baseline,
            baseline=round(base, 1),
            target="ratio <= 0.75",
            met=lam / base <= 0.75,
            reproduce=REPRODUCE,
            note=note + "; token from the environment (SSM/Secrets Manager names add boto3)",
        ),
        Figure(
            name="cold import: Lambda handler + httpx (what the first request adds)",
            value=round(first, 1),
            unit="ms",
            baseline_name=baseline,
            baseline=round(base, 1),
            target="informational",
            met=None,
            reproduce=REPRODUCE,
            note=note,
        ),
    ]
    if importlib.util.find_spec("continuum.platforms.vercel.app") is not None:
        vercel, flask, with_core = fastest(
            ["import continuum.platforms.vercel.app", "import flask", "import flask, continuum"],
            rounds,
        )
        figures.append(
            Figure(
                name="cold import: Vercel app",
                value=round(vercel, 1),
                unit="ms",
                baseline_name="import flask",
                baseline=round(flask, 1),
                target="ratio <= 1.2",
                met=vercel / flask <= 1.2,
                reproduce=REPRODUCE,
                note=note,
            )
        )
        # Where the Vercel app's margin over Flask goes: mostly the `core` package
        # (every handler imports it; stdlib modules Flask already loaded are not counted
        # again), the rest is continuum.app and Flask(...).
        figures.append(
            Figure(
                name="cold import: flask + the core package (core's share of the Vercel margin)",
                value=round(with_core, 1),
                unit="ms",
                baseline_name="import flask",
                baseline=round(flask, 1),
                target="informational",
                met=None,
                reproduce=REPRODUCE,
                note=note,
            )
        )
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(
            f"{figure.name}: {figure.value} {figure.unit} vs {figure.baseline_name} "
            f"{figure.baseline} {figure.unit} (ratio {figure.ratio:.2f}, {figure.target}, "
            f"met={figure.met})"
        )
