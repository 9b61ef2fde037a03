"""Round trips to Upstash per reference-API request, counted by the emulator per endpoint.

Each route is called once through ``Api.handle`` (the sync API, as on Lambda and Vercel)
over a warm client (its scripts loaded), on an emulator whose request counter tells
single commands (``POST /``) from ``/pipeline`` and ``/multi-exec`` requests. The
baseline is what the same request costs when the key's limit check and the cache command
are sent one after the other (two round trips for a route with one cache call).
Targets: one round trip for every route with one cache call; zero for a key already
known to be over its limit.

    python -m bench.bench_roundtrips         # or: python -m bench.run --only roundtrips
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.report import Figure

REPRODUCE = "python -m bench.run --only roundtrips"

#: (name, method, path, body, round trips a sequential check-then-command would make)
ROUTES: list[tuple[str, str, str, Any, int]] = [
    ("GET /v1/cache/{layer}/{key} (hit)", "GET", "/v1/cache/query/k", None, 2),
    ("GET /v1/cache/{layer}/{key} (miss)", "GET", "/v1/cache/query/absent", None, 2),
    ("PUT /v1/cache/{layer}/{key}", "PUT", "/v1/cache/query/k", {"value": {"a": 1}}, 2),
    ("DELETE /v1/cache/{layer}/{key}", "DELETE", "/v1/cache/query/gone", None, 2),
    ("POST /v1/cache/{layer}/invalidate (nothing found)", "POST",
     "/v1/cache/query/invalidate", {"prefix": "none:"}, 2),
    ("POST /v1/cache/{layer}/invalidate (one page found)", "POST",
     "/v1/cache/query/invalidate", {"prefix": "p"}, 3),
    ("POST /v1/publish/{channel}", "POST", "/v1/publish/news", {"message": "hi"}, 2),
    ("POST /v1/ratelimit/{identifier}", "POST", "/v1/ratelimit/user", {"limit": 5}, 2),
    ("GET /v1/stats", "GET", "/v1/stats", None, 2),
    ("GET /health (no key; was PING then DBSIZE)", "GET", "/health", None, 2),
]  # fmt: skip


def _call(api: Any, method: str, path: str, body: Any, key: str) -> Any:
    from continuum.app import Request

    headers = {"content-type": "application/json"}
    if path.startswith("/v1"):
        headers["authorization"] = f"Bearer {key}"
    data = b"" if body is None else json.dumps(body).encode()
    return api.handle(Request.build(method, path, headers=headers, body=data, raw_path=True))


def measure() -> list[tuple[str, dict[str, int], int, int]]:
    """Per route: its requests per endpoint, its total, and the sequential baseline."""
    from continuum.app import Api, ApiSettings
    from continuum.cache import UpstashCache
    from continuum.emulator import EmulatorServer
    from continuum.ratelimit import blocked_identifiers

    rows = []
    with (
        EmulatorServer() as emulator,
        UpstashCache(rest_url=emulator.url, rest_token=emulator.token) as cache,
    ):
        settings = ApiSettings(api_keys=("bench", "over"), rate_limit=1000, rate_window=60)
        api = Api(settings, cache=cache, sink=lambda line: None)
        for _, method, path, body, _ in ROUTES:  # warm: every script loaded
            _call(api, method, path, body, "bench")
        emulator.flush()
        for name, method, path, body, sequential in ROUTES:
            if "found)" in name and "one page" in name:
                emulator.backend.client.set("query:p1", "1")
            if path == "/v1/cache/query/k":
                emulator.backend.client.set("query:k", '"v"')
            emulator.reset_billing()
            answer = _call(api, method, path, body, "bench")
            assert answer.status in (200, 404), (name, answer.status, answer.body)
            rows.append((name, emulator.requests_by_endpoint, emulator.requests, sequential))
        tight = Api(ApiSettings(api_keys=("over",), rate_limit=1), cache=cache,
                    sink=lambda line: None)  # fmt: skip
        blocked_identifiers.clear()
        _call(tight, "GET", "/v1/cache/query/k", None, "over")
        emulator.reset_billing()
        assert _call(tight, "PUT", "/v1/cache/query/k", {"value": 1}, "over").status == 429
        rows.append(("refused PUT (first refusal)", emulator.requests_by_endpoint,
                     emulator.requests, 1))  # fmt: skip
        emulator.reset_billing()
        assert _call(tight, "PUT", "/v1/cache/query/k", {"value": 1}, "over").status == 429
        rows.append(("refused PUT (known repeat offender)", emulator.requests_by_endpoint,
                     emulator.requests, 0))  # fmt: skip
        blocked_identifiers.clear()
    return rows


def run(quick: bool = False) -> list[Figure]:
    figures = []
    for name, endpoints, total, sequential in measure():
        split = ", ".join(f"{k} {v}" for k, v in endpoints.items() if v) or "none"
        target = 0 if "repeat offender" in name else 1
        if "one page found" in name or "ratelimit" in name:
            target = 2  # a page's UNLINK after the SCAN; two limiter scripts
        figures.append(
            Figure(
                name=f"round trips: {name}",
                value=total,
                unit="requests",
                baseline_name="check, then command (sequential)",
                baseline=sequential,
                target=f"== {target}",
                met=total == target,
                reproduce=REPRODUCE,
                note=f"by endpoint: {split}",
            )
        )
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(f"{figure.name}: {figure.value} (sequential {figure.baseline}; {figure.note}; "
              f"target {figure.target}, met={figure.met})")  # fmt: skip
