"""Values as ``LocalCache`` sees them: argument bytes, Redis's number parsing and texts.

Shared by the command modules so every command parses integers and floats, and formats
doubles, exactly the way Redis does (strict ``string2ll`` rules, shortest float text).
"""

from __future__ import annotations

import math
from typing import TypeAlias

from continuum.errors import CommandError, ValidationError

__all__ = [
    "NOT_FLOAT",
    "NOT_INT",
    "SYNTAX",
    "WRONGTYPE",
    "Arg",
    "Reply",
    "format_float",
    "in_int64",
    "parse_float",
    "parse_int",
    "to_arg",
    "upper",
]

Reply: TypeAlias = "int | str | bytes | list[Reply] | None"
Arg: TypeAlias = "str | bytes | int | float"

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
_INT64 = (-(2**63), 2**63 - 1)


def to_arg(value: Arg | bytearray | memoryview) -> bytes:
    """One command argument as Redis sees it (str as UTF-8, numbers as their text)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                "keys and arguments must be valid Unicode text (no lone surrogates)"
            ) from None
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise CommandError(f"ERR unsupported argument type {type(value).__name__}")


def format_float(value: float) -> bytes:
    """Redis's reply text for a double: shortest form, integers without a ``.0``."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value.is_integer() and abs(value) < 1e17:
        return str(int(value)).encode()
    return repr(value).encode()


def parse_int(raw: bytes, error: str = NOT_INT) -> int:
    """Redis's strict integer parsing: no spaces, no ``+``, no leading zeros, 64-bit."""
    if len(raw) < 19 and raw.isdigit() and (raw[0] != 0x30 or len(raw) == 1):
        return int(raw)  # the usual case: a plain non-negative number (bytes.isdigit is ASCII)
    digits = raw[1:] if raw[:1] == b"-" else raw
    if (
        not digits
        or len(raw) > 20
        or not (digits.isdigit() and digits.isascii())
        or (len(digits) > 1 and digits[:1] == b"0")
    ):
        raise CommandError(error)
    value = int(raw)
    if not in_int64(value) or raw == b"-0":
        raise CommandError(error)
    return value


def parse_float(raw: bytes, error: str = NOT_FLOAT) -> float:
    if not raw or raw != raw.strip() or b"_" in raw:
        raise CommandError(error)
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(error) from None
    if math.isnan(value):
        raise CommandError(error)
    return value


def upper(raw: bytes) -> bytes:
    return raw.upper()


def in_int64(value: int) -> bool:
    return _INT64[0] <= value <= _INT64[1]
