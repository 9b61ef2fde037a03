"""The benchmark report writer, on synthetic figures and throwaway benchmark modules.

The real benchmarks are not run here (they are long, and timing belongs in ``bench/``).
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path

import pytest

from bench.report import Figure
from bench.run import Outcome, discover, render, run_all, run_module, write_report

WHEN = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
MACHINE = {"python": "CPython 3.12.1", "cores": "2"}


def fig(name: str, value: float, baseline: float | None, met: bool | None, **kw: str) -> Figure:
    return Figure(
        name=name,
        value=value,
        unit=kw.get("unit", "us/op"),
        baseline_name=kw.get("baseline_name", "raw httpx"),
        baseline=baseline,
        target=kw.get("target", "ratio <= 1.3"),
        met=met,
        reproduce=kw.get("reproduce", "python -m bench.bench_cache"),
        note=kw.get("note", ""),
    )


def rows(text: str) -> list[list[str]]:
    return [
        [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| figure")
    ]


def test_table_has_value_baseline_ratio_target_met_and_reproduce() -> None:
    text = render(
        [Outcome("bench.bench_cache", [fig("get", 120.0, 100.0, True)], seconds=1.5)],
        quick=False,
        when=WHEN,
        machine=MACHINE,
    )
    assert "## bench_cache" in text
    assert rows(text) == [
        [
            "get",
            "120 us/op",
            "raw httpx: 100 us/op",
            "1.20x",
            "ratio <= 1.3",
            "✓",
            "`python -m bench.bench_cache`",
        ]
    ]
    assert "2026-01-02 03:04 UTC" in text
    assert "python CPython 3.12.1; cores 2" in text


def test_summary_counts_met_missed_informational_and_errors() -> None:
    outcomes = [
        Outcome(
            "bench.bench_a",
            [fig("x", 1, 2, True), fig("y", 3, 2, False), fig("z", 0.5, None, None)],
        ),
        Outcome("bench.bench_b", error="RuntimeError: emulator did not start"),
    ]
    text = render(outcomes, quick=True, when=WHEN, machine=MACHINE)
    assert "3 figures from 2 benchmarks: 1 met their target, 1 missed, 1 informational" in text
    assert "1 benchmark failed to run" in text
    assert "`python -m bench.run --quick`" in text
    marks = [r[5] for r in rows(text)]
    assert marks == ["✓", "✗", "-", "✗"]
    assert "- bench_a: y: 3 us/op, target ratio <= 1.3" in text
    assert "- bench_b: failed to run (RuntimeError: emulator did not start)" in text


def test_missing_baseline_leaves_the_ratio_empty() -> None:
    text = render(
        [Outcome("bench.bench_codec", [fig("size", 812, None, None, unit="bytes")])],
        quick=False,
        when=WHEN,
        machine=MACHINE,
    )
    assert rows(text)[0][1:4] == ["812 bytes", "raw httpx", ""]


def test_error_row_names_the_error_and_how_to_rerun() -> None:
    text = render(
        [Outcome("bench.bench_limiter", error="ConnectionFailed: refused")],
        quick=False,
        when=WHEN,
        machine=MACHINE,
    )
    assert rows(text)[0][1] == "error"
    assert "`python -m bench.run --only limiter`" in text
    assert "The benchmark failed: `ConnectionFailed: refused`" in text


def test_pipes_and_newlines_cannot_break_the_table() -> None:
    text = render(
        [Outcome("bench.bench_x", [fig("a | b\nc", 1.234, 1.0, True, note="see | here")])],
        quick=False,
        when=WHEN,
        machine=MACHINE,
    )
    line = next(x for x in text.splitlines() if x.startswith("| a"))
    assert line.startswith("| a \\| b c [1] | 1.23 us/op")
    assert "[1] see \\| here" in text


def test_numbers_are_readable() -> None:
    figures = [fig("big", 12345.6, 0.000123, None), fig("small", 0.0004567, 2.5, None)]
    text = render([Outcome("bench.bench_n", figures)], quick=False, when=WHEN, machine=MACHINE)
    assert rows(text)[0][1:3] == ["12,346 us/op", "raw httpx: 0.000123 us/op"]
    assert rows(text)[1][1:3] == ["0.000457 us/op", "raw httpx: 2.50 us/op"]


@pytest.fixture
def fake_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A throwaway benchmark package: one good, one raising, one returning junk, one slow."""
    pkg = tmp_path / "fakebench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("VALUE = 1\n")
    (pkg / "bench_good.py").write_text(
        textwrap.dedent(
            """
            from bench.report import Figure

            def run(quick=False):
                return [Figure("op", 2.0 if quick else 3.0, "us/op", "base", 2.0,
                               "ratio <= 1.3", True, "python -m fakebench.bench_good")]
            """
        )
    )
    (pkg / "bench_boom.py").write_text("def run(quick=False):\n    raise RuntimeError('boom')\n")
    (pkg / "bench_exit.py").write_text("def run(quick=False):\n    raise SystemExit(3)\n")
    (pkg / "bench_junk.py").write_text("def run(quick=False):\n    return {'not': 'a list'}\n")
    (pkg / "bench_slow.py").write_text(
        "import time\n"
        "def run(quick=False):\n"
        "    end = time.monotonic() + 30\n"
        "    while time.monotonic() < end:\n"
        "        pass\n"
        "    return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fakebench"


def test_discover_finds_only_bench_modules(fake_bench: str) -> None:
    assert discover(fake_bench) == [
        "fakebench.bench_boom",
        "fakebench.bench_exit",
        "fakebench.bench_good",
        "fakebench.bench_junk",
        "fakebench.bench_slow",
    ]


def test_a_failing_benchmark_becomes_an_error_row_and_the_rest_still_run(
    fake_bench: str,
) -> None:
    modules = [
        "fakebench.bench_boom",
        "fakebench.bench_junk",
        "fakebench.bench_exit",
        "fakebench.bench_good",
    ]
    outcomes = run_all(modules, quick=True)
    assert outcomes[0].error == "RuntimeError: boom"
    assert outcomes[1].error is not None and "not a list of Figure" in outcomes[1].error
    assert outcomes[2].error == "SystemExit: 3"
    assert outcomes[3].error is None
    assert [f.value for f in outcomes[3].figures] == [2.0]  # quick was passed through


def test_an_overrunning_benchmark_is_stopped_and_recorded(fake_bench: str) -> None:
    outcome = run_module("fakebench.bench_slow", quick=True, timeout=0.3)
    assert outcome.error is not None and outcome.error.startswith("BenchmarkTimeout")


def test_write_report_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("old")
    text = render(
        [Outcome("bench.bench_cache", [fig("get", 1, 1, True)])],
        quick=False,
        when=WHEN,
        machine=MACHINE,
    )
    write_report(target, text)
    assert target.read_text() == text
    assert list(tmp_path.iterdir()) == [target]


def test_identical_notes_share_one_number() -> None:
    figures = [
        fig("a", 1, 1, True, note="same caveat"),
        fig("b", 1, 1, True, note="other caveat"),
        fig("c", 1, 1, True, note="same caveat"),
    ]
    text = render([Outcome("bench.bench_n", figures)], quick=False, when=WHEN, machine=MACHINE)
    assert [r[0] for r in rows(text)] == ["a [1]", "b [2]", "c [1]"]
    assert text.count("same caveat") == 1
