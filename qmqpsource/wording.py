"""Counts in words: '1 message', '2 messages'."""

from __future__ import annotations

__all__ = ["counted"]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and the noun, singular for exactly one: ``counted(1, "message")``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
