"""Whole numbers written by someone else: headers, JSON fields, environment variables.

``str.isdigit`` accepts "²", "①" and other Unicode digits that ``int`` refuses, and ``int``
happily parses thousands of digits; hostile input then becomes a 500 or a slow request.
``parse_decimal`` accepts only what a person means by a number: ASCII digits, bounded;
``parse_seconds`` the same with an optional decimal fraction (``1.5``, ``0.25``).
"""

from __future__ import annotations

import re

__all__ = ["parse_decimal", "parse_seconds"]

_DECIMAL = re.compile(r"[0-9]{1,18}", re.ASCII)
_SECONDS = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?", re.ASCII)


def parse_decimal(text: str | bytes) -> int | None:
    """The non-negative integer ``text`` spells in 1 to 18 ASCII digits (surrounding
    white space allowed), or None for anything else."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    text = text.strip()
    return int(text) if _DECIMAL.fullmatch(text) else None


def parse_seconds(text: str) -> float | None:
    """The non-negative number of seconds ``text`` spells in ASCII digits with an optional
    fraction (``2``, ``0.25``; no sign, exponent, ``inf`` or ``nan``), or None."""
    text = text.strip()
    return float(text) if _SECONDS.fullmatch(text) else None
