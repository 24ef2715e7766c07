"""What a session generator waits for, and a driver that runs one in a plain trio task.

Sessions are generators rather than trio tasks (see engine.py): they ``yield`` a wait
and are resumed when it is over. The same generators run under ``drive()`` in an
ordinary trio task, which is how the connector and client steps are used outside the
engine (tests, one-off connections).

    (READABLE, fd) / (WRITABLE, fd)   resume when the descriptor is ready
    (SLEEP, when)                     resume at time.perf_counter() time ``when``
    (PAUSE, when)                     the same, but a stopping run ends it early
    (GATE, gate)                      resume holding a slot of an engine.Gate
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any, TypeAlias, TypeVar

import trio

__all__ = ["GATE", "PAUSE", "READABLE", "SLEEP", "WRITABLE", "Steps", "Wait", "drive"]

READABLE = 0
WRITABLE = 1
SLEEP = 2
PAUSE = 3
GATE = 4

Wait: TypeAlias = tuple[int, Any]
T = TypeVar("T")
Steps: TypeAlias = Generator[Wait, None, T]


async def drive(steps: Steps[T]) -> T:
    """Run a generator of waits to its end in this trio task; return what it returns.

    Cancellation closes the generator, so that its finally blocks close its sockets.
    """
    try:
        while True:
            try:
                kind, arg = steps.send(None)
            except StopIteration as done:
                value: T = done.value
                return value
            if kind == READABLE:
                await trio.lowlevel.wait_readable(arg)
            elif kind == WRITABLE:
                await trio.lowlevel.wait_writable(arg)
            elif kind in (SLEEP, PAUSE):
                await trio.sleep(max(0.0, arg - time.perf_counter()))
            else:
                raise ValueError(f"drive() cannot wait for {kind!r}")
    finally:
        steps.close()
