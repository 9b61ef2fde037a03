"""``continuum cost``: the monthly Upstash bill for a number of users, and the cheaper plan.

    continuum cost                          # the seed's three tiers
    continuum cost --users 10000
    continuum cost --users 250k --commands-per-request 3 --json
    continuum cost --users 50000 --from-stats meter.json

The arithmetic lives in :mod:`continuum.cost`; this module parses flags, reads the meter's stats
and prints the breakdown. Every bad flag or stats file ends in one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from continuum.cost import (
    GB,
    Bill,
    Estimate,
    Prices,
    Profile,
    estimate,
    parse_count,
    parse_size,
    profile_from_stats,
    totals_from_log,
    usage_for,
)
from continuum.errors import ValidationError

SEED_TIERS = ("10000", "100000", "1000000")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Gigabytes are decimal (10^9 bytes). Usage beyond Pro's inclusions is billed at the "
        "pay-as-you-go prices on top of the fixed fee. Each line is rounded to the cent."
    )
    parser.add_argument(
        "--users",
        nargs="+",
        default=list(SEED_TIERS),
        metavar="N",
        help="monthly active users; several values print several estimates; 10k, 1M accepted "
        "(default: the seed's tiers, 10000 100000 1000000)",
    )
    usage = parser.add_argument_group("usage per user (defaults: the seed's tables)")
    usage.add_argument(
        "--requests-per-user", metavar="N", help="requests per user per month (default: 100)"
    )
    usage.add_argument(
        "--commands-per-request",
        metavar="N",
        help="Upstash commands per request, as the meter measures them (default: 5)",
    )
    usage.add_argument(
        "--bytes-per-request",
        metavar="SIZE",
        help="bytes sent and received per request (default: 50KB)",
    )
    usage.add_argument(
        "--storage-per-user", metavar="SIZE", help="data stored per user (default: 1MB)"
    )
    usage.add_argument(
        "--storage", metavar="SIZE", help="total data stored, e.g. 40GB (instead of per user)"
    )
    usage.add_argument(
        "--bandwidth",
        metavar="SIZE",
        help="total monthly transfer, e.g. 2TB (instead of per request)",
    )
    usage.add_argument(
        "--from-stats",
        metavar="FILE",
        help="JSON from Meter.as_dict() or /v1/stats, or a log of the per-request JSON lines "
        "('-' reads stdin): commands and bytes per request as measured; explicit flags win",
    )
    prices = parser.add_argument_group("prices (defaults: the seed's)")
    defaults = Prices()
    prices.add_argument(
        "--price-commands",
        default=str(defaults.per_100k_commands),
        metavar="USD",
        help="per 100,000 commands (default: %(default)s)",
    )
    prices.add_argument(
        "--price-storage",
        default=str(defaults.per_gb_storage),
        metavar="USD",
        help="per GB stored per month (default: %(default)s)",
    )
    prices.add_argument(
        "--price-bandwidth",
        default=str(defaults.per_gb_bandwidth),
        metavar="USD",
        help="per GB transferred (default: %(default)s)",
    )
    prices.add_argument(
        "--pro-price",
        default=str(defaults.pro_monthly),
        metavar="USD",
        help="fixed monthly fee of the Pro plan (default: %(default)s)",
    )
    prices.add_argument(
        "--pro-commands",
        default="50M",
        metavar="N",
        help="commands included in Pro (default: %(default)s)",
    )
    prices.add_argument(
        "--pro-storage",
        default="100GB",
        metavar="SIZE",
        help="storage included in Pro (default: %(default)s)",
    )
    prices.add_argument(
        "--pro-bandwidth",
        default="500GB",
        metavar="SIZE",
        help="bandwidth included in Pro (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    try:
        estimates = _estimates(args)
    except ValidationError as exc:
        print(f"continuum cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        docs = [e.as_dict() for e in estimates]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        print("\n\n".join(render(e) for e in estimates))
    return 0


def _estimates(args: argparse.Namespace) -> list[Estimate]:
    prices = Prices(
        per_100k_commands=_money_flag(args.price_commands, "--price-commands"),
        per_gb_storage=_money_flag(args.price_storage, "--price-storage"),
        per_gb_bandwidth=_money_flag(args.price_bandwidth, "--price-bandwidth"),
        pro_monthly=_money_flag(args.pro_price, "--pro-price"),
        pro_commands=_flag(parse_count, args.pro_commands, "--pro-commands"),
        pro_storage_gb=_flag(parse_size, args.pro_storage, "--pro-storage") / Decimal(10**9),
        pro_bandwidth_gb=_flag(parse_size, args.pro_bandwidth, "--pro-bandwidth") / Decimal(10**9),
    )
    profile = Profile()
    if args.from_stats:
        stats = _read_stats(args.from_stats)
        profile = profile_from_stats(stats, profile)
        if isinstance(stats, dict) and "requests" not in stats and "commands" not in stats:
            print(
                "continuum cost: the stats carry no 'requests' count; their counters are "
                "taken as one request's",
                file=sys.stderr,
            )
    profile = Profile(
        requests_per_user=_opt(
            parse_count, args.requests_per_user, "--requests-per-user", profile.requests_per_user
        ),
        commands_per_request=_opt(
            parse_count,
            args.commands_per_request,
            "--commands-per-request",
            profile.commands_per_request,
        ),
        bytes_per_request=_opt(
            parse_size, args.bytes_per_request, "--bytes-per-request", profile.bytes_per_request
        ),
        storage_bytes_per_user=_opt(
            parse_size, args.storage_per_user, "--storage-per-user", profile.storage_bytes_per_user
        ),
    )
    storage = _opt_none(parse_size, args.storage, "--storage")
    bandwidth = _opt_none(parse_size, args.bandwidth, "--bandwidth")
    out = []
    for text in args.users:
        users = _flag(parse_count, text, "--users")
        if users != users.to_integral_value():
            raise ValidationError(f"--users must be a whole number, got {text!r}")
        n = int(users)
        usage = usage_for(n, profile)
        if storage is not None:
            usage = replace(usage, storage_gb=storage / GB)
        if bandwidth is not None:
            usage = replace(usage, bandwidth_gb=bandwidth / GB)
        out.append(estimate(usage, prices, users=n, profile=profile))
    return out


def _read_stats(path: str) -> object:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read --from-stats {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"--from-stats {path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        totals = totals_from_log(text.splitlines())
        if totals is None:
            raise ValidationError(
                f"--from-stats {path} is neither JSON nor a log of per-request JSON lines "
                f"with a 'commands' count ({exc})"
            ) from None
        return totals


def _flag(parse: Callable[[str], Decimal], text: str, name: str) -> Decimal:
    try:
        return parse(text)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from None


def _opt(parse: Callable[[str], Decimal], text: str | None, name: str, default: Decimal) -> Decimal:
    return default if text is None else _flag(parse, text, name)


def _opt_none(parse: Callable[[str], Decimal], text: str | None, name: str) -> Decimal | None:
    return None if text is None else _flag(parse, text, name)


def _money_flag(text: str, name: str) -> Decimal:
    return _flag(parse_count, text.removeprefix("$"), name)


def render(e: Estimate) -> str:
    """The breakdown in the seed's layout, then the verdict."""
    lines: list[str] = []
    if e.users is not None and e.profile is not None:
        p = e.profile
        lines.append(
            f"{e.users:,} users x {_qty(p.requests_per_user)} requests/month x "
            f"{_qty(p.commands_per_request)} commands/request; "
            f"{_qty(e.usage.storage_gb)} GB stored, {_qty(e.usage.bandwidth_gb)} GB transferred"
        )
    lines += _bill_lines(e.payg, "Pay-as-you-go")
    pro = e.prices
    lines += _bill_lines(
        e.pro,
        f"Pro (fixed ${pro.pro_monthly:,.2f}/month, includes {_qty(pro.pro_commands)} commands, "
        f"{_qty(pro.pro_storage_gb)} GB storage, {_qty(pro.pro_bandwidth_gb)} GB bandwidth; "
        "beyond that, pay-as-you-go prices)",
    )
    lines.append(_verdict(e))
    return "\n".join(lines)


def _bill_lines(bill: Bill, title: str) -> list[str]:
    out = [title]
    for line in bill.lines:
        per = "100k" if line.unit == "100k commands" else "GB"
        unit = "" if per == "100k" else " GB"
        if not line.included:
            what = f"{_qty(line.quantity)}{unit} @ ${line.unit_price}/{per}"
        elif not line.billed:
            what = f"{_qty(line.quantity)}{unit} of {_qty(line.included)}{unit} included"
        else:
            what = f"{_qty(line.billed)}{unit} beyond the included @ ${line.unit_price}/{per}"
        out.append(f"  {line.item.capitalize() + ':':<11}{what:<44} = {_usd(line.cost)}")
    if bill.fixed:
        out.append(f"  {'Fixed fee:':<11}{'':<44} = {_usd(bill.fixed)}")
    out.append(f"  {'Total:':<11}{'':<44} = {_usd(bill.total)}/month")
    return out


def _verdict(e: Estimate) -> str:
    if e.cheaper == "free":
        return "Cheapest: the free tier fits this workload ($0.00/month)."
    if e.cheaper == "pro":
        return f"Cheapest: the fixed Pro plan, by ${e.savings:,}/month."
    if e.cheaper == "equal":
        return f"Both plans cost ${e.payg.total:,}/month."
    text = f"Cheapest: pay-as-you-go, by ${e.savings:,}/month."
    if e.pro_inclusions_value <= e.pro.fixed:
        text += (
            f" Pro's inclusions are worth ${e.pro_inclusions_value:,} at these prices, no more "
            f"than its ${e.pro.fixed:,} fee, so Pro is never the cheaper plan here."
        )
    return text


def _usd(amount: Decimal) -> str:
    return f"{'$' + format(amount, ',.2f'):>10}"


def _qty(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")
