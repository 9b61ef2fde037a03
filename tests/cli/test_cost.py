"""``continuum cost``: the seed's tiers to the cent, the Pro verdict, measured stats, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from continuum.cli.main import main
from continuum.cost import (
    Prices,
    Profile,
    estimate,
    parse_count,
    parse_size,
    profile_from_stats,
    usage_for,
)
from continuum.errors import ValidationError


def cost_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    assert main(["cost", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("users", "commands", "storage", "bandwidth", "total"),
    [
        ("10000", "10.00", "2.50", "7.50", "20.00"),
        ("100000", "100.00", "25.00", "75.00", "200.00"),
        ("1000000", "1000.00", "250.00", "750.00", "2000.00"),
    ],
)
def test_reproduces_the_seed_tiers_to_the_cent(
    capsys: pytest.CaptureFixture[str],
    users: str,
    commands: str,
    storage: str,
    bandwidth: str,
    total: str,
) -> None:
    doc = cost_json(capsys, "--users", users)
    assert isinstance(doc, dict)
    payg = doc["pay_as_you_go"]
    assert [line["cost"] for line in payg["lines"]] == [commands, storage, bandwidth]
    assert payg["total"] == total


def test_seed_quantities_match_the_seed_tables(capsys: pytest.CaptureFixture[str]) -> None:
    doc = cost_json(capsys, "--users", "1M")
    assert isinstance(doc, dict)
    assert doc["usage"] == {"commands": 500_000_000, "storage_gb": 1000, "bandwidth_gb": 5000}


def test_text_breakdown_shows_each_line_and_the_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cost", "--users", "10000"]) == 0
    out = capsys.readouterr().out
    assert "5,000,000 @ $0.20/100k" in out
    assert "$10.00" in out and "$2.50" in out and "$7.50" in out
    assert "$20.00/month" in out
    assert "Cheapest: pay-as-you-go, by $260.00/month" in out
    assert "never the cheaper plan" in out


def test_without_users_prints_the_three_seed_tiers(capsys: pytest.CaptureFixture[str]) -> None:
    doc = cost_json(capsys)
    assert isinstance(doc, list)
    assert [d["pay_as_you_go"]["total"] for d in doc] == ["20.00", "200.00", "2000.00"]


def test_pro_overage_is_billed_at_pay_as_you_go_prices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = cost_json(capsys, "--users", "1000000")
    assert isinstance(doc, dict)
    pro = doc["pro"]
    assert [line["billed"] for line in pro["lines"]] == [450_000_000, 900, 4500]
    assert pro["total"] == "2080.00"
    assert doc["cheaper"] == "pay-as-you-go"


def test_says_when_the_fixed_pro_plan_is_cheaper(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--users", "100000", "--pro-price", "150"]) == 0
    out = capsys.readouterr().out
    assert "Cheapest: the fixed Pro plan, by $50.00/month." in out


def test_heavy_command_workload_makes_pro_cheaper_at_higher_prices() -> None:
    prices = Prices(per_100k_commands=Decimal("1.00"))
    result = estimate(usage_for(100_000, Profile()), prices, users=100_000)
    assert result.payg.total == Decimal("600.00")
    assert result.pro.total == Decimal("280.00")
    assert result.cheaper == "pro"
    assert result.savings == Decimal("320.00")


def test_a_tiny_workload_fits_the_free_tier(capsys: pytest.CaptureFixture[str]) -> None:
    doc = cost_json(capsys, "--users", "100")
    assert isinstance(doc, dict)
    assert doc["fits_free_tier"] is True and doc["cheaper"] == "free"
    main(["cost", "--users", "100"])
    assert "free tier fits" in capsys.readouterr().out


def test_every_line_is_rounded_to_the_cent_and_the_total_adds_up() -> None:
    profile = Profile(commands_per_request=Decimal("3.333"))
    result = estimate(usage_for(12_345, profile))
    for bill in (result.payg, result.pro):
        assert all(line.cost == line.cost.quantize(Decimal("0.01")) for line in bill.lines)
        assert bill.total == bill.fixed + sum(line.cost for line in bill.lines)
    # 12,345 users x 100 x 3.333 = 4,114,588.5 commands -> $8.229177 -> $8.23
    assert result.payg.lines[0].cost == Decimal("8.23")


def test_custom_prices_and_usage_flags(capsys: pytest.CaptureFixture[str]) -> None:
    doc = cost_json(
        capsys,
        "--users", "20k",
        "--requests-per-user", "300",
        "--commands-per-request", "2",
        "--bytes-per-request", "10KB",
        "--storage-per-user", "0.5MB",
        "--price-commands", "$0.40",
    )  # fmt: skip
    assert isinstance(doc, dict)
    # 20,000 x 300 x 2 = 12M commands x $0.40/100k = $48; 10 GB stored; 60 GB transferred
    assert doc["usage"] == {"commands": 12_000_000, "storage_gb": 10, "bandwidth_gb": 60}
    assert [line["cost"] for line in doc["pay_as_you_go"]["lines"]] == ["48.00", "2.50", "9.00"]


def test_from_stats_uses_what_the_meter_recorded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    meter = {"round_trips": 1, "commands": 2, "bytes_sent": 300, "bytes_received": 700}
    path = tmp_path / "meter.json"
    path.write_text(json.dumps(meter))
    doc = cost_json(capsys, "--users", "10000", "--from-stats", str(path))
    assert isinstance(doc, dict)
    assert doc["profile"]["commands_per_request"] == 2
    assert doc["profile"]["bytes_per_request"] == 1000
    # 10,000 x 100 requests x 2 commands = 2M commands; 1M requests x 1 kB = 1 GB
    assert doc["usage"]["commands"] == 2_000_000
    assert doc["usage"]["bandwidth_gb"] == 1


def test_from_stats_divides_totals_by_the_request_count(tmp_path: Path) -> None:
    stats = {"requests": 40, "totals": {"commands": 100, "bytes_sent": 2000}}
    profile = profile_from_stats(stats)
    assert profile.commands_per_request == Decimal("2.5")
    assert profile.bytes_per_request == Decimal(50)


def test_explicit_flag_wins_over_stats(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"commands": 9}))
    doc = cost_json(
        capsys, "--users", "1", "--from-stats", str(path), "--commands-per-request", "1"
    )
    assert isinstance(doc, dict)
    assert doc["profile"]["commands_per_request"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "neither JSON nor a log"),
        ('{"hits": 3}', "no 'commands' counter"),
        ('{"commands": "many"}', "not a number"),
        ('{"commands": -1}', ">= 0"),
        ('{"commands": 5, "requests": 0}', "no request"),
        ("[1, 2]", "no 'commands' counter"),
    ],
)
def test_bad_stats_file_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["cost", "--users", "10", "--from-stats", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_stats_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["cost", "--from-stats", str(tmp_path / "nope.json")]) == 2
    assert "cannot read --from-stats" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--users", "-5"],
        ["--users", "ten"],
        ["--users", "1.5"],
        ["--bytes-per-request", "5 parsecs"],
        ["--price-commands", "cheap"],
    ],
)
def test_bad_flags_exit_2_with_the_flag_named(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(["cost", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("continuum cost: --") and "Traceback" not in err


def test_parsers_understand_units() -> None:
    assert parse_size("50KB") == 50_000
    assert parse_size("1 MiB") == 1_048_576
    assert parse_size("2gb") == 2_000_000_000
    assert parse_count("50M") == 50_000_000
    assert parse_count("1,000,000") == 1_000_000
    assert parse_count("2.5k") == 2_500
    with pytest.raises(ValidationError):
        parse_size("1 XB")


def test_the_installed_command_prints_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "continuum.cli.main", "cost", "--users", "10000", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pay_as_you_go"]["total"] == "20.00"


def test_from_stats_reads_the_v1_stats_shape(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stats = {
        "backend": "upstash",
        "hits": 4,
        "layers": {"query": {"hits": 4, "misses": 1}},
        "meter": {"round_trips": 2, "commands": 3, "bytes_sent": 100, "bytes_received": 400},
    }
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(stats))
    assert main(["cost", "--json", "--users", "1000", "--from-stats", str(path)]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["profile"]["commands_per_request"] == 3
    assert doc["profile"]["bytes_per_request"] == 500
    assert "no 'requests' count" in captured.err


def test_from_stats_reads_per_request_log_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "function.log"
    log.write_text(
        "START RequestId: 8f1c Version: $LATEST\n"
        '2026-01-01T00:00:00.000Z\t8f1c\tINFO\t{"msg": "request", "commands": 2, '
        '"bytes_sent": 100, "bytes_received": 300}\n'
        '{"msg": "request", "commands": 4, "bytes_sent": 200, "bytes_received": 600}\n'
        '{"msg": "startup", "commands": 99}\n'
        "REPORT RequestId: 8f1c Duration: 12.3 ms\n"
    )
    doc = cost_json(capsys, "--users", "1000", "--from-stats", str(log))
    assert isinstance(doc, dict)
    assert doc["profile"]["commands_per_request"] == 3
    assert doc["profile"]["bytes_per_request"] == 600


def test_from_stats_reads_the_reference_api_own_log(
    upstash_emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The JSON line the reference API logs per request is what --from-stats averages, and
    it bills what Upstash bills: the rate-limit script's redis.calls included."""
    from continuum.app import Api, Request

    upstash_emulator.apply_env(monkeypatch)
    monkeypatch.setenv("CONTINUUM_API_KEYS", "test-key")
    api = Api()
    auth = [("authorization", "Bearer test-key")]
    for path in ("/v1/cache/query/a", "/v1/cache/query/b", "/health"):
        api.handle(Request.build("GET", path, headers=auth))
    captured = capsys.readouterr()
    log = tmp_path / "api.log"
    text = captured.out + captured.err
    log.write_text(text)
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    logged = [r["billed_commands"] for r in records if r.get("msg") == "request"]
    sent = [r["commands"] for r in records if r.get("msg") == "request"]
    assert len(logged) == 3 and sum(logged) > sum(sent) > 0
    assert sum(logged) == upstash_emulator.billed()  # the server's own count
    doc = cost_json(capsys, "--users", "1000", "--from-stats", str(log))
    assert isinstance(doc, dict)
    assert doc["profile"]["commands_per_request"] == pytest.approx(sum(logged) / 3)


def test_billed_commands_win_over_commands_sent() -> None:
    profile = profile_from_stats({"commands": 1, "billed_commands": 5})
    assert profile.commands_per_request == 5


def test_total_storage_and_bandwidth_override_the_per_user_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = cost_json(capsys, "--users", "10000", "--storage", "40GB", "--bandwidth", "1TB")
    assert isinstance(doc, dict)
    assert doc["usage"] == {"commands": 5_000_000, "storage_gb": 40, "bandwidth_gb": 1000}
    # $10.00 commands + 40 GB x $0.25 + 1,000 GB x $0.15
    assert doc["pay_as_you_go"]["total"] == "170.00"
