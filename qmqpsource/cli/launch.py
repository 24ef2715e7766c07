"""One qmqp-source run in this process, from a config: the trio loop with its progress,
signals and embedded sink; then the finish (finish.py) and the exit status.

The CLI parses; this runs; the runner knows nothing of terminals or signals.
SIGINT, SIGTERM and SIGHUP stop new messages, give those in flight a short grace,
then report as usual (exit 130, 143 or 129); a second signal ends the run at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource import __version__
from qmqpsource.addresses import AddressError
from qmqpsource.cli import finish
from qmqpsource.cli.common import fatal
from qmqpsource.results.checks import Check, unjudged_failures
from qmqpsource.results.progress import bar_wanted, run_progress
from qmqpsource.results.stats import RunStats
from qmqpsource.results.timeline import DEFAULT_INTERVAL
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.connector import resolve
from qmqpsource.source.request import RequestFactory
from qmqpsource.source.runner import Runner, RunResult

if TYPE_CHECKING:
    from qmqpsource.cli.outfile import OutputFile
    from qmqpsource.cli.workers import ParentLink
    from qmqpsource.results.figures import RunStatus
    from qmqpsource.results.result import Result
    from qmqpsource.source.budget import MessageBudget

__all__ = ["GRACE_SECONDS", "run_source"]

# After the first SIGINT/SIGTERM/SIGHUP, messages in flight get this long to finish.
GRACE_SECONDS = 2.0


def run_source(
    config: SourceConfig,
    *,
    quiet: bool = False,
    interval: float | None = None,
    json_path: str | None = None,
    embedded_sink_args: Sequence[str] | None = None,
    budget: MessageBudget | None = None,
    parent: ParentLink | None = None,
    checks: Sequence[Check] = (),
) -> int:
    """Run the load; print Postfix's fatal line on failure; return the exit status.

    The JSON result (with ``json_path``) is written however the run ends: completed,
    failed or interrupted. The summary goes to stderr after the run unless ``quiet``
    or the run failed (see finish.report).

    With ``embedded_sink_args`` (a list, maybe empty) the target is a qmqp-sink that
    this run starts in a child process and stops afterwards; its counts are reported
    beside ours (and under "sink" in the JSON).

    A --workers worker runs with ``parent``: its result goes up to the parent, and the
    run stops at once, reporting nothing, when the parent is gone. ``checks`` (--check)
    are judged against the result, which then has their verdicts (exit status 3 when
    one failed).

    ``interval`` (--interval) is the timeline's step (else timeline.DEFAULT_INTERVAL)
    and, unless ``quiet``, the progress lines' period.
    """
    requests = RequestFactory(config)
    stats = RunStats(config.recipients, requests.size,
                     interval or DEFAULT_INTERVAL)
    run = ProcessRun(
        # -q: no progress lines either; --interval still sets the timeline's step.
        config, requests, stats, interval=None if quiet else interval, budget=budget,
        parent=parent,
        embedded_sink_args=embedded_sink_args,
        bar=bar_wanted(quiet=quiet, counter=config.counter, verbose=config.verbose,
                       stream=sys.stderr),
    )
    # Opened before the run, so that a bad path fails at once, not after a long run.
    json_file = finish.open_json(json_path) if parent is None else parent.result_file()
    report = partial(run.report, quiet=quiet, json_file=json_file, checks=checks)
    try:
        run_result = trio.run(run.main)
    except AddressError as exc:
        report("failed", str(exc))
        fatal(PROG, str(exc))
    except BaseException as exc:
        if _is_interrupt(exc):
            report("interrupted", None)
            return finish.exit_status(signal.SIGINT, worker=parent is not None)
        report("failed", f"{type(exc).__name__}: {exc}")
        raise
    if parent is not None and parent.gone:
        return 1  # an orphan: nobody to report to
    signum = run.signals[0] if run.signals else None
    failure = run_result.failure
    ended: RunStatus = "completed" if failure is None else "failed"
    value = report("interrupted" if signum is not None else ended, failure)
    return finish.exit_status(
        signum, failure=failure, failed=run_result.stats.failed,
        attempted=run_result.stats.attempted, worker=parent is not None,
        checks=value.checks if value is not None else (),
        unjudged=unjudged_failures(checks, run_result.stats.counts),
    )


def _is_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C before the signal watcher is up: KeyboardInterrupt, maybe wrapped in an
    exception group by the nursery it crossed."""
    return isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
    )


class ProcessRun:
    """This process's run: what its trio loop needs, and what it saw there."""

    # A plain class, not a dataclass: it is on every run's start-up path (~0.3 ms less).
    def __init__(
        self,
        config: SourceConfig,
        requests: RequestFactory,
        stats: RunStats,
        *,
        interval: float | None,
        bar: bool,
        budget: MessageBudget | None,
        parent: ParentLink | None,
        embedded_sink_args: Sequence[str] | None,
    ) -> None:
        self.config = config
        self.requests = requests
        self.stats = stats
        self.interval = interval
        self.bar = bar
        self.budget = budget
        self.parent = parent
        self.embedded_sink_args = embedded_sink_args
        self.signals: list[int] = []  # the stop signals received
        self.sink_counts: dict[str, Any] = {}

    async def main(self) -> RunResult:
        if self.embedded_sink_args is None:
            return await self.load(self.config.target)
        # Imported here: only --embedded-sink runs need the child process machinery.
        from qmqpsource.cli.embedded import EmbeddedSinkError, embedded_sink

        try:
            async with embedded_sink(self.embedded_sink_args) as sink:
                run_result = await self.load(sink.target)
        except EmbeddedSinkError as exc:
            raise AddressError(f"embedded sink: {exc}") from None
        self.sink_counts.update(sink.result or {})
        return run_result

    async def load(self, target: str) -> RunResult:
        """The sessions against ``target``, beside the progress and the watchers."""
        config = self.config
        endpoint = await resolve(target, config.family)
        self.stats.begin()
        async with trio.open_nursery() as nursery:
            if self.bar or self.interval:
                total = config.messages if config.duration is None else None
                await nursery.start(partial(run_progress, self.stats, total, bar=self.bar,
                                            interval=self.interval))
            # Built once the bar is up, so that its warnings go through rich's stderr.
            runner = Runner(config, endpoint, self.requests, self.stats, budget=self.budget)
            # Signals can only be caught in the main thread (tests run this in others).
            if threading.current_thread() is threading.main_thread():
                await nursery.start(partial(_watch_signals, runner, self.signals))
            if self.parent is not None:
                nursery.start_soon(self.parent.watch, runner.abort)
            run_result = await runner.run()
            nursery.cancel_scope.cancel()
        return run_result

    def report(
        self, status: RunStatus, failure: str | None, *, quiet: bool,
        json_file: OutputFile | None,
        checks: Sequence[Check] = (),
    ) -> Result | None:
        """The result of the run as it ended, judged, shown and written (finish.report)."""
        self.stats.finish()
        if quiet and json_file is None and not checks:
            return None  # nothing to print, write or judge
        from qmqpsource.results import result  # here: a quiet run without --json needs none

        value = result.from_stats(
            self.stats, self.config.as_dict(), tool_name=PROG, tool_version=__version__,
            status=status, failure=failure,
        )
        return finish.report(value, quiet=quiet, json_file=json_file,
                             sink_counts=self.sink_counts, checks=checks)


async def _watch_signals(
    runner: Runner, signals: list[int], *, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(*finish.STOP_SIGNALS) as incoming:
        # Started only once the handlers are in: the sessions' first step already
        # connects, and a signal before this point would end the run without a grace.
        task_status.started()
        async for signum in incoming:
            if signals:
                runner.abort()  # the second one: no more grace
            else:
                signals.append(signum)
                runner.stop(GRACE_SECONDS)
