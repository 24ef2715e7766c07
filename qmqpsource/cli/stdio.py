"""Standard input and output that never change what a command does: closed, failing or gone.

A command started with ``>&-`` or ``2>&-`` finds no stream at all (Python sets
``sys.stdout`` or ``sys.stderr`` to None), and the next socket it opens would take the
free descriptor, so that a stray write could land in a connection. A stream may also
fail later: a pipe whose reader left (``| head -c1``), a full disk, a terminal that hung
up. None of that may end a run or change its exit status; the line that cannot be
written is dropped. So each command's own process calls ``guard()`` first: a closed
descriptor 0, 1 or 2 is opened on /dev/null (as Postfix's programs do), and stdout and
stderr become streams that drop what they cannot write.

What a command must not lose (``--json -``) does not go through these streams: it asks
``failed()`` and writes the descriptor itself (see outfile.py).
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, TextIO

__all__ = ["Forgiving", "closed_at_start", "failed", "guard"]

_closed: set[int] = set()  # descriptors that were closed when the command started


class Forgiving:
    """A text stream whose write and flush never raise; once one fails, the rest is dropped.

    After the first failure the descriptor is pointed at /dev/null, so that what the
    wrapped stream still holds in its buffer, and Python's own flush at the exit, go
    nowhere quietly (a flush that fails there would print a traceback and exit 120).
    """

    def __init__(self, stream: TextIO, fd: int) -> None:
        self._stream = stream
        self._fd = fd
        self.failure: str | None = None  # why the first write that failed did

    def write(self, text: str) -> int:
        if self.failure is not None:
            return len(text)
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as exc:
            self._fail(exc)
            return len(text)

    def flush(self) -> None:
        if self.failure is not None:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def _fail(self, exc: OSError | ValueError) -> None:
        self.failure = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        _point_at_devnull(self._fd)

    def __getattr__(self, name: str) -> Any:
        # isatty, fileno, encoding, buffer...: the wrapped stream's.
        return getattr(self._stream, name)


def _point_at_devnull(fd: int) -> None:
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    try:
        if null != fd:
            os.dup2(null, fd)
    except OSError:
        pass
    finally:
        if null != fd:
            os.close(null)


def _reopen_closed(fd: int) -> bool:
    """Open /dev/null on ``fd`` if it is closed; whether it was."""
    try:
        os.fstat(fd)
    except OSError:
        _point_at_devnull(fd)
        return True
    return False


def guard() -> None:
    """Make stdin, stdout and stderr safe for the rest of this process (see the module)."""
    for fd in (0, 1, 2):
        if _reopen_closed(fd):
            _closed.add(fd)
    if sys.stdin is None:
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if isinstance(stream, Forgiving):
            continue
        if stream is None:
            stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), line_buffering=True)
        setattr(sys, name, Forgiving(stream, fd))


def closed_at_start(fd: int) -> bool:
    """Whether descriptor ``fd`` (0, 1, 2) was closed when the command started."""
    return fd in _closed


def failed(stream: object) -> str | None:
    """Why ``stream`` (sys.stdout, say) drops what it is given, or None if it does not."""
    return stream.failure if isinstance(stream, Forgiving) else None
