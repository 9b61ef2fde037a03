"""INCRBYFLOAT and HINCRBYFLOAT on fakeredis, with Redis's arithmetic and text.

Redis adds in C's ``long double`` (x87 extended precision: a 64-bit significand) and
writes the sum with 17 decimals, trailing zeros dropped, so ``0.1`` then ``0.2`` makes
``0.3``. fakeredis adds Python floats and writes 17 significant digits, giving
``0.10000000000000001`` and ``0.30000000000000004``. These redo the sum exactly as
Redis does, with fractions: each operand rounded to the nearest long double, the sum
rounded again, then printed. HINCRBYFLOAT also answers Redis's texts for a field that
is not a number and for an infinite increment.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from fakeredis._command_args_parsing import Float
from fakeredis._commands import Key
from fakeredis._core import CommandItem
from fakeredis._helpers import SimpleError
from fakeredis.model import Hash

from continuum.emulator.extension import command

_SIGNIFICAND = 64
_LARGEST = 4932  # decimal exponent of the largest long double, about 1.19e4932


def _parse(text: bytes) -> Fraction | None:
    """The exact value of a decimal string, or None if it is not a finite number a
    long double holds (fakeredis has already refused what Redis refuses)."""
    try:
        value = Decimal(text.decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        return None
    if not value.is_finite() or (value and value.adjusted() > _LARGEST):
        return None
    if value and value.adjusted() < -_LARGEST:
        return Fraction(0)  # below every long double: strtold gives zero
    return Fraction(value)


def _rounded(value: Fraction) -> Fraction:
    """The nearest long double (ties to even)."""
    if not value:
        return value
    magnitude = abs(value)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    shift = _SIGNIFICAND - 1 - exponent
    return Fraction(round(value * Fraction(2) ** shift)) / Fraction(2) ** shift


def _text(value: Fraction) -> bytes:
    """As Redis prints it: ``%.17Lf`` with trailing zeros and a bare point dropped."""
    units = round(value * 10**17)
    digits = f"{abs(units):018d}"
    text = f"{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    return ("-" + text if units < 0 else text).encode()


def _infinite(text: bytes) -> bool:
    try:
        return Decimal(text.decode("ascii")).is_infinite()
    except (InvalidOperation, UnicodeDecodeError):
        return False


def add(current: bytes, increment: bytes) -> bytes | None:
    """``current + increment`` as Redis computes and writes it (None: not computable
    here, keep fakeredis's answer)."""
    left, right = _parse(current), _parse(increment)
    if left is None or right is None:
        return None
    return _text(_rounded(_rounded(left) + _rounded(right)))


class NumberCommands:
    """Mixed into the emulator's fakeredis socket (see ``continuum.emulator.fake``)."""

    @command("incrbyfloat", (Key(bytes), bytes))
    def incrbyfloat(self, key: CommandItem, amount: bytes) -> Any:
        current = key.get(b"0")
        increment = Float.decode(amount)
        if _infinite(current):  # a stored "inf": fakeredis would keep adding to it
            raise SimpleError("ERR increment would produce NaN or Infinity")
        answer = super().incrbyfloat(key, increment)  # type: ignore[misc]
        exact = add(current, amount)
        if exact is None:
            return answer
        key.update(exact)
        return exact

    @command("hincrbyfloat", (Key(Hash), bytes, bytes))
    def hincrbyfloat(self, key: CommandItem, field: bytes, amount: bytes) -> Any:
        current = key.value.get(field, b"0")
        increment = Float.decode(amount)
        if increment in (float("inf"), float("-inf")):
            raise SimpleError("ERR value is NaN or Infinity")
        Float.decode(current, decode_error="ERR hash value is not a float")
        answer = super().hincrbyfloat(key, field, amount)  # type: ignore[misc]
        exact = add(current, amount)
        if exact is None:
            return answer
        key.value.update({field: exact}, clear_expiration=False)
        return exact
