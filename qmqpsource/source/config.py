"""One frozen, validated value that describes a run; the CLI builds it, the runner reads it.

SourceConfig checks every value itself, for the CLI and for any other caller alike;
its errors name each value by qmqp-source's option for it (OPTIONS), so that the
command line's users read their own words.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields
from typing import Any

from qmqpsource import values
from qmqpsource.addresses import Family

__all__ = ["OPTIONS", "ConfigError", "SourceConfig"]

# The option that sets each checked field, as the errors name it. reply_limit has none.
OPTIONS = {
    "sessions": "-s",
    "messages": "-m",
    "length": "-l",
    "recipients": "-r",
    "connect_attempts": "-C",
    "connect_limit": "--connect-limit",
    "reply_limit": "reply_limit",
    "fixed_delay": "-w",
    "random_delay": "-R",
    "timeout": "--timeout",
    "duration": "--duration",
    "rate": "--rate",
}
_COUNTS = ("connect_attempts", "length", "messages", "recipients", "sessions", "connect_limit",
           "reply_limit")


class ConfigError(values.ValueProblem):
    """Options that do not make a run; ``str()`` is one line for the user."""


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
    message_file: str | None = None
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
        try:
            self._check()
        except values.ValueProblem as exc:
            raise ConfigError(str(exc)) from None

    def _check(self) -> None:
        # In the order that the command line has always checked its options.
        wait, random_wait = OPTIONS["fixed_delay"], OPTIONS["random_delay"]
        if self.fixed_delay and self.random_delay:
            raise ConfigError(f"{wait} and {random_wait} exclude each other")
        values.seconds(OPTIONS["timeout"], self.timeout)
        if self.duration is not None:
            values.seconds(OPTIONS["duration"], self.duration)
        if self.rate is not None and (not math.isfinite(self.rate) or self.rate <= 0):
            raise ConfigError(f"{OPTIONS['rate']} must be a positive number of messages "
                              f"per second, not {self.rate}")
        for name in _COUNTS:
            values.count(OPTIONS[name], getattr(self, name))
        if self.fixed_delay != 0:  # 0: no wait between messages
            values.seconds(wait, self.fixed_delay)
        if self.random_delay != 0:
            values.seconds(random_wait, self.random_delay)
        if not 0 <= self.shard_index < self.shard_count:
            raise ConfigError("shard index must be in 0..count-1")
        if not self.target:
            raise ConfigError("missing target")

    def as_dict(self) -> dict[str, Any]:
        """Every option, for reports; enums as their values."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, enum.Enum) else value
        return out
