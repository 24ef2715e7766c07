"""qmqp-sink --ready-file: where the sink listens, in a file that appears whole once it does.

A script starts ``qmqp-sink --ready-file PATH 127.0.0.1:0 100 &``, waits for PATH and
reads the targets in it, one a line, port 0 resolved (``127.0.0.1:PORT``, ``[::1]:PORT``,
``unix:PATH``): it never has to read the sink's stderr, whose pipe, left unread, once
froze the sink.

While the file exists, a sink listens at its addresses: a file that an earlier run
left at PATH is removed at the start, once the path is checked (a missing folder is a
fatal line before the sink listens), and ours is removed at exit. It is written to a
temporary file beside PATH and renamed into place, so that a reader never sees half.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

from qmqpsource.cli.outfile import OutputError, temporary_beside, write_all

__all__ = ["ReadyFile"]


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class ReadyFile:
    """The file of one sink run: ``at()`` it at the start, ``write()`` once listening,
    ``remove()`` at exit. Every failure is an OutputError of one line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._written: bytes | None = None  # what we wrote there

    @classmethod
    def at(cls, path: str) -> ReadyFile:
        """The file at ``path``, checked now; an earlier run's file there is removed."""
        if not path:
            raise OutputError("wants a path, not ''")
        try:
            info: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise OutputError(f"open {path}: {_why(exc)}") from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise OutputError(f"open {path}: {os.strerror(errno.EISDIR)}")
        if info is not None and not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            # Renaming over a device or FIFO (/dev/null) would remove what others use:
            # only a file or a symlink is replaced.
            raise OutputError(f"open {path}: not a regular file")
        with temporary_beside(path, path, None):
            pass  # the folder takes a new file: the rename once listening will work
        if info is not None:
            try:
                os.unlink(path)  # an earlier run's: its addresses are no longer true
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise OutputError(f"remove {path}: {_why(exc)}") from None
        return cls(path)

    def write(self, addresses: Sequence[str]) -> None:
        """Put the addresses at the path, one a line, whole."""
        text = "".join(f"{address}\n" for address in addresses)
        data = text.encode("utf-8", "surrogateescape")  # a UNIX path as it is on disk
        with temporary_beside(self.path, self.path, None) as (fd, temporary):
            # No fsync: the file tells a running sink's address, and does not outlive it.
            try:
                write_all(fd, data)
            except OSError as exc:
                raise OutputError(f"write {self.path}: {_why(exc)}") from None
            try:
                os.replace(temporary, self.path)
            except OSError as exc:
                raise OutputError(f"rename to {self.path}: {_why(exc)}") from None
            self._written = data

    def remove(self) -> None:
        """At exit: remove the file, if it still names our addresses (an inode number
        would not do: a file written since may get ours again)."""
        if self._written is None:
            return
        try:
            if not stat.S_ISREG(os.lstat(self.path).st_mode):
                return  # not ours (and a FIFO would block the read)
            with open(self.path, "rb") as file:
                ours = file.read(len(self._written) + 1) == self._written
            if ours:
                os.unlink(self.path)
        except OSError:
            pass  # gone already, or not ours to remove: nothing to undo
        self._written = None
