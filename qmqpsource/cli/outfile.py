"""A file that a command writes once, at its end (--json): checked at the start, written whole.

What is at the path decides how:

- a plain file, or nothing yet: the text goes to a temporary file beside it, which is
  then renamed over it. A reader never sees half a file, and a run killed before its
  end (SIGKILL, the OOM killer) leaves the earlier file as it was.
- a symlink: followed; its target is written as above.
- a device, a FIFO or any other file that is not plain (``/dev/null``, ``/dev/stdout``):
  written directly, never replaced. It is opened at the start, so that a bad path fails
  at once; a FIFO that has no reader yet is opened at the end instead (waiting a few
  seconds at most for one).
- ``-``: stdout, written directly, and refused when stdout was closed at the start.

Every failure is an OutputError whose ``str()`` is one line for the user.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import time
from collections.abc import Iterator

from qmqpsource.cli import stdio

__all__ = ["FIFO_WAIT", "OutputError", "OutputFile", "temporary_beside", "write_all"]

# How long the end of a run waits for a reader on a FIFO that had none at its start.
FIFO_WAIT = 5.0


class OutputError(Exception):
    """The file cannot be written; ``str()`` is one line for the user."""


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class OutputFile:
    """Where one command's output file goes; ``write()`` it once, or ``close()`` it unwritten."""

    def __init__(self, name: str, *, fd: int = -1, target: str | None = None,
                 mode: int | None = None) -> None:
        self.name = name  # for messages: the path as given, or "stdout"
        self._fd = fd  # written directly (a device, a FIFO, stdout, a worker's pipe)
        self._target = target  # else: a plain file (or none yet) to replace at this path
        self._mode = mode  # the replaced file's permissions, kept

    @classmethod
    def at(cls, path: str) -> OutputFile:
        """The file at ``path`` (``-``: stdout), checked now: see the module."""
        if path == "-":
            return cls.on_stdout()
        if not path:
            raise OutputError("an empty path ('') names no file")
        try:
            info: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise OutputError(f"open {path}: {_why(exc)}") from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise OutputError(f"open {path}: {os.strerror(errno.EISDIR)}")
        if info is not None and not stat.S_ISREG(info.st_mode):
            return cls(path, fd=_open_direct(path))
        target = os.path.realpath(path)  # a symlink's target is what gets replaced
        with temporary_beside(target, path, None):
            pass  # the folder exists and takes a new file: the rename at the end will work
        return cls(path, target=target, mode=None if info is None else info.st_mode & 0o7777)

    @classmethod
    def on_stdout(cls) -> OutputFile:
        if stdio.closed_at_start(1):
            raise OutputError("stdout is closed")
        return cls("stdout", fd=1)

    @classmethod
    def on_descriptor(cls, fd: int, name: str) -> OutputFile:
        """A descriptor that someone else opened (a worker's pipe to its parent); closed here."""
        return cls(name, fd=fd)

    def write(self, text: str) -> None:
        """Write ``text`` whole (then close); OutputError with one line if it cannot be."""
        if self._fd == 1:
            self._fd = -1
            self._write_stdout(text)
            return
        data = text.encode("utf-8", "surrogateescape")
        if self._target is None:
            self._write_direct(data)
            return
        with temporary_beside(self._target, self.name, self._mode) as (fd, temporary):
            try:
                write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                raise OutputError(f"write {self.name}: {_why(exc)}") from None
            try:
                os.replace(temporary, self._target)
            except OSError as exc:
                raise OutputError(f"rename to {self.name}: {_why(exc)}") from None

    def _write_stdout(self, text: str) -> None:
        # Through sys.stdout, after what the run printed there (-c's counter, say).
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError) as exc:
            raise OutputError(f"write stdout: {exc}") from None
        failure = stdio.failed(sys.stdout)
        if failure is not None:
            raise OutputError(f"write stdout: {failure}")

    def _write_direct(self, data: bytes) -> None:
        fd, self._fd = self._fd, -1
        try:
            if fd < 0:
                fd = _open_fifo_late(self.name)
            write_all(fd, data)
        except OSError as exc:
            raise OutputError(f"write {self.name}: {_why(exc)}") from None
        finally:
            if fd > 2:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def close(self) -> None:
        """Leave the file as it was (the run wrote nothing)."""
        fd, self._fd = self._fd, -1
        if fd > 2:
            with contextlib.suppress(OSError):
                os.close(fd)


def _open_direct(path: str) -> int:
    """A device or FIFO opened for writing now; -1: a FIFO with no reader yet (opened later)."""
    try:
        # Non-blocking: opening a FIFO with no reader would wait for one.
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO and stat.S_ISFIFO(os.stat(path).st_mode):
            return -1
        raise OutputError(f"open {path}: {_why(exc)}") from None
    os.set_blocking(fd, True)
    return fd


def _open_fifo_late(path: str) -> int:
    """The FIFO that had no reader at the start, once one comes: FIFO_WAIT at most."""
    deadline = time.monotonic() + FIFO_WAIT
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline:
                raise OSError(exc.errno, "no process reads the FIFO") from None
            # A blocking open would wait for ever; a reader that was just started
            # (`cat fifo &`) opens within milliseconds.
            time.sleep(0.01)
            continue
        os.set_blocking(fd, True)
        return fd


@contextlib.contextmanager
def temporary_beside(target: str, name: str, mode: int | None) -> Iterator[tuple[int, str]]:
    """A new file beside ``target``: yields (fd, path); removed unless renamed meanwhile."""
    folder, base = os.path.split(target)
    temporary = os.path.join(folder, f".{base}.{os.getpid()}.tmp")
    try:
        fd = _create(temporary)
    except OSError as exc:
        raise OutputError(f"open {name}: {_why(exc)}") from None
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # the replaced file's permissions, not the umask's
        yield fd, temporary
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # gone already when it was renamed


def _create(path: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o666)
    except FileExistsError:
        # Left by a process that had our pid and was killed: nobody else's to keep.
        os.unlink(path)
        return os.open(path, flags, 0o666)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
