"""qmqp-sink's server: listeners, connections, faults, counts, Maildir.

The names users import, from their modules: ``from qmqpsource.sink import Sink, SinkConfig``.
"""

from qmqpsource.sink.config import (
    DEFAULT_BACKLOG,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_SIZE,
    DEFAULT_TIMEOUT,
    PROG,
    SinkConfig,
)
from qmqpsource.sink.faults import Faults, check_delay, check_rate
from qmqpsource.sink.listeners import ListenError, SinkError, open_listeners, parse_endpoint
from qmqpsource.sink.server import Sink
from qmqpsource.sink.stats import SinkStats, format_summary

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "PROG",
    "Faults",
    "ListenError",
    "Sink",
    "SinkConfig",
    "SinkError",
    "SinkStats",
    "check_delay",
    "check_rate",
    "format_summary",
    "open_listeners",
    "parse_endpoint",
]
