"""Lines for stderr or stdout that never block the event loop, whoever reads them, or not.

A pipe that nobody reads is full after 64 KiB, and a plain write then blocks the whole
sink: every client times out, and trio never gets to the SIGTERM that should stop it.
So a LineWriter hands its lines to a thread of its own, which does the blocking
writes; the event loop only appends to a bounded queue. When the queue is full (the
reader is that far behind, or gone) or the descriptor fails, a line is dropped and
counted. The thread is a daemon: one stuck in a write for good does not keep the
process from exiting, and ``close()`` waits for it a bounded time only.
"""

from __future__ import annotations

import os
import threading

__all__ = ["PENDING_LINES", "LineWriter"]

# Lines waiting for the thread at most; past this, new ones are dropped.
PENDING_LINES = 1024


class LineWriter:
    """A text stream for one descriptor; each ``write()`` is one line (or one -c count)."""

    def __init__(self, fd: int, limit: int = PENDING_LINES) -> None:
        self.fd = fd
        self.dropped = 0  # lines not written: the queue was full, or the descriptor failed
        self._limit = limit
        self._pending: list[str] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._waiting = False  # the thread sleeps until notified
        self._closing = False
        self._broken = False

    def write(self, text: str, *, always: bool = False) -> int:
        """Queue ``text``, or drop it; ``always``: past the limit too (a summary line)."""
        with self._ready:
            if self._broken or self._closing or (
                len(self._pending) >= self._limit and not always
            ):
                self.dropped += 1
                return len(text)
            self._pending.append(text)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"lines to fd {self.fd}", daemon=True
                )
                self._thread.start()
            elif self._waiting:
                self._ready.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the thread writes as soon as it can (TextIO's interface)."""

    def close(self, timeout: float) -> None:
        """Write what is queued, waiting ``timeout`` seconds at most; later lines are dropped."""
        with self._ready:
            self._closing = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closing:
                    self._waiting = True
                    self._ready.wait()
                    self._waiting = False
                batch, self._pending = self._pending, []
            if not batch:
                return  # closing, and everything is written
            self._emit(batch)

    def _emit(self, batch: list[str]) -> None:
        data = memoryview("".join(batch).encode("utf-8", "backslashreplace"))
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            # A closed pipe, a full disk: this and every later line go nowhere.
            with self._ready:
                self._broken = True
                self.dropped += len(batch) + len(self._pending)
                self._pending = []
