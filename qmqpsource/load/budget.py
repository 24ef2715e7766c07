"""One message budget shared by --workers processes, taken in chunks as they go.

Equal fixed shares finish unequally: on a busy host one worker often ends a tenth
of the run before another, and the rest runs at one worker's speed. So the parent
cuts the run's -m into numbered chunks and writes the numbers into a pipe before it
forks; a worker reads one number (4 bytes) whenever it needs more work. Reads of a
pipe are atomic with respect to each other, so every chunk goes to exactly one
worker, with no lock to leave held when a worker dies, and the empty pipe, whose
write end is already closed, reads as end of file: the budget is spent.

A chunk's messages keep their place in the run (local numbers chunk * size ...), so
sequence numbers stay exactly those of one process doing the whole share.
"""

from __future__ import annotations

import os
import struct

__all__ = ["MessageBudget"]

_CHUNK = struct.Struct("=I")
# A pipe holds 64 KiB before a write would block (Linux's default): this many chunks.
MAX_CHUNKS = 65536 // _CHUNK.size
# About this many chunks per worker: the last to finish waits for at most one chunk.
CHUNKS_PER_WORKER = 64


class MessageBudget:
    """``total`` messages in chunks, in a pipe that worker processes are given (inherited
    over a fork, or passed on their channel: see workers.py)."""

    def __init__(self, total: int, workers: int) -> None:
        if total < 1 or workers < 1:
            raise ValueError("a budget needs messages and workers")
        self.total = total
        self.size = max(
            1, -(-total // (workers * CHUNKS_PER_WORKER)), -(-total // MAX_CHUNKS)
        )
        chunks = -(-total // self.size)
        read_end, write_end = os.pipe()
        try:
            data = b"".join(_CHUNK.pack(n) for n in range(chunks))
            if os.write(write_end, data) != len(data):  # pragma: no cover - fits by design
                raise OSError("message budget: short write to its pipe")
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # nobody writes again: empty means spent
        # Non-blocking all the same: a read must never stall a worker's loop.
        os.set_blocking(read_end, False)
        self._fd = read_end

    @classmethod
    def adopt(cls, fd: int, total: int, size: int) -> MessageBudget:
        """The budget whose pipe's read end ``fd`` a worker was given (and now owns)."""
        budget = cls.__new__(cls)
        budget.total, budget.size = total, size
        os.set_blocking(fd, False)
        budget._fd = fd
        return budget

    @property
    def fd(self) -> int:
        """The pipe's read end, to hand to a worker (-1 once closed)."""
        return self._fd

    def take(self) -> tuple[int, int] | None:
        """The next chunk: (local number of its first message, how many); None: spent."""
        if self._fd < 0:
            return None
        try:
            data = os.read(self._fd, _CHUNK.size)
        except BlockingIOError:
            data = b""
        if len(data) != _CHUNK.size:
            self.close()
            return None
        first = _CHUNK.unpack(data)[0] * self.size
        return first, min(self.size, self.total - first)

    def close(self) -> None:
        """This process takes no more (the others still can)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
