"""A worker process's life: run each job its parent sends, one at a time, until the parent
closes the channel (or dies).

A job runs as a run in this process does (inprocess.py), under a LoadControl that the
parent's STOP and ABORT frames drive; its log records go up the channel, its result
(or why it could not start) last. A worker never outlives its parent: on Linux the
kernel kills it when the parent dies (a parent-death signal); everywhere, the end of
file on the channel aborts the job under way and ends the process.

Started by a fork (the command line forks its workers before its trio loop exists:
``serve`` is then all the child runs), or as ``python -m qmqpsource.load.worker FD
PARENT`` (the API, inside a trio loop, where forking is no option).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

import trio

from qmqpsource import logs
from qmqpsource.errors import QmqpsourceError
from qmqpsource.load.channel import (
    ChannelClosed,
    Frame,
    FrameReader,
    Kind,
    receive_frame,
    send_frame,
)
from qmqpsource.load.control import LoadControl
from qmqpsource.load.inprocess import run_in_process
from qmqpsource.load.job import FORWARDED_LOGGERS, Job, decode_job
from qmqpsource.results import result

__all__ = ["die_with_parent", "main", "serve"]

# How often log records go up to the parent: often enough to read as live lines.
LOG_PERIOD = 0.05


def serve(channel: socket.socket) -> int:
    """Run the parent's jobs until it closes the channel; the exit status (0, or 1 when
    the parent went away in the middle of a job)."""
    channel.setblocking(False)
    records = _Outbox()
    root = logging.getLogger(logs.ROOT)
    # A forked worker inherited the parent's handlers: its lines go up the channel only.
    root.handlers = [records]
    root.propagate = False
    return trio.run(_serve, channel, records)


async def _serve(channel: socket.socket, records: _Outbox) -> int:
    reader = FrameReader()
    while True:
        try:
            frame = await receive_frame(channel, reader)
        except ChannelClosed:
            return 0
        if frame.kind is Kind.JOB and not await _run_job(channel, reader, records, frame):
            return 1


async def _run_job(
    channel: socket.socket, reader: FrameReader, records: _Outbox, frame: Frame
) -> bool:
    """Run one job and send its result up; False when the parent is gone."""
    control = LoadControl()
    follower = _Follower(control)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(follower.follow, channel, reader)
        nursery.start_soon(records.pump, channel)
        kind, payload = await _outcome(frame, control)
        nursery.cancel_scope.cancel()
    if follower.parent_gone:
        return False
    try:
        await records.send_all(channel)
        await send_frame(channel, kind, payload)
    except ChannelClosed:
        return False
    return True


async def _outcome(frame: Frame, control: LoadControl) -> tuple[Kind, bytes]:
    """Run the job: its result document, or why it could not run."""
    try:
        job = decode_job(frame)
        _set_levels(job)
        try:
            value = await run_in_process(job.config, job.target, interval=job.interval,
                                         control=control, budget=job.budget)
        finally:
            if job.budget is not None:
                job.budget.close()
    except QmqpsourceError as exc:
        error = {"kind": type(exc).__name__, "message": str(exc)}
        return Kind.ERROR, json.dumps(error).encode()
    return Kind.RESULT, result.dumps(value).encode()


def _set_levels(job: Job) -> None:
    for name in FORWARDED_LOGGERS:
        logging.getLogger(name).setLevel(job.levels.get(name, logging.WARNING))


class _Follower:
    """The parent's side of a job: its STOP and ABORT frames, and its end."""

    def __init__(self, control: LoadControl) -> None:
        self.control = control
        self.parent_gone = False

    async def follow(self, channel: socket.socket, reader: FrameReader) -> None:
        while True:
            try:
                frame = await receive_frame(channel, reader)
            except ChannelClosed:
                self.parent_gone = True
                self.control.abort()  # nobody would read the result: end now
                return
            if frame.kind is Kind.STOP:
                self.control.stop(float(frame.payload or b"0"))
            elif frame.kind is Kind.ABORT:
                self.control.abort()


class _Outbox(logging.Handler):
    """Log records of the run, kept until the next pump sends them up as LOG frames."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[bytes] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = {"name": record.name, "level": record.levelno, "message": record.getMessage()}
        self._pending.append(json.dumps(line).encode())

    async def pump(self, channel: socket.socket) -> None:
        while True:
            await trio.sleep(LOG_PERIOD)
            await self.send_all(channel)

    async def send_all(self, channel: socket.socket) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            for payload in batch:
                await send_frame(channel, Kind.LOG, payload)


def die_with_parent(parent: int) -> Callable[[], None]:
    """What a worker calls first: on Linux, have the kernel kill it when ``parent`` dies.

    Made in the parent before its forks, so that ctypes is imported once. Elsewhere
    (macOS, the BSDs), the end of file on the channel alone tells the worker.
    """
    prctl = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None

    def arm() -> None:
        if prctl is not None:
            prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the signal was armed

    return arm


def main(argv: list[str] | None = None) -> None:
    """``python -m qmqpsource.load.worker FD PARENT``: a worker that a parent running
    trio spawned (workers.py), its channel on descriptor FD."""
    args = sys.argv[1:] if argv is None else argv
    fd, parent = int(args[0]), int(args[1])
    # No parent-death signal here: the kernel sends it when the *thread* that started us
    # exits, and trio starts processes from a thread of its cache, which exits when idle
    # for 10 s (the workers were killed mid-run). The channel's end of file tells us.
    if os.getppid() != parent:
        raise SystemExit(1)  # the parent died before we got here
    raise SystemExit(serve(socket.socket(fileno=fd)))


if __name__ == "__main__":
    main()
