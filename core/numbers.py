"""Whole numbers written by someone else: headers, JSON fields, environment variables.

``str.isdigit`` accepts "²", "①" and other Unicode digits that ``int`` refuses, and ``int``
happily parses thousands of digits; hostile input then becomes a 500 or a slow request.
``parse_decimal`` accepts only what a person means by a number: ASCII digits, bounded.
"""

from __future__ import annotations

import re

__all__ = ["parse_decimal"]

_DECIMAL = re.compile(r"[0-9]{1,18}", re.ASCII)


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
