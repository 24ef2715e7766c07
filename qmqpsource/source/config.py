"""One frozen, validated value that describes a run; the CLI builds it, the runner reads it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any

from qmqpsource.addresses import Family

__all__ = ["ConfigError", "SourceConfig"]



class ConfigError(ValueError):
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
    counter: bool = False
    verbose: int = 0
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
        for name in ("sessions", "messages", "length", "recipients", "connect_attempts",
                     "connect_limit", "reply_limit"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive number")
        if self.fixed_delay < 0 or self.random_delay < 0:
            raise ConfigError("delays must not be negative")
        if self.fixed_delay > 0 and self.random_delay > 0:
            raise ConfigError("-w and -R exclude each other")
        if not self.timeout > 0:
            raise ConfigError("timeout must be positive")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError("duration must be positive")
        if self.rate is not None and not self.rate > 0:
            raise ConfigError("rate must be positive")
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
