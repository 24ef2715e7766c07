"""How qmqp-source drives a load from the command line: the worker processes forked before
the trio loop, the library's lines printed in Postfix's words, the signals, the progress
display; then the finish (finish.py) and the exit status.

The load itself is the library's (qmqpsource.load): this module only drives it.
SIGINT, SIGTERM and SIGHUP stop new messages and give those in flight a grace, then
the run reports as usual (exit 130, 143 or 129); a second signal ends it at once.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import trio

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource.cli import finish
from qmqpsource.cli.common import fatal, limit_words
from qmqpsource.cli.logs import printing
from qmqpsource.cli.progress import bar_wanted, run_progress
from qmqpsource.errors import LimitError, QmqpsourceError
from qmqpsource.load.control import GRACE_SECONDS, LoadControl
from qmqpsource.load.plan import RunPlan
from qmqpsource.load.run import plan_load, run_load
from qmqpsource.load.start import NOW, Start
from qmqpsource.load.workers import WorkerPool, fork_pool
from qmqpsource.results.checks import Check
from qmqpsource.results.identity import Shards
from qmqpsource.results.result import Result
from qmqpsource.results.timeline import DEFAULT_INTERVAL
from qmqpsource.source.config import OPTIONS, SourceConfig

__all__ = ["Display", "drive", "forked_pool", "run_source"]

T = TypeVar("T")
Body = Callable[[LoadControl], Awaitable[T]]


class Display:
    """What the run shows while it runs: -v's and -c's lines, the bar, --interval lines."""

    def __init__(self, *, quiet: bool = False, verbose: int = 0, counter: bool = False,
                 interval: float | None = None) -> None:
        self.quiet, self.verbose, self.counter = quiet, verbose, counter
        # -q: no progress lines either; --interval still sets the timeline's step.
        self.interval = None if quiet else interval

    def progress(self, total: int | None) -> Callable[[LoadControl], Awaitable[None]] | None:
        """The task that draws the bar and/or the --interval lines, if any is wanted."""
        bar = bar_wanted(quiet=self.quiet, counter=self.counter, verbose=self.verbose,
                         stream=sys.stderr)
        if not bar and not self.interval:
            return None

        async def show(control: LoadControl) -> None:
            stats = await control.started()
            # Periods from the run's start: its last line comes before its end.
            await run_progress(stats, total, bar=bar, interval=self.interval,
                               start=stats.origin)

        return show


@contextlib.contextmanager
def forked_pool(plan: RunPlan) -> Iterator[WorkerPool | None]:
    """The plan's worker processes, forked now (before any trio loop or thread), ended
    and reaped when the block ends, however it ends."""
    if not plan.workers:
        yield None
        return
    pool = fork_pool(len(plan.configs))
    try:
        yield pool
    finally:
        pool.close()


def drive(body: Body[T], display: Display, signals: list[int],
          progress: Callable[[LoadControl], Awaitable[None]] | None = None) -> T:
    """Run ``body`` in a trio loop of its own, beside the signal watcher and the progress
    display, with the library's lines printed; the stop signals received go in
    ``signals``. A library error that ended it (QmqpsourceError) is raised as itself,
    out of the nurseries' groups; Ctrl-C before the watcher is up is exit 130."""
    with printing(PROG, verbose=display.verbose, counter=display.counter):
        try:
            value = trio.run(_under_control, body, signals, progress)
        except BaseException as exc:
            error = _library_error(exc)
            if error is not None:
                raise error from None
            if _is_interrupt(exc):
                sys.stderr.write(f"{PROG}: interrupted\n")
                raise SystemExit(130) from None
            raise
    if display.counter:
        sys.stdout.write("\n")  # after the running count, as Postfix ends it
        sys.stdout.flush()
    return value


async def _under_control(body: Body[T], signals: list[int],
                         progress: Callable[[LoadControl], Awaitable[None]] | None) -> T:
    control = LoadControl()
    async with trio.open_nursery() as nursery:
        # Signals can only be caught in the main thread (tests run commands in others).
        if threading.current_thread() is threading.main_thread():
            await nursery.start(_watch_signals, control, signals)
        if progress is not None:
            nursery.start_soon(progress, control)
        value = await body(control)
        nursery.cancel_scope.cancel()
    return value


async def _watch_signals(
    control: LoadControl, signals: list[int], *, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(*finish.STOP_SIGNALS) as incoming:
        # Started only once the handlers are in: the sessions' first step already
        # connects, and a signal before this point would end the run without a grace.
        task_status.started()
        async for signum in incoming:
            signals.append(signum)
            if len(signals) == 1:
                control.stop(GRACE_SECONDS)
            else:
                control.abort()  # the second one: no more grace


def command_words(exc: QmqpsourceError) -> str:
    """A library error as the command says it: a limit in the words of its options."""
    return limit_words(str(exc), OPTIONS) if isinstance(exc, LimitError) else str(exc)


def _library_error(exc: BaseException) -> QmqpsourceError | None:
    """The library's error that ended the run, maybe wrapped by the nurseries it crossed."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, QmqpsourceError) else None


def _is_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C before the signal watcher is up: KeyboardInterrupt, maybe wrapped in an
    exception group by the nursery it crossed."""
    return isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
    )


def run_source(
    config: SourceConfig,
    *,
    workers: int = 1,
    quiet: bool = False,
    verbose: int = 0,
    counter: bool = False,
    interval: float | None = None,
    json_path: str | None = None,
    embedded_sink_args: Sequence[str] | None = None,
    checks: Sequence[Check] = (),
    start: Start = NOW,
) -> int:
    """Run the load (``config`` with this host's shard), report it (summary, the sink's
    line, JSON), and return the exit status. ``start``: when, and the run id.

    The JSON result (with ``json_path``) is written however the run ends: completed,
    failed (a target that cannot be reached too) or interrupted. ``checks`` (--check) are
    judged once, on the whole result. ``interval`` is the timeline's step and, unless
    ``quiet``, the period of the progress lines.
    """
    display = Display(quiet=quiet, verbose=verbose, counter=counter, interval=interval)
    plan = plan_load(config, workers)
    signals: list[int] = []
    with forked_pool(plan) as pool:
        json_file = finish.open_json(json_path)  # after the forks: no worker holds it
        body = partial(_load, config, checks, interval or DEFAULT_INTERVAL,
                       pool or 1, embedded_sink_args, start)
        total = config.messages if config.duration is None else None
        try:
            value = drive(body, display, signals, None if pool else display.progress(total))
        except QmqpsourceError as exc:
            if json_file is not None:
                shards = Shards.one(config.shard_index, config.shard_count)
                run_id = start.run_id_of(datetime.now(UTC), config.shard_count)
                finish.write_json(json_file, finish.never_ran(plan.configs[0], str(exc),
                                                              run_id, shards))
            fatal(PROG, command_words(exc))
    return finish.finish(value, signals, quiet=quiet, json_file=json_file, checks=checks)


async def _load(config: SourceConfig, checks: Sequence[Check], interval: float,
                workers: int | WorkerPool, embedded_sink_args: Sequence[str] | None,
                start: Start, control: LoadControl) -> Result:
    return await run_load(config, checks=checks, interval=interval, workers=workers,
                          embedded_sink=embedded_sink_args, control=control,
                          start_at=start.at, run_id=start.run_id)
