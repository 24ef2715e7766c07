"""The loggers the library writes to: it never prints. The commands attach handlers that
print Postfix's words (cli/logs.py); a program that uses the API sees nothing unless it
configures logging for ``qmqpsource``.

Each kind of line has a logger of its own, so that a handler (or a level) can pick
exactly the lines it wants, and so that a run can ask once, before its first message,
whether anyone wants a line per message (``wants``): no record is made otherwise.
"""

from __future__ import annotations

import logging

__all__ = [
    "ROOT",
    "SINK",
    "SINK_REPLIES",
    "SINK_REQUESTS",
    "SOURCE",
    "SOURCE_ACCEPTED",
    "SOURCE_CONNECTIONS",
    "SOURCE_FAILURES",
    "SOURCE_REPLIES",
    "wants",
]

ROOT = "qmqpsource"
# The load: warnings (a connect refused and tried again).
SOURCE = "qmqpsource.source"
# INFO: a message that failed in a run that keeps going (-A); qmqp-source -v shows them.
SOURCE_FAILURES = "qmqpsource.source.failures"
# DEBUG: each reply as the server sent it (qmqp-source -v: "<< REPLY").
SOURCE_REPLIES = "qmqpsource.source.replies"
# DEBUG: each connection as it comes up (qmqp-source -vv).
SOURCE_CONNECTIONS = "qmqpsource.source.connections"
# DEBUG: the running count of accepted messages, one record each (qmqp-source -c).
SOURCE_ACCEPTED = "qmqpsource.source.accepted"
# The sink: WARNING for trouble, INFO for where it listens.
SINK = "qmqpsource.sink"
# INFO: one line per connection (qmqp-sink -v); DEBUG: those lines name the sender (-vv).
SINK_REQUESTS = "qmqpsource.sink.requests"
# DEBUG: the running count of replies, one record each (qmqp-sink -c).
SINK_REPLIES = "qmqpsource.sink.replies"

# A library's manners: without this, Python's last-resort handler would print our
# warnings on stderr in programs that never configured logging.
logging.getLogger(ROOT).addHandler(logging.NullHandler())


def wants(name: str, level: int = logging.DEBUG) -> bool:
    """Whether a record of ``level`` on logger ``name`` would reach any handler."""
    return logging.getLogger(name).isEnabledFor(level)
