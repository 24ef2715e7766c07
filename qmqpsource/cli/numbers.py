"""Numbers as the three commands take them: ASCII digits, and nothing Python adds.

Python's int() and float(), which typer uses as they are, take more than a command
line should: '٣' (an Arabic-Indic three), '1_000', ' 5', and for float() also 'nan',
'inf' and '1e400' (infinity). Here a whole number is [+-]DIGITS, and any other number
is written in decimal or exponent notation (2, 0.5, .5, 1e-3, 2.5E+2), finite.

``whole`` and ``number`` are typer parsers: what they refuse gets click's own words,
which cli/common.usage_text turns into ours (``-m must be a whole number, not '٣'``).
"""

from __future__ import annotations

import math

import typer

__all__ = ["number", "parse_number", "parse_whole", "whole"]

_NUMBER_CHARACTERS = frozenset("0123456789+-.eE")


def parse_whole(text: str) -> int | None:
    """``text`` as an int if it is [+-]DIGITS in ASCII; else None."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        return None


def parse_number(text: str) -> float | None:
    """``text`` as a float if it is a finite number in decimal or exponent notation;
    else None."""
    if not text or not _NUMBER_CHARACTERS.issuperset(text):
        return None  # no letters but e: no nan, no inf, no hex; no '_', no other digits
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def whole(text: str | int) -> int:
    """A typer parser of whole numbers (a default comes already an int)."""
    if isinstance(text, int):
        return text
    value = parse_whole(text)
    if value is None:
        raise typer.BadParameter(f"{text!r} is not a valid integer.")
    return value


def number(text: str | float) -> float:
    """A typer parser of numbers (a default comes already a number)."""
    if isinstance(text, int | float):
        return float(text)
    value = parse_number(text)
    if value is None:
        raise typer.BadParameter(f"{text!r} is not a valid float.")
    return value
