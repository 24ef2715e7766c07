"""A handle on a load under way, for whoever drives it: stop it gracefully, abort it, and
see its live counts.

    control = LoadControl()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_after_a_minute, control)    # calls control.stop()
        result = await run_load(config, control=control)  # status "interrupted"

``stop(grace)`` starts no new message and gives those in flight ``grace`` seconds; the
load then returns its result so far, with the status "interrupted". ``abort()`` cuts
what is in flight at once. A stop reaches every run the load is made of: this
process's sessions, each worker process, each step of a rate search; a run that starts
after a stop starts stopped. The command line calls ``stop`` on the first SIGINT,
SIGTERM or SIGHUP and ``abort`` on the second.

Whatever runs attaches itself for the time it runs (``attach``); the control holds no
reference to a run once it has ended.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import trio

from qmqpsource import values
from qmqpsource.trio_required import require_trio

if TYPE_CHECKING:
    from qmqpsource.results.stats import RunStats

__all__ = ["GRACE_SECONDS", "LoadControl", "Stoppable"]

# After a stop, messages in flight get this long to finish (the command line's grace).
GRACE_SECONDS = 2.0


class Stoppable(Protocol):
    """What a control can stop: a Runner, the parent's side of a round of workers."""

    def stop(self, grace: float) -> None: ...

    def abort(self) -> None: ...


class LoadControl:
    """Stop or abort a load from outside it; its live counts while one process runs it."""

    def __init__(self) -> None:
        self.grace: float | None = None  # set by the first stop(); None: not stopped
        self.aborted = False
        self._stop_at = math.inf  # trio time at which in-flight messages are cut
        self._attached: list[Stoppable] = []
        self._stats: RunStats | None = None
        self._started = trio.Event()

    @property
    def stopped(self) -> bool:
        """Whether stop() or abort() was called: the load starts no new message."""
        return self.grace is not None or self.aborted

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Start no new message; cut those still in flight after ``grace`` seconds."""
        require_trio("LoadControl.stop")
        # NaN would never come, and "1" would fail deep in the run: ConfigError here.
        grace = values.seconds("grace", grace, zero=True)
        if self.grace is None:
            self.grace = grace
            self._stop_at = trio.current_time() + grace
        for run in list(self._attached):
            run.stop(grace)

    def abort(self) -> None:
        """End now: messages in flight are cut, their sockets closed."""
        self.aborted = True
        for run in list(self._attached):
            run.abort()

    @contextmanager
    def attach(self, run: Stoppable) -> Iterator[None]:
        """``run`` is stopped by this control while the block runs; stopped at once if
        the control was stopped before (with what is left of the grace)."""
        if self.aborted:
            run.abort()
        elif self.grace is not None:
            run.stop(max(0.0, self._stop_at - trio.current_time()))
        self._attached.append(run)
        try:
            yield
        finally:
            self._attached.remove(run)

    # Live counts: for a progress display beside a run in this process.

    def publish(self, stats: RunStats) -> None:
        """The run under way in this process counts into ``stats`` (the runner's call)."""
        self._stats = stats
        self._started.set()

    @property
    def stats(self) -> RunStats | None:
        """The live counts of the run in this process, once it began (None before, and
        for a load over worker processes, whose counts are theirs until they end)."""
        return self._stats

    async def started(self) -> RunStats:
        """Wait until a run in this process began; its live counts."""
        await self._started.wait()
        assert self._stats is not None
        return self._stats

