"""What the commands print of the library's log records (logs.py): Postfix's words.

    qmqp-source: warning: connect to 127.0.0.1:628: Connection refused
    << K ok                                    (-v: each reply)
    qmqp-sink: 127.0.0.1:40512: K 2.0.0 Ok...  (-v: each connection)
    123\r                                      (-c: the running count, on stdout)

The command picks the lines by the levels it sets (-v, -vv, -c) for the time of its run,
and puts the loggers back as they were after: tests run commands in-process.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from qmqpsource import logs
from qmqpsource.wording import one_line

__all__ = ["CommandLines", "printing"]

# Records that are counts: written as "N\r" on stdout, as Postfix's -c does.
_COUNTS = frozenset({logs.SOURCE_ACCEPTED, logs.SINK_REPLIES})
# Records that are warnings whatever their level: a failed message of a -A run (-v).
_WARNINGS = frozenset({logs.SOURCE_FAILURES})
_OFF = logging.CRITICAL + 1


class CommandLines(logging.Handler):
    """Each record as the command's line; ``err``/``out`` looked up at each line (a
    progress bar may stand in for stderr while it is drawn)."""

    def __init__(self, prog: str, err: Callable[[], TextIO], out: Callable[[], TextIO]) -> None:
        super().__init__()
        self.prog = prog
        self.err = err
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            name = record.name
            text = record.getMessage()
            if name in _COUNTS:
                stream, line = self.out(), f"{text}\r"
            elif name == logs.SOURCE_REPLIES:
                stream, line = self.err(), f"<< {text}\n"
            else:
                stream, line = self.err(), self._line(record, text)
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or failing stderr must not take the run down (see stdio.py)

    def _line(self, record: logging.LogRecord, text: str) -> str:
        warning = record.levelno >= logging.WARNING or record.name in _WARNINGS
        client = getattr(record, "client", None)
        head = f"{client}: " if client else ""
        return f"{self.prog}: {head}{'warning: ' if warning else ''}{one_line(text)}\n"


def _levels(verbose: int, counter: bool) -> dict[str, int]:
    """The level of each logger for a command's -v count and -c."""
    return {
        logs.SOURCE: logging.WARNING,
        logs.SOURCE_FAILURES: logging.INFO if verbose else _OFF,
        logs.SOURCE_REPLIES: logging.DEBUG if verbose else _OFF,
        logs.SOURCE_CONNECTIONS: logging.DEBUG if verbose > 1 else _OFF,
        logs.SOURCE_ACCEPTED: logging.DEBUG if counter else _OFF,
        logs.SINK: logging.INFO if verbose else logging.WARNING,
        logs.SINK_REQUESTS: (logging.DEBUG if verbose > 1 else logging.INFO if verbose
                             else logging.WARNING),
        logs.SINK_REPLIES: logging.DEBUG if counter else _OFF,
    }


@contextlib.contextmanager
def printing(
    prog: str,
    *,
    verbose: int = 0,
    counter: bool = False,
    err: Callable[[], TextIO] = lambda: sys.stderr,
    out: Callable[[], TextIO] = lambda: sys.stdout,
) -> Iterator[CommandLines]:
    """Print the library's lines as ``prog``'s while the block runs."""
    root = logging.getLogger(logs.ROOT)
    handler = CommandLines(prog, err, out)
    saved = [(root, root.handlers[:], root.propagate, root.level)]
    levels = _levels(verbose, counter)
    for name in levels:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate, logger.level))
    root.handlers = [handler]
    root.propagate = False  # the command's lines only, whatever the host configured
    root.setLevel(logging.DEBUG)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield handler
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
