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
inside the parent's loop, after the fork). Each sends its JSON result back up a
pipe of its own: no file, so nothing is left behind whoever dies.

Signals: workers run in their own sessions, so that a terminal's Ctrl-C reaches
the parent only; the parent passes each SIGINT/SIGTERM/SIGHUP on to every worker
(the first: finish in-flight messages; the second: stop at once). A worker that
fails fatally (without -A) ends the run for all, as one process would.

A worker never outlives its parent: on Linux the kernel kills it when the parent
dies (a parent-death signal); everywhere, the parent holds the target pipe open
for the whole run, and a worker that sees it close stops at once (ParentLink).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import trio

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource import __version__
from qmqpsource.cli import finish
from qmqpsource.cli.common import fatal
from qmqpsource.cli.embedded import EmbeddedSinkError, embedded_sink
from qmqpsource.cli.outfile import OutputFile
from qmqpsource.results import result
from qmqpsource.results.checks import Check, unjudged_failures
from qmqpsource.results.outcome import Outcome
from qmqpsource.source.budget import MessageBudget
from qmqpsource.source.config import SourceConfig

__all__ = ["ParentLink", "WorkerRun", "run_merged", "run_workers"]

# A worker asked to stop gets this long (beyond its own 2 s grace) before it is killed.
STOP_TIMEOUT = 10.0
# Without pidfd_open (Linux < 5.3), how often to look whether a worker has ended.
_POLL_INTERVAL = 0.02
# A worker's JSON result is a few KiB; anything past this is not one.
RESULT_LIMIT = 64 * 1024 * 1024
_END_OF_TARGET = b"\0"  # argv cannot hold it


@dataclasses.dataclass
class WorkerRun:
    """One worker: its config, process, result, and how it ended."""

    index: int
    config: SourceConfig
    pid: int = 0
    # The parent's end: the target goes through it, then it stays open as long as the
    # worker may run (its closing tells the worker to stop: see ParentLink).
    target_pipe: int = -1
    result_pipe: int = -1  # the parent's end: the worker's JSON result comes up it
    result_text: bytes = b""
    returncode: int | None = None
    # Whether this run signalled it: a worker that had not yet set up its own handling
    # dies of the signal, which is then no news to report.
    signalled: bool = False


@dataclasses.dataclass
class ParentLink:
    """A worker's ties to its parent: where its result goes, and how it learns that the
    parent is gone (the target pipe reads end-of-file)."""

    target_pipe: int  # the worker's end: end-of-file here means the parent is gone
    result_pipe: int  # the worker's end: its JSON result goes up it
    gone: bool = False

    def result_file(self) -> OutputFile:
        """Where the worker's JSON result goes: up the pipe to the parent."""
        return OutputFile.on_descriptor(self.result_pipe, "the parent's pipe")

    async def watch(self, abort: Callable[[], None]) -> None:
        """``abort()`` the run at once when the parent is gone: nobody would read its result."""
        fd = self.target_pipe
        os.set_blocking(fd, False)
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                if os.read(fd, 512):
                    continue  # the parent sends nothing after the target: not expected
            except BlockingIOError:
                continue
            except OSError:
                pass
            break
        self.gone = True
        abort()


def _die_with_parent() -> Callable[[], None]:
    """What a worker calls first: on Linux, have the kernel kill it when the parent dies.

    Made in the parent, before the forks, so that ctypes is imported once. Elsewhere
    (macOS, the BSDs), ParentLink alone notices the parent's end.
    """
    parent = os.getpid()
    prctl = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None

    def die_with_parent() -> None:
        if prctl is not None:
            prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the signal was armed

    return die_with_parent


def _read_target(pipe: int) -> str | None:
    """The target the parent sends (None: the run was called off before it started)."""
    data = b""
    while _END_OF_TARGET not in data:
        chunk = os.read(pipe, 4096)
        if not chunk:
            return None
        data += chunk
    return data.split(_END_OF_TARGET, 1)[0].decode("utf-8", "surrogateescape")


def _worker_main(
    worker: WorkerRun, pipes: tuple[int, int], budget: MessageBudget | None,
    timeline_step: float | None,
) -> int:
    """In the forked worker: wait for the target, run the shard, return the exit status."""
    from qmqpsource.cli.launch import run_source

    os.setsid()  # out of the terminal's process group: signals come via the parent
    target_pipe, result_pipe = pipes
    target = _read_target(target_pipe)
    if not target:
        return 1  # the parent gave up before the run started; it says why
    config = dataclasses.replace(worker.config, target=target)
    # quiet: a worker's --interval is its timeline's step, no progress lines.
    return run_source(config, quiet=True, budget=budget, interval=timeline_step,
                      parent=ParentLink(target_pipe, result_pipe))


def _fork(
    worker: WorkerRun,
    forked: Sequence[WorkerRun],
    budget: MessageBudget | None,
    die_with_parent: Callable[[], None],
    timeline_step: float | None = None,
) -> None:
    """Fork ``worker``; ``forked`` are the workers forked before it."""
    target_read, target_write = os.pipe()
    result_read, result_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            die_with_parent()
            os.close(target_write)
            os.close(result_read)
            # The parent's ends of the earlier workers' pipes came along with the fork:
            # held open here, they would keep those workers from seeing the end of
            # their target (or the parent's death) until this one exits, and the
            # workers would run one by one.
            for earlier in forked:
                for fd in (earlier.target_pipe, earlier.result_pipe):
                    if fd >= 0:
                        os.close(fd)
            status = _worker_main(worker, (target_read, result_write), budget, timeline_step)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # a worker must never return into the parent's code
            sys.stderr.write(f"{PROG}: fatal: worker {worker.index}: {exc!r}\n")
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)
    os.close(target_read)
    os.close(result_write)
    worker.pid = pid
    worker.target_pipe = target_write
    worker.result_pipe = result_read


def _send_target(workers: Sequence[WorkerRun], target: str) -> None:
    """Start the workers; their pipes stay open (see ParentLink)."""
    data = target.encode("utf-8", "surrogateescape") + _END_OF_TARGET
    for worker in workers:
        with contextlib.suppress(OSError):  # a worker that already died
            os.write(worker.target_pipe, data)


def _close_pipes(workers: Sequence[WorkerRun]) -> None:
    """Workers still waiting for a target read its end and exit; others stop at once."""
    for worker in workers:
        for name in ("target_pipe", "result_pipe"):
            fd = getattr(worker, name)
            if fd >= 0:
                os.close(fd)
                setattr(worker, name, -1)


async def _read_result(worker: WorkerRun) -> None:
    """What the worker sends up its result pipe, until it closes it (at its exit)."""
    fd = worker.result_pipe
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    while size <= RESULT_LIMIT:
        await trio.lowlevel.wait_readable(fd)
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    worker.result_text = b"".join(chunks) if size <= RESULT_LIMIT else b""


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
        await _read_result(worker)
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
    workers: Sequence[WorkerRun], signals: list[int], *, task_status: trio.TaskStatus[None]
) -> None:
    with trio.open_signal_receiver(*finish.STOP_SIGNALS) as incoming:
        task_status.started()  # the handlers are in before any worker gets its target
        async for signum in incoming:
            signals.append(signum)
            _signal_all(workers, signum)


def run_workers(
    configs: Sequence[SourceConfig],
    *,
    keep_going: bool,
    quiet: bool,
    json_path: str | None,
    embedded_sink_args: Sequence[str] | None = None,
    budget: MessageBudget | None = None,
    checks: Sequence[Check] = (),
    timeline_step: float | None = None,
) -> int:
    """One worker per config; merge their results; report (``checks`` judged against the
    merge); exit status.

    Without ``budget`` each config is a shard with its own -m; with one, the workers
    take their messages from it as they go (see budget.py). Each worker records its
    timeline at ``timeline_step`` (default: timeline.DEFAULT_INTERVAL); the merge aligns
    them on wall-clock time.
    """
    workers = [WorkerRun(n, config) for n, config in enumerate(configs)]
    die_with_parent = _die_with_parent()
    try:
        for n, worker in enumerate(workers):
            _fork(worker, workers[:n], budget, die_with_parent, timeline_step)
    finally:
        if budget is not None:
            budget.close()  # the parent takes nothing from it
    try:
        json_file = finish.open_json(json_path)  # after the forks, so that no worker holds it
    except SystemExit:
        _reap(workers)  # the workers waiting for a target exit at once
        raise
    run = ParentRun(workers, keep_going, configs[0].target, embedded_sink_args)
    try:
        trio.run(run.main)
    except EmbeddedSinkError as exc:
        _reap(workers)
        fatal(PROG, f"embedded sink: {exc}")
    finally:
        _reap(workers)
    merged = _merge(workers, interrupted=bool(run.signals))
    merged = finish.report(merged, quiet=quiet, json_file=json_file,
                           sink_counts=run.sink_counts, extra={"workers": len(workers)},
                           checks=checks)
    signum = run.signals[0] if run.signals else None
    if signum is None and merged.status == "failed":
        return 1  # the worker that failed has printed Postfix's fatal line
    failed = merged.attempted - merged.outcomes[Outcome.ACCEPTED]
    status = finish.exit_status(signum, failed=failed, attempted=merged.attempted,
                                checks=merged.checks,
                                unjudged=unjudged_failures(checks, merged.outcomes))
    # A worker's 1 is its failed messages (a fatal one made the merge "failed", above):
    # the parent has judged those of all workers, against the checks.
    return status or int(any(worker.returncode not in (0, 1) for worker in workers))


def run_merged(
    configs: Sequence[SourceConfig], *, keep_going: bool
) -> tuple[result.Result, list[int]]:
    """One run of a worker per config, for a caller that reports it itself (--find-rate
    runs one for each of its steps): the merged result and the stop signals received."""
    workers = [WorkerRun(n, config) for n, config in enumerate(configs)]
    die_with_parent = _die_with_parent()
    for n, worker in enumerate(workers):
        _fork(worker, workers[:n], None, die_with_parent)
    run = ParentRun(workers, keep_going, configs[0].target, None)
    try:
        trio.run(run.main)
    finally:
        _reap(workers)
    return _merge(workers, interrupted=bool(run.signals)), run.signals


@dataclasses.dataclass
class ParentRun:
    """The parent's side of a run: the workers, and what it saw of them."""

    workers: list[WorkerRun]
    keep_going: bool
    target: str
    embedded_sink_args: Sequence[str] | None
    signals: list[int] = dataclasses.field(default_factory=list)  # the stop signals
    sink_counts: dict[str, Any] = dataclasses.field(default_factory=dict)

    async def main(self) -> None:
        workers = self.workers
        failed = trio.Event()
        async with trio.open_nursery() as nursery:
            if threading.current_thread() is threading.main_thread():
                await nursery.start(partial(_forward_signals, workers, self.signals))
            nursery.start_soon(_stop_on_failure, workers, failed, self.keep_going)
            if self.embedded_sink_args is None:
                _send_target(workers, self.target)
                await self._supervise_all(failed)
            else:
                # The sink stays up until every worker has ended.
                async with embedded_sink(self.embedded_sink_args) as sink:
                    _send_target(workers, sink.target)
                    await self._supervise_all(failed)
                self.sink_counts.update(sink.result or {})
            nursery.cancel_scope.cancel()

    async def _supervise_all(self, failed: trio.Event) -> None:
        async with trio.open_nursery() as runs:
            for worker in self.workers:
                runs.start_soon(_supervise, worker, failed)


def _merge(workers: Sequence[WorkerRun], *, interrupted: bool) -> result.Result:
    """The workers' results as one, with the run's status; a line for each one lost."""
    results: list[result.Result] = []
    lost: list[str] = []
    for worker in workers:
        try:
            results.append(result.loads(worker.result_text.decode("utf-8")))
        except (result.ResultError, UnicodeDecodeError):
            if not (worker.signalled and (worker.returncode or 0) < 0):
                lost.append(_lost_result(worker))
    for line in lost:
        sys.stderr.write(f"{PROG}: {line}\n")
    if not results:
        fatal(PROG, "no worker left a result")
    merged = result.merge(results, tool_name=PROG, tool_version=__version__)
    if interrupted:
        return dataclasses.replace(merged, status="interrupted")
    if lost or any(worker.returncode not in (0, 1) for worker in workers):
        return dataclasses.replace(merged, status="failed")
    return merged


def _reap(workers: Sequence[WorkerRun]) -> None:
    """Close every pipe (a worker still waiting for its target exits at once; one still
    running stops) and make sure every worker has ended."""
    _close_pipes(workers)
    for worker in workers:
        if worker.returncode is None and worker.pid:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(worker.pid, 0)
                worker.returncode = os.waitstatus_to_exitcode(status)


def _lost_result(worker: WorkerRun) -> str:
    code = worker.returncode
    if code is not None and code < 0:
        how = f"was killed by signal {signal.Signals(-code).name}"
    else:
        how = f"exited with status {code}"
    return f"worker {worker.index} {how} without a result; the others' results are kept"
