"""One frozen, validated value that describes a run; the CLI builds it, the runner reads it.

SourceConfig checks every value itself (type and bounds, qmqpsource.values), for the
CLI and for any other caller alike. Its errors (errors.ConfigError) name the field,
``sessions must be at least 1, not 0``; qmqp-source says its option for it instead
(OPTIONS), ``-s must be at least 1, not 0``.
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from qmqpsource import values
from qmqpsource.addresses import Family
from qmqpsource.errors import ConfigError
from qmqpsource.source.message import check_myhostname

__all__ = ["OPTIONS", "ConfigError", "SourceConfig"]

# qmqp-source's option for each field, as its errors name them. reply_limit has none.
OPTIONS = {
    "sessions": "-s",
    "messages": "-m",
    "length": "-l",
    "recipients": "-r",
    "sender": "-f",
    "recipient": "-t",
    "myhostname": "-M",
    "connect_attempts": "-C",
    "connect_limit": "--connect-limit",
    "fixed_delay": "-w",
    "random_delay": "-R",
    "timeout": "--timeout",
    "message_file": "-F",
    "subject": "-S",
    "duration": "--duration",
    "rate": "--rate",
}


def _hostname(name: str, value: object) -> str:
    checked = values.text(name, value)
    check_myhostname(checked)  # Postfix's -M check, in Postfix's words
    return checked


def _wait(name: str, value: object) -> float:
    """-w or -R: 0 is no wait between messages."""
    checked = values.number(name, value, "a number of seconds")
    return 0.0 if checked == 0 else values.seconds(name, value)


def _subject(name: str, value: object) -> str:
    """-S: one header line; a line break in it would start headers of its own (Bcc:)."""
    checked = values.text(name, value)
    if "\r" in checked or "\n" in checked:
        raise values.problem(name, f"must be one line, not {checked!r}")
    return checked


def _rate(name: str, value: object) -> float:
    checked = values.number(name, value, "a number of messages per second")
    if not math.isfinite(checked) or checked <= 0:
        raise values.problem(name, f"must be a positive number of messages per second, "
                                   f"not {value}")
    if 1 / checked > values.MAX_SECONDS:  # a gap of a year or more (5e-324: infinite)
        raise values.problem(name, f"must be at least one message in "
                                   f"{values.MAX_SECONDS:.0f} seconds, not {value}")
    return checked


# Every checked field, in the order the command line has always checked its options.
_CHECKS: tuple[tuple[str, values.Check], ...] = (
    ("target", values.address),
    ("timeout", values.seconds),
    ("duration", values.seconds),
    ("rate", _rate),
    *((name, values.count) for name in ("connect_attempts", "length", "messages", "recipients",
                                        "sessions", "connect_limit", "reply_limit")),
    ("fixed_delay", _wait),
    ("random_delay", _wait),
    ("sender", values.text),
    ("recipient", values.text),
    ("myhostname", _hostname),
    ("family", partial(values.member, of=Family)),
    ("keep_going", values.flag),
    ("message_file", values.path),
    ("subject", _subject),
    ("number_recipients", values.flag),
    ("unique_message_id", values.flag),
    ("shard_count", values.count),
    ("shard_index", partial(values.count, least=0)),
)
_OPTIONAL = frozenset({"sender", "recipient", "myhostname", "message_file", "subject",
                       "duration", "rate"})


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Every option of one qmqp-source run (of this process's share, with --shard)."""

    target: str
    sessions: int = 1
    messages: int = 1
    length: int = 1024
    recipients: int = 1
    sender: str | None = None
    recipient: str | None = None
    myhostname: str | None = None
    family: Family = Family.ANY
    connect_attempts: int = 1
    connect_limit: int = 1
    fixed_delay: float = 0.0
    random_delay: float = 0.0
    timeout: float = 300.0
    reply_limit: int = 10240
    keep_going: bool = False
    # Message content and numbering.
    # A path, kept as a str (so that as_dict stays JSON); os.PathLike is taken too.
    message_file: str | os.PathLike[str] | None = None
    subject: str | None = None
    number_recipients: bool = False
    unique_message_id: bool = False
    # Load shape: stop after --duration seconds; open-loop arrivals at --rate msg/s.
    duration: float | None = None
    rate: float | None = None
    # This process's share of a larger run (--shard I/N, --workers).
    shard_index: int = 0
    shard_count: int = 1

    def __post_init__(self) -> None:
        values.check_fields(self, _CHECKS, _OPTIONAL)
        if self.fixed_delay and self.random_delay:
            raise ConfigError("fixed_delay and random_delay exclude each other")
        if self.rate is not None and (self.fixed_delay or self.random_delay):
            # An open loop starts messages on a schedule; a session's own pause between
            # them would make the rate a lie (and -R's random pauses, a second schedule).
            raise ConfigError("rate excludes fixed_delay and random_delay: an open loop "
                              "runs on its schedule, without pauses")
        if self.shard_index >= self.shard_count:
            raise ConfigError(f"shard_index must be less than shard_count "
                              f"({self.shard_count}), not {self.shard_index}",
                              field="shard_index")

    def as_dict(self) -> dict[str, Any]:
        """Every option, for reports; enums as their values."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, enum.Enum) else value
        return out
