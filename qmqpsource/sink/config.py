"""What one qmqp-sink run is asked to do: SinkConfig and its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from qmqpsource.addresses import Family
from qmqpsource.sink.faults import Faults

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "PROG",
    "SinkConfig",
]

PROG = "qmqp-sink"
DEFAULT_BACKLOG = 100
# Postfix's message_size_limit; here it bounds the whole request netstring.
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
# qmqpd's default qmqpd_timeout.
DEFAULT_TIMEOUT = 300.0
# Past this many open connections, new ones wait in the listen queue: memory
# stays under max_connections * (max_size + RECV_SIZE) whatever clients do.
DEFAULT_MAX_CONNECTIONS = 1024


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """Every setting of one sink; the command builds it from its options, tests directly."""

    endpoint: str
    backlog: int = DEFAULT_BACKLOG
    family: Family = Family.ANY
    max_size: int = DEFAULT_MAX_SIZE
    timeout: float = DEFAULT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    faults: Faults = field(default_factory=Faults)
    maildir: str | None = None
    counter: bool = False
    verbose: int = 0

    def __post_init__(self) -> None:
        if self.backlog <= 0:
            raise ValueError("backlog must be a positive number")
        if self.max_size <= 0:
            raise ValueError("--max-size must be a positive number of bytes")
        if not self.timeout > 0:
            raise ValueError("--timeout must be a positive number of seconds")
        if self.max_connections <= 0:
            raise ValueError("--max-connections must be a positive number")
