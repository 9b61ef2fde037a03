"""Cold-start import cost of the platform handlers, as ratios to what users would import.

Each sample is a fresh interpreter (``python -c``) timing only the ``import`` statement
(interpreter start-up excluded), so nothing is cached in ``sys.modules``; subject and
baseline samples alternate so machine noise hits both alike, and medians are compared.

- Lambda: ``import platforms.aws_lambda.handler`` (Mangum, the raw ASGI app, the async
  client built from the environment) against ``import mangum, upstash_redis`` (the
  usual Mangum + official SDK stack). Target: at most 0.75x.
- Vercel: ``import platforms.vercel.app`` against ``import flask``. Target: at most 1.2x.

httpx is imported by the client on its first request, not at import; a third,
informational figure adds ``import httpx`` to the handler import so the first request's
cost is visible too. Diagnose a regression with
``python -X importtime -c "import platforms.aws_lambda.handler"``.

    python -m bench.bench_coldstart          # or: python -m bench.run --only coldstart
"""

from __future__ import annotations

import importlib.util
import os
import statistics
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
    "PYTHONDONTWRITEBYTECODE": "",
}
_TIMER = (
    "import time, warnings\nwarnings.simplefilter('ignore')\n"
    "t = time.perf_counter()\n{stmt}\nprint(time.perf_counter() - t)\n"
)


def import_seconds(stmt: str) -> float:
    """Seconds ``stmt`` takes in a fresh interpreter (bytecode caches warm, modules not)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "CONTINUUM_"))}
    env.update(ENV)
    out = subprocess.run(
        [sys.executable, "-c", _TIMER.format(stmt=stmt)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def compare(subject: str, baseline: str, rounds: int) -> tuple[float, float]:
    """Median milliseconds of ``subject`` and ``baseline``, alternating samples."""
    import_seconds(subject)  # warm the bytecode caches of both once
    import_seconds(baseline)
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(import_seconds(subject))
        theirs.append(import_seconds(baseline))
    return statistics.median(ours) * 1000, statistics.median(theirs) * 1000


def run(quick: bool = False) -> list[Figure]:
    rounds = 5 if quick else 15
    figures: list[Figure] = []
    handler = "import platforms.aws_lambda.handler"
    lam, lam_base = compare(handler, "import mangum, upstash_redis", rounds)
    figures.append(Figure(
        name="cold import: Lambda handler",
        value=round(lam, 1), unit="ms",
        baseline_name="import mangum, upstash_redis", baseline=round(lam_base, 1),
        target="ratio <= 0.75", met=lam / lam_base <= 0.75, reproduce=REPRODUCE,
        note=f"median of {rounds} fresh interpreters each, Python {sys.version.split()[0]}",
    ))
    first, first_base = compare(f"{handler}; import httpx", "import mangum, upstash_redis", rounds)
    figures.append(Figure(
        name="cold import: Lambda handler + httpx (what the first request adds)",
        value=round(first, 1), unit="ms",
        baseline_name="import mangum, upstash_redis", baseline=round(first_base, 1),
        target="informational", met=None, reproduce=REPRODUCE,
    ))
    if importlib.util.find_spec("platforms.vercel.app") is not None:
        vercel, flask = compare("import platforms.vercel.app", "import flask", rounds)
        figures.append(Figure(
            name="cold import: Vercel app",
            value=round(vercel, 1), unit="ms",
            baseline_name="import flask", baseline=round(flask, 1),
            target="ratio <= 1.2", met=vercel / flask <= 1.2, reproduce=REPRODUCE,
            note=f"median of {rounds} fresh interpreters each",
        ))
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(f"{figure.name}: {figure.value} {figure.unit} vs {figure.baseline_name} "
              f"{figure.baseline} {figure.unit} (ratio {figure.ratio:.2f}, {figure.target}, "
              f"met={figure.met})")
