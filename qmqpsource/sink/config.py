"""What one qmqp-sink run is asked to do: SinkConfig, its defaults, and the one check of
each of its values (qmqpsource.values' counts and seconds, in the options' own words)."""

from __future__ import annotations

from dataclasses import dataclass, field

from qmqpsource import SINK_PROG as PROG
from qmqpsource import values
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

    def __post_init__(self) -> None:
        # Raises values.ValueProblem, which the command shows as a usage error.
        values.count("backlog", self.backlog)
        if self.max_size <= 0:
            raise values.ValueProblem(
                f"--max-size must be a positive number of bytes, not {self.max_size}")
        values.count("--max-size", self.max_size)
        values.count("--max-connections", self.max_connections)
        values.seconds("--timeout", self.timeout)
