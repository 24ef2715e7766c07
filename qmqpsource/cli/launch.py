"""One qmqp-source run from a config: trio loop, progress, signals, summary, JSON, exit status.

The CLI parses; this runs; the runner knows nothing of terminals or signals.
SIGINT, SIGTERM and SIGHUP stop new messages, give those in flight a short grace,
then report as usual (exit 130, 143 or 129); a second signal ends the run at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource import __version__
from qmqpsource.addresses import AddressError
from qmqpsource.cli.common import fatal
from qmqpsource.results.progress import bar_wanted, run_progress
from qmqpsource.results.stats import RunStats
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.connector import resolve
from qmqpsource.source.request import RequestFactory
from qmqpsource.source.runner import Runner, RunResult
from qmqpsource.wording import counted

if TYPE_CHECKING:
    from qmqpsource.cli.outfile import OutputFile
    from qmqpsource.cli.workers import ParentLink
    from qmqpsource.results import result
    from qmqpsource.source.budget import MessageBudget

__all__ = ["GRACE_SECONDS", "open_json", "run_source", "write_json"]

# After the first SIGINT/SIGTERM/SIGHUP, messages in flight get this long to finish.
GRACE_SECONDS = 2.0
# SIGHUP too: a closed terminal or ssh session must not end the run without its result.
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
_SIGNAL_WORD = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated",
                signal.SIGHUP: "hung up"}


async def _watch_signals(
    runner: Runner, received: list[int], *, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(*_SIGNAL_EXIT) as signals:
        # Started only once the handlers are in: the sessions' first step already
        # connects, and a signal before this point would end the run without a grace.
        task_status.started()
        async for signum in signals:
            if received:
                runner.abort()  # the second one: no more grace
            else:
                received.append(signum)
                runner.stop(GRACE_SECONDS)


def run_source(
    config: SourceConfig,
    *,
    quiet: bool = False,
    interval: float | None = None,
    json_path: str | None = None,
    embedded_sink_args: Sequence[str] | None = None,
    budget: MessageBudget | None = None,
    parent: ParentLink | None = None,
) -> int:
    """Run the load; print Postfix's fatal line on failure; return the exit status.

    The JSON result (with ``json_path``) is written however the run ends: completed,
    failed or interrupted. The summary goes to stderr after the run unless ``quiet``
    (-c's counter is on stdout and -v's lines come before it, as in Postfix), or unless
    the run failed: then Postfix's one fatal line says it all.

    With ``embedded_sink_args`` (a list, maybe empty) the target is a qmqp-sink that
    this run starts in a child process and stops afterwards; its counts are reported
    beside ours (and under "sink" in the JSON).

    A --workers worker runs with ``parent``: its result goes up to the parent, and the
    run stops at once, reporting nothing, when the parent is gone.
    """
    requests = RequestFactory(config)
    sample = requests.fixed if requests.fixed is not None else requests.build(0)
    stats = RunStats(config.recipients, len(sample))
    del sample
    # Opened before the run, so that a bad path fails at once, not after a long run.
    json_file = open_json(json_path) if parent is None else parent.result_file()
    bar = bar_wanted(
        quiet=quiet, counter=config.counter, verbose=config.verbose, stream=sys.stderr
    )
    # Signals can only be caught in the main thread (tests run this in others).
    catch_signals = threading.current_thread() is threading.main_thread()
    received: list[int] = []

    sink_counts: dict[str, Any] = {}

    async def main() -> RunResult:
        if embedded_sink_args is None:
            return await load(config.target)
        # Imported here: only --embedded-sink runs need the child process machinery.
        from qmqpsource.cli.embedded import EmbeddedSinkError, embedded_sink

        try:
            async with embedded_sink(embedded_sink_args) as sink:
                run_result = await load(sink.target)
        except EmbeddedSinkError as exc:
            raise AddressError(f"embedded sink: {exc}") from None
        sink_counts.update(sink.result or {})
        return run_result

    async def load(target: str) -> RunResult:
        endpoint = await resolve(target, config.family)
        stats.begin()
        async with trio.open_nursery() as nursery:
            if bar or interval:
                total = config.messages if config.duration is None else None
                await nursery.start(
                    partial(run_progress, stats, total, bar=bar, interval=interval)
                )
            # Built once the bar is up, so that its warnings go through rich's stderr.
            runner = Runner(config, endpoint, requests, stats, budget=budget)
            if catch_signals:
                await nursery.start(partial(_watch_signals, runner, received))
            if parent is not None:
                nursery.start_soon(parent.watch, runner.abort)
            run_result = await runner.run()
            nursery.cancel_scope.cancel()
        return run_result

    def report(status: str, failure: str | None) -> None:
        stats.finish()
        if quiet and json_file is None:
            return  # nothing to print or write
        # Imported here: a quiet run without --json needs neither.
        from qmqpsource.results import result
        from qmqpsource.results.summary import format_summary

        value = result.from_stats(
            stats, config.as_dict(), tool_name=PROG, tool_version=__version__,
            status=status, failure=failure,
        )
        if not quiet and status != "failed":
            sys.stderr.write(format_summary(value))
            if sink_counts:
                sys.stderr.write(sink_line(sink_counts, stats.accepted))
            sys.stderr.flush()
        if json_file is not None:
            write_json(json_file, value, {"sink": sink_counts} if sink_counts else None)

    try:
        run_result = trio.run(main)
    except AddressError as exc:
        report("failed", str(exc))
        fatal(PROG, str(exc))
    except BaseException as exc:
        # A Ctrl-C before the signal watcher is up arrives as KeyboardInterrupt, maybe
        # wrapped in an exception group by the nursery it crossed.
        if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
        ):
            report("interrupted", None)
            sys.stderr.write(f"{PROG}: interrupted\n")
            return 130
        report("failed", f"{type(exc).__name__}: {exc}")
        raise
    if parent is not None and parent.gone:
        return 1  # an orphan: nobody to report to
    if received:
        signum = received[0]
        report("interrupted", run_result.failure)
        sys.stderr.write(f"{PROG}: {_SIGNAL_WORD[signal.Signals(signum)]}\n")
        return _SIGNAL_EXIT[signal.Signals(signum)]
    report("completed" if run_result.failure is None else "failed", run_result.failure)
    if run_result.failure is not None:
        fatal(PROG, run_result.failure)
    if run_result.stats.failed:
        sys.stderr.write(
            f"{PROG}: {run_result.stats.failed} of "
            f"{counted(run_result.stats.attempted, 'message')} failed\n"
        )
    return run_result.exit_status


def open_json(path: str | None) -> OutputFile | None:
    """--json's file, checked now (and left as it is until the end: see outfile.py)."""
    if path is None:
        return None
    from qmqpsource.cli.outfile import OutputError, OutputFile  # here: only --json needs it

    try:
        return OutputFile.at(path)
    except OutputError as exc:
        fatal(PROG, str(exc))


def sink_line(counts: dict[str, Any], accepted: int) -> str:
    replies = counts.get("replies", {})
    seen = replies.get("K", 0)
    verdict = "agrees" if seen == accepted else f"DISAGREES: source counted {accepted} accepted"
    return (
        f"sink: {counted(counts.get('connections', 0), 'connection')}, "
        f"{counted(counts.get('messages', 0), 'message')}, "
        f"{counted(counts.get('recipients', 0), 'recipient')}; replies K {seen}, "
        f"Z {replies.get('Z', 0)}, D {replies.get('D', 0)}; malformed "
        f"{counts.get('malformed', 0)} ({verdict})\n"
    )


def write_json(
    file: OutputFile, value: result.Result, extra: Mapping[str, Any] | None = None
) -> None:
    # Imported already: the caller made ``value`` and ``file`` with them.
    from qmqpsource.cli.outfile import OutputError
    from qmqpsource.results import result

    try:
        file.write(result.dumps(value, extra))
    except OutputError as exc:
        fatal(PROG, str(exc))
