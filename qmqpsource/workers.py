"""--workers N: N qmqp-source processes on this host, each doing its shard, merged exactly.

One Python process tops out at one core; the load, like Postfix's C tool, is
mostly kernel work per connection, so a second process on a second core nearly
doubles what the client can offer. Each worker is this same program with
--shard j/N (the same sharding that spreads a run over hosts) and its own
--json; the parent merges those results with qmqp-report's merge.

Signals: workers run in their own sessions, so that a terminal's Ctrl-C reaches
the parent only; the parent passes each SIGINT/SIGTERM on to every worker (the
first: finish in-flight messages; the second: stop at once). A worker that
fails fatally (without -A) ends the run for all, as one process would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

from qmqpsource import __version__, result
from qmqpsource.embedded import EmbeddedSinkError, embedded_sink
from qmqpsource.outcome import Outcome
from qmqpsource.summary import format_summary

__all__ = ["WORKER_TARGET_PLACEHOLDER", "WorkerRun", "run_workers"]

PROG = "qmqp-source"
# Stands for the embedded sink's address in the workers' argv until the sink is up.
WORKER_TARGET_PLACEHOLDER = "{embedded-sink}"
# A worker asked to stop gets this long (beyond its own 2 s grace) before it is killed.
STOP_TIMEOUT = 10.0
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
_SIGNAL_WORD = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


@dataclass
class WorkerRun:
    """One worker: its command, JSON file, and how it ended."""

    index: int
    argv: list[str]
    json_path: str
    returncode: int | None = None
    process: trio.Process | None = None
    # Whether this run signalled it: a worker that had not yet set up its own handling
    # dies of the signal, which is then no news to report.
    signalled: bool = False


async def _run_one(worker: WorkerRun, failed: trio.Event) -> None:
    process = await trio.lowlevel.open_process(
        worker.argv, stdin=subprocess.DEVNULL, start_new_session=True
    )
    worker.process = process
    try:
        await process.wait()
    finally:
        # Cancelled (the parent is going down hard): never leave a worker behind.
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.terminate()
                with trio.move_on_after(STOP_TIMEOUT):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    worker.returncode = process.returncode
    if process.returncode == 1:
        failed.set()


def _signal_all(workers: Sequence[WorkerRun], signum: int) -> None:
    for worker in workers:
        process = worker.process
        if process is not None and process.returncode is None:
            worker.signalled = True
            process.send_signal(signum)


async def _stop_on_failure(
    workers: Sequence[WorkerRun], failed: trio.Event, keep_going: bool
) -> None:
    await failed.wait()
    if not keep_going:
        # One worker's fatal failure ends the run, as it would in one process.
        _signal_all(workers, signal.SIGTERM)


async def _forward_signals(workers: Sequence[WorkerRun], received: list[int]) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            received.append(signum)
            _signal_all(workers, signum)


def run_workers(
    argvs: Sequence[list[str]],
    *,
    keep_going: bool,
    quiet: bool,
    json_path: str | None,
    embedded_sink_args: Sequence[str] | None = None,
) -> int:
    """Run one worker per argv (each without --json, which is added here); merge; report."""
    from qmqpsource.launch import fatal, open_json, sink_line, write_json

    json_file = open_json(json_path)
    received: list[int] = []
    with tempfile.TemporaryDirectory(prefix="qmqp-workers-") as tmp:
        workers = [
            WorkerRun(n, [*argv, "--json", os.path.join(tmp, f"{n}.json")],
                      os.path.join(tmp, f"{n}.json"))
            for n, argv in enumerate(argvs)
        ]

        sink_counts: dict[str, Any] = {}

        async def main() -> None:
            if embedded_sink_args is None:
                await run_all()
                return
            async with embedded_sink(embedded_sink_args) as sink:
                for worker in workers:
                    worker.argv = [sink.target if a == WORKER_TARGET_PLACEHOLDER else a
                                   for a in worker.argv]
                await run_all()
            sink_counts.update(sink.result or {})

        async def run_all() -> None:
            failed = trio.Event()
            async with trio.open_nursery() as nursery:
                if threading.current_thread() is threading.main_thread():
                    nursery.start_soon(_forward_signals, workers, received)
                nursery.start_soon(_stop_on_failure, workers, failed, keep_going)
                async with trio.open_nursery() as runs:
                    for worker in workers:
                        runs.start_soon(_run_one, worker, failed)
                nursery.cancel_scope.cancel()

        try:
            trio.run(main)
        except EmbeddedSinkError as exc:
            fatal(f"embedded sink: {exc}")
        results: list[result.Result] = []
        lost: list[str] = []
        for worker in workers:
            try:
                results.append(result.read(worker.json_path))
            except result.ResultError:
                if not (worker.signalled and (worker.returncode or 0) < 0):
                    lost.append(_describe(worker))
    for line in lost:
        sys.stderr.write(f"{PROG}: {line}\n")
    if not results:
        fatal("no worker left a result")
    merged = result.merge(results, tool_name=PROG, tool_version=__version__)
    statuses = [w.returncode for w in workers]
    if received:
        merged = _with_status(merged, "interrupted")
    elif lost or any(code not in (0, 1) for code in statuses):
        merged = _with_status(merged, "failed")
    failed_fatally = merged.status == "failed"
    if not quiet and not failed_fatally:
        sys.stderr.write(format_summary(merged))
        if sink_counts:
            sys.stderr.write(sink_line(sink_counts, merged.outcomes[Outcome.ACCEPTED]))
        sys.stderr.flush()
    if json_file is not None:
        extra: dict[str, Any] = {"workers": len(workers)}
        if sink_counts:
            extra["sink"] = sink_counts
        write_json(json_file, merged, extra)
    if received:
        signum = signal.Signals(received[0])
        sys.stderr.write(f"{PROG}: {_SIGNAL_WORD[signum]}\n")
        return _SIGNAL_EXIT[signum]
    if failed_fatally:
        return 1  # the worker that failed has printed Postfix's fatal line
    failures = merged.attempted - merged.outcomes[Outcome.ACCEPTED]
    if failures:
        sys.stderr.write(f"{PROG}: {failures} of {merged.attempted} messages failed\n")
    return 1 if failures or any(code != 0 for code in statuses) else 0


def _describe(worker: WorkerRun) -> str:
    code = worker.returncode
    if code is not None and code < 0:
        how = f"was killed by signal {signal.Signals(-code).name}"
    else:
        how = f"exited with status {code}"
    return f"worker {worker.index} {how} without a result; the others' results are kept"


def _with_status(value: result.Result, status: str) -> result.Result:
    from dataclasses import replace

    return replace(value, status=status)
