"""qmqp-sink --ready-file: where the sink listens, in a file that appears whole once it does.

A script starts ``qmqp-sink --ready-file PATH 127.0.0.1:0 100 &``, waits for PATH and
reads the targets in it, one a line, port 0 resolved (``127.0.0.1:PORT``, ``[::1]:PORT``,
``unix:PATH``): it never has to read the sink's stderr, whose pipe, left unread, once
froze the sink.

The path is checked at the start (a missing folder is a fatal line before the sink
listens), and the file is written once the sink listens: to a temporary file beside
it, renamed into place, so that a reader never sees half. A symlink is followed, as
--json's is (cli/outfile.py): its target is written, the link is left alone. A file
that is there already (an earlier run's, or a live sink's) is left as it is until
this sink listens and replaces it; at exit, the file is removed only if it is still
the one this process wrote. A device or FIFO is refused: it is not ours to replace.
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

    def __init__(self, path: str, target: str) -> None:
        self.path = path  # as given, for messages
        self._target = target  # what gets written: the path, through any symlinks
        self._written: tuple[int, int, bytes] | None = None  # our file: device, inode, text

    @classmethod
    def at(cls, path: str) -> ReadyFile:
        """The file at ``path``, checked now; nothing there is changed yet."""
        if not path:
            raise OutputError("wants a path, not ''")
        try:
            info: os.stat_result | None = os.stat(path)  # through symlinks
        except FileNotFoundError:
            info = None  # nothing yet (or a link to nothing yet): ours to create
        except OSError as exc:
            raise OutputError(f"open {path}: {_why(exc)}") from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise OutputError(f"open {path}: {os.strerror(errno.EISDIR)}")
        if info is not None and not stat.S_ISREG(info.st_mode):
            # Renaming over a device or FIFO (/dev/null, /dev/stdout) would remove what
            # others use: only a plain file is replaced.
            raise OutputError(f"open {path}: not a regular file")
        target = os.path.realpath(path)
        with temporary_beside(target, path, None):
            pass  # the folder takes a new file: the rename once listening will work
        return cls(path, target)

    def write(self, addresses: Sequence[str]) -> None:
        """Put the addresses at the path, one a line, whole."""
        text = "".join(f"{address}\n" for address in addresses)
        data = text.encode("utf-8", "surrogateescape")  # a UNIX path as it is on disk
        with temporary_beside(self._target, self.path, None) as (fd, temporary):
            # No fsync: the file tells a running sink's address, and does not outlive it.
            try:
                write_all(fd, data)
                info = os.fstat(fd)
            except OSError as exc:
                raise OutputError(f"write {self.path}: {_why(exc)}") from None
            try:
                os.replace(temporary, self._target)
            except OSError as exc:
                raise OutputError(f"rename to {self.path}: {_why(exc)}") from None
            self._written = (info.st_dev, info.st_ino, data)

    def remove(self) -> None:
        """At exit: remove the file if it is still the one we wrote, with our text (its
        inode alone would not do: a file written since may be given ours again)."""
        if self._written is None:
            return
        device, inode, data = self._written
        self._written = None
        try:
            info = os.lstat(self._target)
            if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (device, inode):
                return  # replaced since: another sink's, or the user's
            with open(self._target, "rb") as file:
                ours = file.read(len(data) + 1) == data
            if ours:
                os.unlink(self._target)
        except OSError:
            pass  # gone already, or not ours to remove: nothing to undo
