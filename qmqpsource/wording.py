"""How our lines say things: counts in words ('1 message'), peer bytes made printable."""

from __future__ import annotations

__all__ = ["counted", "one_line", "printable"]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and the noun, singular for exactly one: ``counted(1, "message")``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def printable(data: bytes) -> str:
    """A peer's bytes for one line of output: no raw control byte reaches the terminal."""
    return one_line(data.decode("utf-8", "backslashreplace"))


def one_line(text: str) -> str:
    """A line of ours that quotes what a user gave (a target, a path, a hostname): its
    control characters escaped, so that it stays one line and forges none."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
