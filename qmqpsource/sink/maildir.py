"""Durable Maildir delivery for qmqp-sink: nothing acknowledged is ever lost.

A message is written under tmp/, fsync'ed, renamed into new/, and new/ itself
is fsync'ed; only then may the sink send its K reply. A crash at any point
leaves either a whole file in new/ or nothing there (stray files in tmp/ are
what Maildir readers ignore). The envelope is kept as headers on top of the
message: one Return-Path, then one Delivered-To per recipient, as qmail does.

Blocking I/O throughout: the sink calls ``deliver`` from a worker thread.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Sequence

__all__ = ["Maildir", "envelope_headers"]

_SUBDIRS = ("tmp", "new", "cur")


def envelope_headers(sender: bytes, recipients: Sequence[bytes]) -> bytes:
    """The header lines that carry the envelope, to go above the message."""
    lines = [b"Return-Path: <%s>\n" % sender]
    lines.extend(b"Delivered-To: %s\n" % rcpt for rcpt in recipients)
    return b"".join(lines)


def _unique_host() -> str:
    # The Maildir spec: '/' and ':' in the host name are written as octal escapes.
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Maildir:
    """One Maildir, created if missing; ``deliver`` is safe to call from several threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        created = False
        for sub in _SUBDIRS:
            full = os.path.join(self.path, sub)
            if not os.path.isdir(full):
                os.makedirs(full, mode=0o700, exist_ok=True)
                created = True
        if created:
            # The new folders themselves must survive a crash, or new/ could vanish with its mail.
            _fsync_dir(self.path)
            _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        self._tmp = os.path.join(self.path, "tmp")
        self._new = os.path.join(self.path, "new")
        self._pid = os.getpid()
        self._host = _unique_host()
        # next() on a count is atomic under the GIL: unique names across worker threads.
        self._seq = itertools.count(1)

    def _unique(self) -> str:
        now = time.time()
        seconds = int(now)
        micros = int((now - seconds) * 1_000_000)
        return f"{seconds}.M{micros}P{self._pid}Q{next(self._seq)}.{self._host}"

    def deliver(self, message: bytes, sender: bytes, recipients: Sequence[bytes]) -> str:
        """Store one message durably; returns its file name in new/."""
        name = self._unique()
        tmp_path = os.path.join(self._tmp, name)
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                _write_all(fd, [envelope_headers(sender, recipients), message])
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp_path, os.path.join(self._new, name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
            raise
        # The rename is only durable once the directory that gained the entry is synced.
        _fsync_dir(self._new)
        return name


def _write_all(fd: int, parts: list[bytes]) -> None:
    views = [memoryview(p) for p in parts if p]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
