"""Files a command reads whole (-F's message, qmqp-report's results): with a bound, and
never waiting for ever.

/dev/zero is read until memory runs out; opening a FIFO that has no writer blocks
for ever. So a file is opened without blocking, looked at (fstat), and read up to a
limit; what cannot be read that way is an InputError whose ``str()`` says why in a
few words (the caller puts the path in front).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from qmqpsource.errors import ConfigError

__all__ = ["InputError", "read_fd_limited", "read_limited", "regular_size"]

_CHUNK = 1 << 20


class InputError(ConfigError):
    """The file cannot be read as asked; ``str()`` says why, without the path."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


@contextlib.contextmanager
def _opened(
    path: str | os.PathLike[str], *, regular_only: bool
) -> Iterator[tuple[int, os.stat_result]]:
    try:
        # Non-blocking: the open of a FIFO without a writer would wait for one.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(os.strerror(errno.EISDIR))
        if regular_only and not stat.S_ISREG(info.st_mode):
            raise InputError(f"not a regular file ({_kind(info.st_mode)})")
        yield fd, info
    finally:
        os.close(fd)


def regular_size(path: str | os.PathLike[str]) -> int:
    """The size of the regular file at ``path``; anything else is an InputError."""
    with _opened(path, regular_only=True) as (_, info):
        return info.st_size


def read_limited(path: str | os.PathLike[str], limit: int, *, regular_only: bool = False) -> bytes:
    """The whole file at ``path``, if it holds ``limit`` bytes at most.

    A FIFO is read until its writer closes it (at once, when there is none); with
    ``regular_only``, anything but a regular file is refused.
    """
    with _opened(path, regular_only=regular_only) as (fd, info):
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise InputError(f"larger than {limit} bytes")
        os.set_blocking(fd, True)
        return read_fd_limited(fd, limit)


def read_fd_limited(fd: int, limit: int) -> bytes:
    """What ``fd`` gives until end of file, if that is ``limit`` bytes at most."""
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise InputError(f"larger than {limit} bytes")
    except OSError as exc:
        raise InputError(exc.strerror or str(exc)) from None
    return b"".join(chunks)
