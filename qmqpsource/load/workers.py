"""Worker processes: one load over several processes of this host, merged exactly.

One Python process tops out at one core; the load, like Postfix's C tool, is mostly
kernel work per connection, so a second process on a second core adds what the client
can offer. A pool's workers each run one share of a load at a time (a round), as many
rounds as the caller asks: a rate search runs all its steps on one pool. Each worker
talks to the parent over a channel of its own (channel.py): the job goes down, the log
records and the result come up, and the parent's stop or abort goes down while it runs.
No file: nothing is left behind whoever dies.

Two ways to start them, one protocol: ``fork_pool`` forks them before any trio loop or
thread exists, so that they start without paying for Python's start-up and imports
again (the command line); ``spawn_pool`` starts ``python -m qmqpsource.load.worker``
from inside a trio loop, where a fork would copy a running event loop (the API).
Workers run in sessions of their own, so that a terminal's Ctrl-C reaches the parent
only: the parent decides what a signal means and tells them.

A worker that fails fatally (without -A) ends the round for all, as one process would.
A worker that dies is reported; the others' results are kept, and with a shared budget
they take the messages it had not taken.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import trio

from qmqpsource import logs
from qmqpsource.load.channel import FrameReader, Kind, send_frame
from qmqpsource.load.worker import die_with_parent, serve

__all__ = ["STOP_TIMEOUT", "WorkerPool", "WorkerProcess", "fork_pool", "spawn_pool"]

# A worker asked to stop gets this long past its grace (or an abort) before it is killed.
STOP_TIMEOUT = 10.0
# Without pidfd_open (Linux < 5.3, macOS, the BSDs), how often to look whether a forked
# worker has ended.
_POLL_INTERVAL = 0.02


@dataclass(eq=False)
class WorkerProcess:
    """One worker: its channel, its process, and how it ended."""

    index: int
    channel: socket.socket
    pid: int
    process: trio.Process | None = None  # a spawned worker; None: a forked one
    returncode: int | None = None
    reader: FrameReader = field(default_factory=FrameReader)

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.channel.fileno() >= 0

    async def send(self, kind: Kind, payload: bytes = b"", fds: Sequence[int] = ()) -> None:
        await send_frame(self.channel, kind, payload, fds)

    async def wait(self) -> int:
        """Wait for the process to end; its exit status as subprocess gives it."""
        if self.returncode is None:
            if self.process is not None:
                self.returncode = await self.process.wait()
            else:
                self.returncode = await _wait_forked(self.pid)
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def how_it_ended(self) -> str:
        code = self.returncode
        if code is not None and code < 0:
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"exited with status {code}"


async def _wait_forked(pid: int) -> int:
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - never blocks
            if done:
                return os.waitstatus_to_exitcode(status)
            if pidfd >= 0:
                await trio.lowlevel.wait_readable(pidfd)
            else:
                await trio.sleep(_POLL_INTERVAL)
    except ChildProcessError:
        return 0  # reaped elsewhere: nothing more to learn
    finally:
        if pidfd >= 0:
            os.close(pidfd)


class WorkerPool:
    """Worker processes that run the rounds of a load (run.py, rounds.py)."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        self.workers = workers

    def __len__(self) -> int:
        return len(self.workers)

    def close(self) -> None:
        """End every worker and reap it (outside trio: a forked pool, after its run).

        Closing a channel ends a waiting worker at once and aborts a running one;
        one that does not end within STOP_TIMEOUT is killed.
        """
        for worker in self.workers:
            worker.channel.close()
        for worker in self.workers:
            if worker.returncode is None:
                worker.returncode = _reap_blocking(worker.pid)

    async def aclose(self) -> None:
        """End every worker and reap it, from inside trio (a spawned pool)."""
        for worker in self.workers:
            worker.channel.close()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(STOP_TIMEOUT):
                for worker in self.workers:
                    await worker.wait()
            for worker in self.workers:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()


def _reap_blocking(pid: int) -> int:
    """Wait for a forked worker to end, STOP_TIMEOUT at most before it is killed."""
    import time

    deadline = time.monotonic() + STOP_TIMEOUT
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status)
            time.sleep(_POLL_INTERVAL)
    except ChildProcessError:
        return 0


def fork_pool(count: int) -> WorkerPool:
    """``count`` workers forked from this process, which must not be running trio yet."""
    arm = die_with_parent(os.getpid())
    workers: list[WorkerProcess] = []
    try:
        for index in range(count):
            workers.append(_fork(index, workers, arm))
    except BaseException:
        WorkerPool(workers).close()
        raise
    return WorkerPool(workers)


def _fork(
    index: int, earlier: Sequence[WorkerProcess], arm: Callable[[], None]
) -> WorkerProcess:
    parent_end, child_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            arm()
            os.setsid()  # out of the terminal's process group: signals come via the parent
            parent_end.close()
            # The parent's ends of the earlier workers' channels came along with the
            # fork: held here, they would keep those workers from seeing their parent
            # go away.
            for worker in earlier:
                worker.channel.close()
            status = serve(child_end)
        except BaseException as exc:  # a worker must never return into the parent's code
            with contextlib.suppress(Exception):
                logging.getLogger(logs.SOURCE).critical("worker %d: %r", index, exc)
        finally:
            os._exit(status)
    child_end.close()
    parent_end.setblocking(False)
    return WorkerProcess(index, parent_end, pid)


@contextlib.asynccontextmanager
async def spawn_pool(count: int) -> AsyncIterator[WorkerPool]:
    """``count`` workers started as new Python processes, for the length of the block."""
    workers: list[WorkerProcess] = []
    pool = WorkerPool(workers)
    try:
        for index in range(count):
            workers.append(await _spawn(index))
        yield pool
    finally:
        await pool.aclose()


async def _spawn(index: int) -> WorkerProcess:
    parent_end, child_end = socket.socketpair()
    try:
        fd = child_end.fileno()
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "qmqpsource.load.worker", str(fd), str(os.getpid())],
            pass_fds=(fd,), stdin=subprocess.DEVNULL, start_new_session=True,
        )
    except BaseException:
        parent_end.close()
        raise
    finally:
        child_end.close()
    parent_end.setblocking(False)
    return WorkerProcess(index, parent_end, process.pid, process)

