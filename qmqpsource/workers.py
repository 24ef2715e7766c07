"""--workers N: N qmqp-source processes on this host, each doing its shard, merged exactly.

One Python process tops out at one core; the load, like Postfix's C tool, is
mostly kernel work per connection, so a second process on a second core adds
what the client can offer. Each worker runs this same program's run_source with
its share of the config and its own JSON; the parent merges those with
qmqp-report's merge. A run of so many messages (-m without --rate) shares one
budget that the workers take from as they go (budget.py), so that they finish
together; otherwise each is a shard, as hosts are with --shard.

Workers are forked before any trio loop or thread exists, so that they start
without paying for Python's start-up and imports again. Each waits on a pipe for
its target, which the parent sends once it is known (an embedded sink comes up
inside the parent's loop, after the fork).

Signals: workers run in their own sessions, so that a terminal's Ctrl-C reaches
the parent only; the parent passes each SIGINT/SIGTERM on to every worker (the
first: finish in-flight messages; the second: stop at once). A worker that
fails fatally (without -A) ends the run for all, as one process would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

import trio

from qmqpsource import __version__, result
from qmqpsource.budget import MessageBudget
from qmqpsource.config import SourceConfig
from qmqpsource.embedded import EmbeddedSinkError, embedded_sink
from qmqpsource.outcome import Outcome
from qmqpsource.summary import format_summary
from qmqpsource.wording import counted

__all__ = ["WorkerRun", "run_workers"]

PROG = "qmqp-source"
# A worker asked to stop gets this long (beyond its own 2 s grace) before it is killed.
STOP_TIMEOUT = 10.0
# Without pidfd_open (Linux < 5.3), how often to look whether a worker has ended.
_POLL_INTERVAL = 0.02
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
_SIGNAL_WORD = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


@dataclasses.dataclass
class WorkerRun:
    """One worker: its config, JSON file, process, and how it ended."""

    index: int
    config: SourceConfig
    json_path: str
    pid: int = 0
    target_pipe: int = -1  # the parent's end: the target goes through it, then EOF
    returncode: int | None = None
    # Whether this run signalled it: a worker that had not yet set up its own handling
    # dies of the signal, which is then no news to report.
    signalled: bool = False


def _worker_main(worker: WorkerRun, target_pipe: int, budget: MessageBudget | None) -> int:
    """In the forked worker: wait for the target, run the shard, return the exit status."""
    from qmqpsource.launch import run_source

    os.setsid()  # out of the terminal's process group: signals come via the parent
    chunks = []
    while chunk := os.read(target_pipe, 4096):
        chunks.append(chunk)
    os.close(target_pipe)
    target = b"".join(chunks).decode("utf-8", "surrogateescape")
    if not target:
        return 1  # the parent gave up before the run started; it says why
    config = dataclasses.replace(worker.config, target=target)
    return run_source(config, quiet=True, json_path=worker.json_path, budget=budget)


def _fork(
    worker: WorkerRun, forked: Sequence[WorkerRun] = (), budget: MessageBudget | None = None
) -> None:
    """Fork ``worker``; ``forked`` are the workers forked before it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(write_end)
            # The parent's ends of the earlier workers' pipes came along with the fork:
            # held open here, they would keep those workers from seeing the end of
            # their target until this one exits, and the workers would run one by one.
            for earlier in forked:
                if earlier.target_pipe >= 0:
                    os.close(earlier.target_pipe)
            status = _worker_main(worker, read_end, budget)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # a worker must never return into the parent's code
            sys.stderr.write(f"{PROG}: fatal: worker {worker.index}: {exc!r}\n")
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)
    os.close(read_end)
    worker.pid = pid
    worker.target_pipe = write_end


def _send_target(workers: Sequence[WorkerRun], target: str | None) -> None:
    """Start the workers (a target) or release them (None: they exit quietly)."""
    for worker in workers:
        if worker.target_pipe < 0:
            continue
        with contextlib.suppress(OSError):  # a worker that already died
            if target is not None:
                os.write(worker.target_pipe, target.encode("utf-8", "surrogateescape"))
        os.close(worker.target_pipe)
        worker.target_pipe = -1


async def _wait_exit(pid: int) -> int:
    """Wait for a worker to end; its exit status as subprocess gives it (-N: signal N)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG: never blocks
            if done:
                return os.waitstatus_to_exitcode(status)
            if pidfd >= 0:
                await trio.lowlevel.wait_readable(pidfd)
            else:
                await trio.sleep(_POLL_INTERVAL)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


async def _supervise(worker: WorkerRun, failed: trio.Event) -> None:
    try:
        worker.returncode = await _wait_exit(worker.pid)
    finally:
        if worker.returncode is None:
            # Cancelled (the parent is going down hard): never leave a worker behind.
            with trio.CancelScope(shield=True):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)
                with trio.move_on_after(STOP_TIMEOUT):
                    worker.returncode = await _wait_exit(worker.pid)
                if worker.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signal.SIGKILL)
                    worker.returncode = await _wait_exit(worker.pid)
    if worker.returncode == 1:
        failed.set()


def _signal_all(workers: Sequence[WorkerRun], signum: int) -> None:
    for worker in workers:
        if worker.returncode is None:
            worker.signalled = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signum)


async def _stop_on_failure(
    workers: Sequence[WorkerRun], failed: trio.Event, keep_going: bool
) -> None:
    await failed.wait()
    if not keep_going:
        # One worker's fatal failure ends the run, as it would in one process.
        _signal_all(workers, signal.SIGTERM)


async def _forward_signals(
    workers: Sequence[WorkerRun], received: list[int], *, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()  # the handlers are in before any worker gets its target
        async for signum in signals:
            received.append(signum)
            _signal_all(workers, signum)


def run_workers(
    configs: Sequence[SourceConfig],
    *,
    keep_going: bool,
    quiet: bool,
    json_path: str | None,
    embedded_sink_args: Sequence[str] | None = None,
    budget: MessageBudget | None = None,
) -> int:
    """One worker per config; merge their results; report; exit status.

    Without ``budget`` each config is a shard with its own -m; with one, the workers
    take their messages from it as they go (see budget.py).
    """
    from qmqpsource.launch import fatal, open_json, sink_line, write_json

    received: list[int] = []
    sink_counts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qmqp-workers-") as tmp:
        workers = [
            WorkerRun(n, config, os.path.join(tmp, f"{n}.json"))
            for n, config in enumerate(configs)
        ]
        try:
            for n, worker in enumerate(workers):
                _fork(worker, workers[:n], budget)
        finally:
            if budget is not None:
                budget.close()  # the parent takes nothing from it
        # Opened after the fork, so that no worker holds the file.
        json_file = open_json(json_path)

        async def supervise_all(failed: trio.Event) -> None:
            async with trio.open_nursery() as runs:
                for worker in workers:
                    runs.start_soon(_supervise, worker, failed)

        async def main() -> None:
            failed = trio.Event()
            async with trio.open_nursery() as nursery:
                if threading.current_thread() is threading.main_thread():
                    await nursery.start(partial(_forward_signals, workers, received))
                nursery.start_soon(_stop_on_failure, workers, failed, keep_going)
                if embedded_sink_args is None:
                    _send_target(workers, configs[0].target)
                    await supervise_all(failed)
                else:
                    # The sink stays up until every worker has ended.
                    async with embedded_sink(embedded_sink_args) as sink:
                        _send_target(workers, sink.target)
                        await supervise_all(failed)
                    sink_counts.update(sink.result or {})
                nursery.cancel_scope.cancel()

        try:
            trio.run(main)
        except EmbeddedSinkError as exc:
            _reap(workers)
            fatal(f"embedded sink: {exc}")
        finally:
            _reap(workers)
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
        merged = dataclasses.replace(merged, status="interrupted")
    elif lost or any(code not in (0, 1) for code in statuses):
        merged = dataclasses.replace(merged, status="failed")
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
        sys.stderr.write(f"{PROG}: {failures} of {counted(merged.attempted, 'message')} failed\n")
    return 1 if failures or any(code != 0 for code in statuses) else 0


def _reap(workers: Sequence[WorkerRun]) -> None:
    """Release workers still waiting for a target and make sure every one has ended."""
    _send_target(workers, None)  # waiting ones read EOF and exit at once
    for worker in workers:
        if worker.returncode is None and worker.pid:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(worker.pid, 0)
                worker.returncode = os.waitstatus_to_exitcode(status)


def _describe(worker: WorkerRun) -> str:
    code = worker.returncode
    if code is not None and code < 0:
        how = f"was killed by signal {signal.Signals(-code).name}"
    else:
        how = f"exited with status {code}"
    return f"worker {worker.index} {how} without a result; the others' results are kept"
