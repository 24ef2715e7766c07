"""What one qmqp-sink run is asked to do: SinkConfig, its defaults, and the one check of
each of its values (qmqpsource.values), whose errors name the field; qmqp-sink says
its option for each instead (OPTIONS)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial

from qmqpsource import SINK_PROG as PROG
from qmqpsource import values
from qmqpsource.addresses import Family
from qmqpsource.sink.faults import Faults

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "OPTIONS",
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

# qmqp-sink's option (or operand) for each field of SinkConfig and Faults.
OPTIONS = {
    "endpoint": "endpoint",
    "backlog": "backlog",
    "max_size": "--max-size",
    "timeout": "--timeout",
    "max_connections": "--max-connections",
    "maildir": "--maildir",
    "drop": "--drop",
    "hang": "--hang",
    "tempfail": "--tempfail",
    "reject": "--reject",
    "delay_min": "--delay",
    "delay_max": "--delay",
    "seed": "--seed",
}


def _faults(name: str, value: object) -> Faults:
    if not isinstance(value, Faults):
        raise values.problem(name, f"must be a Faults, not {value!r}")
    return value


_CHECKS: tuple[tuple[str, values.Check], ...] = (
    ("endpoint", values.address),
    ("backlog", values.count),
    ("family", partial(values.member, of=Family)),
    ("max_size", values.count),
    ("timeout", values.seconds),
    ("max_connections", values.count),
    ("faults", _faults),
    ("maildir", values.path),
)


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
    # A path, kept as a str (the --json summary shows it); os.PathLike is taken too.
    maildir: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        values.check_fields(self, _CHECKS, optional={"maildir"})
