"""One structured log line per request, optionally in CloudWatch Embedded Metric Format.

The line is a flat JSON object (``route``, ``status``, ``backend``, ``round_trips``,
``commands``, ``cache_ms``, ``duration_ms``, ...), so CloudWatch Logs Insights and
Vercel's log search can filter and aggregate on fields directly, e.g.::

    fields route, status, backend, cache_ms | filter backend = "local" | stats count() by route

With ``CONTINUUM_EMF=true`` the same line also carries an ``_aws`` block: CloudWatch
then extracts metrics from it without any API call (no agent, no extra latency, which
is why EMF rather than ``PutMetricData`` on Lambda). The line never holds a token or an
API key: only fields built here are written, never headers or bodies.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable

__all__ = ["RequestRecord", "emit", "stdout_sink"]

EMF_NAMESPACE = "Continuum"


class RequestRecord:
    """What one request did; becomes one log line (a slotted class: no dataclass build
    on the cold-start path)."""

    __slots__ = (
        "backend",
        "billed_commands",
        "cache_ms",
        "commands",
        "duration_ms",
        "error_code",
        "error_detail",
        "fallback_ops",
        "method",
        "request_id",
        "round_trips",
        "route",
        "status",
    )

    def __init__(
        self,
        *,
        route: str,
        method: str,
        status: int,
        backend: str,
        round_trips: int,
        commands: int,
        cache_ms: float,
        duration_ms: float,
        request_id: str = "",
        error_code: str = "",
        error_detail: str = "",
        fallback_ops: int = 0,
        billed_commands: int | None = None,
    ) -> None:
        self.route = route
        self.method = method
        self.status = status
        self.backend = backend
        self.round_trips = round_trips
        self.commands = commands
        self.cache_ms = cache_ms
        self.duration_ms = duration_ms
        self.request_id = request_id
        self.error_code = error_code
        self.error_detail = error_detail
        self.fallback_ops = fallback_ops
        self.billed_commands = commands if billed_commands is None else billed_commands

    def fields(self) -> dict[str, object]:
        line: dict[str, object] = {
            "level": "error" if self.status >= 500 else "info",
            "msg": "request",
            "route": self.route,
            "method": self.method,
            "status": self.status,
            "backend": self.backend,
            "round_trips": self.round_trips,
            "commands": self.commands,
            "billed_commands": self.billed_commands,
            "cache_ms": round(self.cache_ms, 3),
            "duration_ms": round(self.duration_ms, 3),
            "fallback_ops": self.fallback_ops,
        }
        if self.request_id:
            line["request_id"] = self.request_id
        if self.error_code:
            line["error_code"] = self.error_code
        if self.error_detail:
            line["error_detail"] = self.error_detail
        return line


def emf_block(record: RequestRecord, *, now_ms: int | None = None) -> dict[str, object]:
    """The ``_aws`` metadata that turns the log line's numbers into CloudWatch metrics."""
    return {
        "Timestamp": int(time.time() * 1000) if now_ms is None else now_ms,
        "CloudWatchMetrics": [
            {
                "Namespace": EMF_NAMESPACE,
                "Dimensions": [["route", "backend"]],
                "Metrics": [
                    {"Name": "duration_ms", "Unit": "Milliseconds"},
                    {"Name": "cache_ms", "Unit": "Milliseconds"},
                    {"Name": "round_trips", "Unit": "Count"},
                    {"Name": "commands", "Unit": "Count"},
                    {"Name": "billed_commands", "Unit": "Count"},
                    {"Name": "fallback_ops", "Unit": "Count"},
                ],
            }
        ],
    }


def emit(record: RequestRecord, sink: Callable[[str], None], *, emf: bool = False) -> None:
    """Write ``record`` as one JSON line to ``sink``; never raises into the request."""
    line = record.fields()
    if emf:
        line["_aws"] = emf_block(record)
    with contextlib.suppress(Exception):  # a broken log pipe must not fail the request
        sink(json.dumps(line, separators=(",", ":"), ensure_ascii=False))


def stdout_sink(line: str) -> None:
    """Lambda and Vercel collect stdout into their logs, one event per line."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
