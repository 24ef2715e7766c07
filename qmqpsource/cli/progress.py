"""Live progress beside a run: a rich progress bar on a terminal, and --interval lines.

Both poll RunStats from a task of their own, so the per-message path knows nothing of
them. The bar is drawn from this task only (auto_refresh off): rich's own refresh
thread would take the GIL from the load at random moments. rich is imported only when a
bar is drawn, so that short runs do not pay its start-up.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import trio

from qmqpsource import SOURCE_PROG
from qmqpsource.results.histogram import Histogram
from qmqpsource.results.stats import RunStats
from qmqpsource.wording import counted

__all__ = ["BAR_PERIOD", "IntervalLines", "bar_wanted", "run_progress"]

# Seconds between bar redraws: smooth enough to read, rare enough to cost nothing.
BAR_PERIOD = 0.25


def bar_wanted(*, quiet: bool, counter: bool, verbose: int, stream: TextIO) -> bool:
    """A bar only on a terminal, and not where -c's counter or -v's lines would fight it."""
    if quiet or counter or verbose:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class IntervalLines:
    """One line per interval: messages, rate, failures and p99 of that interval alone."""

    def __init__(self, stats: RunStats, prog: str = SOURCE_PROG) -> None:
        self._stats = stats
        self._prog = prog
        self._elapsed = stats.elapsed
        self._attempted = stats.attempted
        self._failed = stats.failed
        self._total = stats.total.copy()

    def line(self) -> str:
        """The line for the interval since the last call (or since construction)."""
        stats = self._stats
        elapsed, attempted, failed = stats.elapsed, stats.attempted, stats.failed
        total = stats.total.copy()
        seconds = elapsed - self._elapsed
        messages = attempted - self._attempted
        rate = messages / seconds if seconds > 0 else 0.0
        interval: Histogram = total - self._total
        p99 = f"{interval.percentile(99.0) / 1000:.3f} ms" if messages else "-"
        failures = failed - self._failed
        self._elapsed, self._attempted, self._failed, self._total = (
            elapsed, attempted, failed, total
        )
        return (
            f"{self._prog}: {elapsed:.1f} s: {counted(messages, 'message')}, {rate:.1f} msg/s, "
            f"{failures} failed, p99 {p99}"
        )


async def run_progress(
    stats: RunStats,
    total: int | None,
    *,
    bar: bool,
    interval: float | None,
    err: TextIO | None = None,
    start: float | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Draw the bar and/or print interval lines until cancelled; the lines' periods count
    from ``start`` (trio time: the run's start), or from now."""
    stream = err if err is not None else sys.stderr
    lines = IntervalLines(stats) if interval else None
    start = trio.current_time() if start is None else start
    if not bar:
        task_status.started()
        if lines is None or interval is None:
            return
        deadline = start
        while True:
            deadline += interval
            await trio.sleep_until(deadline)
            stream.write(lines.line() + "\n")
            stream.flush()
    await _run_bar(stats, total, stream, lines, (start, interval), task_status)


async def _run_bar(
    stats: RunStats,
    total: int | None,
    stream: TextIO,
    lines: IntervalLines | None,
    period: tuple[float, float | None],
    task_status: trio.TaskStatus[None],
) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} msg/s"),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
        console=Console(file=stream),
        auto_refresh=False,
        transient=True,
    )
    with progress:
        task = progress.add_task(SOURCE_PROG, total=total, rate=0.0, failed=0)
        task_status.started()
        start, interval = period
        next_draw = trio.current_time() + BAR_PERIOD
        next_line = start + interval if lines is not None and interval else float("inf")
        while True:
            await trio.sleep_until(min(next_draw, next_line))
            now = trio.current_time()
            if lines is not None and now >= next_line:
                assert interval is not None
                next_line += interval
                progress.console.out(lines.line(), highlight=False)
            if now >= next_draw:
                next_draw += BAR_PERIOD
                _update(progress, task, stats)
                progress.refresh()


def _update(progress: Any, task: Any, stats: RunStats) -> None:
    elapsed = stats.elapsed
    done = stats.attempted
    progress.update(
        task,
        completed=done,
        rate=done / elapsed if elapsed > 0 else 0.0,
        failed=stats.failed,
    )
