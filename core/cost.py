"""What a workload costs on Upstash per month: pay-as-you-go against the fixed Pro plan.

Pure arithmetic on :class:`decimal.Decimal` (money must add up to the cent), no I/O, so the
CLI (``continuum cost``) and anything else can reuse it. The defaults reproduce the seed's
three tiers exactly: per user and month, 100 requests of 5 commands and 50 kB of traffic
each, and 1 MB stored, gives 10,000 users $20.00, 100,000 users $200.00 and 1,000,000 users
$2,000.00 at $0.20 per 100k commands, $0.25 per GB stored and $0.15 per GB transferred.

Decisions the seed leaves open, made here and shown in every estimate:

- Gigabytes are decimal (10^9 bytes), as in the seed's tables (1 TB is billed as 1,000 GB).
- Each line is rounded to the cent (half up) and the total is the sum of the rounded lines,
  so a printed breakdown always adds up.
- Usage beyond the Pro plan's inclusions (50M commands, 100 GB stored, 500 GB transferred)
  is billed at the pay-as-you-go unit prices on top of the fixed fee. The seed names no
  other overage rate, and this is the rule that never makes more usage cheaper.
- The free tier (10,000 commands a day, i.e. 300,000 a month, and 256 MB) costs nothing,
  and only applies when the whole workload fits in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from continuum.errors import ValidationError

__all__ = [
    "GB",
    "Bill",
    "Estimate",
    "Line",
    "Prices",
    "Profile",
    "Usage",
    "estimate",
    "parse_count",
    "parse_size",
    "profile_from_stats",
    "totals_from_log",
    "usage_for",
]

GB = Decimal(10**9)
CENT = Decimal("0.01")
HUNDRED_K = Decimal(100_000)


@dataclass(frozen=True)
class Prices:
    """Unit prices and plan allowances; the defaults are the seed's."""

    per_100k_commands: Decimal = Decimal("0.20")
    per_gb_storage: Decimal = Decimal("0.25")
    per_gb_bandwidth: Decimal = Decimal("0.15")
    pro_monthly: Decimal = Decimal("280.00")
    pro_commands: Decimal = Decimal(50_000_000)
    pro_storage_gb: Decimal = Decimal(100)
    pro_bandwidth_gb: Decimal = Decimal(500)
    free_commands: Decimal = Decimal(300_000)
    free_storage_gb: Decimal = Decimal("0.256")


@dataclass(frozen=True)
class Profile:
    """What one user does in a month: the seed's tables divided by their user counts."""

    requests_per_user: Decimal = Decimal(100)
    commands_per_request: Decimal = Decimal(5)
    bytes_per_request: Decimal = Decimal(50_000)
    storage_bytes_per_user: Decimal = Decimal(1_000_000)


@dataclass(frozen=True)
class Usage:
    """A month's billed quantities."""

    commands: Decimal
    storage_gb: Decimal
    bandwidth_gb: Decimal


@dataclass(frozen=True)
class Line:
    """One billed item: ``quantity`` units (commands or GB) beyond ``included``."""

    item: str
    quantity: Decimal
    included: Decimal
    unit_price: Decimal
    unit: str
    cost: Decimal

    @property
    def billed(self) -> Decimal:
        return max(self.quantity - self.included, Decimal(0))


@dataclass(frozen=True)
class Bill:
    plan: str
    fixed: Decimal
    lines: tuple[Line, ...]

    @property
    def total(self) -> Decimal:
        return self.fixed + sum((line.cost for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class Estimate:
    """Both plans for one workload, and which one is cheaper."""

    users: int | None
    usage: Usage
    prices: Prices
    payg: Bill
    pro: Bill
    fits_free_tier: bool
    profile: Profile | None = field(default=None)

    @property
    def cheaper(self) -> str:
        """``"free"``, ``"pay-as-you-go"``, ``"pro"`` or ``"equal"`` (PAYG and Pro tie)."""
        if self.fits_free_tier:
            return "free"
        if self.pro.total < self.payg.total:
            return "pro"
        if self.pro.total > self.payg.total:
            return "pay-as-you-go"
        return "equal"

    @property
    def savings(self) -> Decimal:
        """How much the cheaper of the two paid plans saves over the other each month."""
        return abs(self.pro.total - self.payg.total)

    @property
    def pro_inclusions_value(self) -> Decimal:
        """What Pro's inclusions would cost pay-as-you-go: Pro can only win above its fee."""
        prices = self.prices
        return (
            _money(prices.pro_commands / HUNDRED_K * prices.per_100k_commands)
            + _money(prices.pro_storage_gb * prices.per_gb_storage)
            + _money(prices.pro_bandwidth_gb * prices.per_gb_bandwidth)
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: money as strings with two decimals, quantities as plain numbers."""

        def bill(b: Bill) -> dict[str, object]:
            return {
                "plan": b.plan,
                "fixed": _fmt(b.fixed),
                "lines": [
                    {
                        "item": line.item,
                        "quantity": _num(line.quantity),
                        "included": _num(line.included),
                        "billed": _num(line.billed),
                        "unit": line.unit,
                        "unit_price": str(line.unit_price),
                        "cost": _fmt(line.cost),
                    }
                    for line in b.lines
                ],
                "total": _fmt(b.total),
            }

        out: dict[str, object] = {
            "users": self.users,
            "usage": {
                "commands": _num(self.usage.commands),
                "storage_gb": _num(self.usage.storage_gb),
                "bandwidth_gb": _num(self.usage.bandwidth_gb),
            },
            "pay_as_you_go": bill(self.payg),
            "pro": bill(self.pro),
            "fits_free_tier": self.fits_free_tier,
            "cheaper": self.cheaper,
            "savings": _fmt(self.savings),
            "pro_inclusions_value": _fmt(self.pro_inclusions_value),
        }
        if self.profile is not None:
            out["profile"] = {
                "requests_per_user": _num(self.profile.requests_per_user),
                "commands_per_request": _num(self.profile.commands_per_request),
                "bytes_per_request": _num(self.profile.bytes_per_request),
                "storage_bytes_per_user": _num(self.profile.storage_bytes_per_user),
            }
        return out


def usage_for(users: int, profile: Profile) -> Usage:
    """A month of ``users`` users behaving like ``profile``."""
    if users < 0:
        raise ValidationError(f"users must be zero or more, got {users}")
    n = Decimal(users)
    requests = n * profile.requests_per_user
    return Usage(
        commands=requests * profile.commands_per_request,
        storage_gb=n * profile.storage_bytes_per_user / GB,
        bandwidth_gb=requests * profile.bytes_per_request / GB,
    )


def estimate(
    usage: Usage,
    prices: Prices | None = None,
    *,
    users: int | None = None,
    profile: Profile | None = None,
) -> Estimate:
    """Price ``usage`` on pay-as-you-go and on Pro (overage at pay-as-you-go prices)."""
    p = prices or Prices()
    zero = Decimal(0)

    def lines(inc_cmd: Decimal, inc_sto: Decimal, inc_bw: Decimal) -> tuple[Line, ...]:
        def line(item: str, qty: Decimal, inc: Decimal, price: Decimal, unit: str) -> Line:
            billed = max(qty - inc, zero)
            per_unit = billed / HUNDRED_K if unit == "100k commands" else billed
            return Line(item, qty, inc, price, unit, _money(per_unit * price))

        return (
            line("commands", usage.commands, inc_cmd, p.per_100k_commands, "100k commands"),
            line("storage", usage.storage_gb, inc_sto, p.per_gb_storage, "GB"),
            line("bandwidth", usage.bandwidth_gb, inc_bw, p.per_gb_bandwidth, "GB"),
        )

    payg = Bill("pay-as-you-go", zero, lines(zero, zero, zero))
    pro = Bill(
        "pro",
        _money(p.pro_monthly),
        lines(p.pro_commands, p.pro_storage_gb, p.pro_bandwidth_gb),
    )
    free = usage.commands <= p.free_commands and usage.storage_gb <= p.free_storage_gb
    return Estimate(users, usage, p, payg, pro, free, profile)


def profile_from_stats(data: object, base: Profile | None = None) -> Profile:
    """Commands and bytes per request from what the meter recorded.

    Accepts a dump of ``Meter.as_dict()`` (one request) or a stats document holding such
    counters, at the top level or under ``meter``, ``totals`` or ``stats``; a ``requests``
    count divides them (one request when absent). Bytes sent plus received are billed
    bandwidth; ``billed_commands``, when recorded, wins over ``commands``. Keeps
    ``base``'s figures for whatever the stats do not record.
    """
    base = base or Profile()
    counters = _find_counters(data)
    if counters is None:
        raise ValidationError(
            "the stats hold no 'commands' counter: expected a Meter.as_dict() dump or "
            "/v1/stats output"
        )
    requests = _number(counters.get("requests", 1), "requests")
    if requests <= 0:
        raise ValidationError("the stats record no request ('requests' is 0): nothing to scale")
    # What Upstash bills when the meter knows it (EVAL bills each redis.call it makes),
    # else the commands sent.
    name = "billed_commands" if "billed_commands" in counters else "commands"
    commands = _number(counters[name], name)
    result = Profile(
        requests_per_user=base.requests_per_user,
        commands_per_request=commands / requests,
        bytes_per_request=base.bytes_per_request,
        storage_bytes_per_user=base.storage_bytes_per_user,
    )
    if "bytes_sent" in counters or "bytes_received" in counters:
        sent = _number(counters.get("bytes_sent", 0), "bytes_sent")
        received = _number(counters.get("bytes_received", 0), "bytes_received")
        result = Profile(
            result.requests_per_user,
            result.commands_per_request,
            (sent + received) / requests,
            result.storage_bytes_per_user,
        )
    return result


def totals_from_log(lines: Iterable[str]) -> dict[str, int] | None:
    """Add up the per-request JSON log lines (one per request, with a ``commands`` count).

    Lines may carry a prefix before the JSON object (CloudWatch writes a timestamp and a
    request id first); lines that hold no such object (START, REPORT, plain text) are
    skipped. Returns ``requests``, ``commands`` and the byte counters found, or None.
    """
    totals = {"requests": 0, "commands": 0}
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("msg", "request") != "request":
            continue
        commands = record.get("billed_commands", record.get("commands"))
        if isinstance(commands, bool) or not isinstance(commands, int) or commands < 0:
            continue
        totals["requests"] += 1
        totals["commands"] += commands
        for name in ("bytes_sent", "bytes_received"):
            value = record.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                totals[name] = totals.get(name, 0) + value
    return totals if totals["requests"] else None


def _find_counters(data: object) -> Mapping[str, object] | None:
    if not isinstance(data, Mapping):
        return None
    if "commands" in data and not isinstance(data["commands"], Mapping):
        return data
    for key in ("meter", "totals", "stats"):
        found = _find_counters(data.get(key))
        if found is not None:
            if "requests" not in found and "requests" in data:
                return {**found, "requests": data["requests"]}
            return found
    return None


def _number(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError(f"stats field {name!r} is not a number: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"stats field {name!r} is not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValidationError(f"stats field {name!r} must be a finite number >= 0: {value!r}")
    return number


_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}
_QUANTITY = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> Decimal:
    """``"50KB"`` -> 50000 bytes. Decimal units (kB, MB, GB, TB) and binary (KiB, MiB...)."""
    return _parse(text, _SIZE_UNITS, "a size such as 50KB, 1MB or 2GiB")


def parse_count(text: str) -> Decimal:
    """``"50M"`` -> 50,000,000. Suffixes k, M, G (or B, billions); commas allowed."""
    return _parse(text, _COUNT_UNITS, "a count such as 5, 2.5, 10k or 50M")


def _parse(text: str, units: Mapping[str, int], what: str) -> Decimal:
    match = _QUANTITY.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in units:
        raise ValidationError(f"{text!r} is not {what}")
    return Decimal(match.group(1).replace("_", "").replace(",", "")) * units[unit]


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _fmt(amount: Decimal) -> str:
    return str(_money(amount))


def _num(value: Decimal) -> int | float:
    """A quantity for JSON: an int when whole, else a float (quantities are not money)."""
    return int(value) if value == value.to_integral_value() else float(value)
