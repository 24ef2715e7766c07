"""One round over a worker pool: each worker runs its share; the parent relays stops,
relays log records, ends the round for all at the first fatal failure, and merges.

The merged result's status is the round's, not the shares' ("interrupted" only when the
caller stopped the load; "failed" when a share failed or a worker was lost), and its
``failure`` says why it failed. Checks are judged on it later, once (run.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Sequence

import trio

from qmqpsource import SOURCE_PROG, __version__
from qmqpsource.errors import AddressError, ConfigError, LimitError, RunError
from qmqpsource.load.budget import MessageBudget
from qmqpsource.load.channel import ChannelClosed, Kind, receive_frame
from qmqpsource.load.control import LoadControl
from qmqpsource.load.job import encode_job
from qmqpsource.load.workers import STOP_TIMEOUT, WorkerPool, WorkerProcess
from qmqpsource.results import result
from qmqpsource.results.figures import RunStatus
from qmqpsource.results.result import Result
from qmqpsource.source.config import SourceConfig

__all__ = ["run_round"]

# Errors a worker reports by name that keep their kind in the parent.
_ERRORS: dict[str, type[Exception]] = {
    "AddressError": AddressError, "LimitError": LimitError, "ConfigError": ConfigError,
}


async def run_round(
    pool: WorkerPool,
    configs: Sequence[SourceConfig],
    target: str,
    *,
    interval: float,
    budget: MessageBudget | None = None,
    control: LoadControl | None = None,
) -> Result:
    """Each of ``configs`` on a worker of ``pool``, against ``target``; the merged result.

    Raises RunError when a worker of the pool is gone, or none left a result; the error
    a worker reported (AddressError...) when every worker could not start.
    """
    if len(configs) > len(pool) or not all(w.alive for w in pool.workers[: len(configs)]):
        raise RunError("a worker process of the pool is gone")
    round_ = _Round(pool.workers[: len(configs)], keep_going=configs[0].keep_going)
    try:
        with control.attach(round_) if control is not None else contextlib.nullcontext():
            await round_.run(configs, target, interval, budget)
    finally:
        if budget is not None:
            budget.close()  # the parent takes nothing from it
    return round_.merged(interrupted=control is not None and control.stopped)


class _Round:
    """The parent's side of a round: the workers, what they sent, and how it ends."""

    def __init__(self, workers: Sequence[WorkerProcess], *, keep_going: bool) -> None:
        self.workers = list(workers)
        self.keep_going = keep_going
        self.results: list[Result] = []
        self.lost: list[str] = []
        self.errors: list[tuple[str, str]] = []
        self._running: set[WorkerProcess] = set()
        self._nursery: trio.Nursery | None = None
        self._scope = trio.CancelScope()
        # The stop or abort ordered so far, for a worker that gets its job after it (a
        # Ctrl-C while the pool starts), and the worker whose job is on its way.
        self._order: tuple[Kind, bytes] | None = None
        self._joining: WorkerProcess | None = None

    async def run(self, configs: Sequence[SourceConfig], target: str, interval: float,
                  budget: MessageBudget | None) -> None:
        with self._scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for worker, config in zip(self.workers, configs, strict=False):
                    payload, fds = encode_job(config, target, interval, budget)
                    self._running.add(worker)
                    self._joining = worker
                    try:
                        await worker.send(Kind.JOB, payload, fds)
                    except ChannelClosed:
                        await self._lose(worker)
                        continue
                    finally:
                        self._joining = None
                    if self._order is not None:  # ordered before this worker had its job
                        nursery.start_soon(_tell, worker, *self._order)
                    nursery.start_soon(self._collect, worker)
        self._nursery = None
        for worker in list(self._running):  # past STOP_TIMEOUT: killed, and lost
            worker.kill()
            await self._lose(worker)

    def stop(self, grace: float) -> None:
        self._tell(Kind.STOP, str(grace).encode())
        self._extend(grace + STOP_TIMEOUT)

    def abort(self) -> None:
        self._tell(Kind.ABORT)
        self._extend(STOP_TIMEOUT)

    def _tell(self, kind: Kind, payload: bytes = b"") -> None:
        if self._order is None or kind is Kind.ABORT:
            self._order = (kind, payload)
        if self._nursery is None:
            return  # run() tells each worker after its job
        for worker in self._running:
            if worker is not self._joining:  # one frame at a time on its channel
                self._nursery.start_soon(_tell, worker, kind, payload)

    def _extend(self, seconds: float) -> None:
        """Workers get ``seconds`` more to answer, no more: then they are killed."""
        self._scope.deadline = min(self._scope.deadline, trio.current_time() + seconds)

    async def _collect(self, worker: WorkerProcess) -> None:
        """The worker's log records and result; its end, if it dies instead."""
        while True:
            try:
                frame = await receive_frame(worker.channel, worker.reader)
            except ChannelClosed:
                await self._lose(worker)
                return
            if frame.kind is Kind.LOG:
                _relog(frame.payload)
                continue
            self._running.discard(worker)
            if frame.kind is Kind.RESULT:
                self._take_result(frame.payload)
            elif frame.kind is Kind.ERROR:
                self._take_error(frame.payload)
            return

    def _take_result(self, payload: bytes) -> None:
        try:
            value = result.loads(payload.decode("utf-8"))
        except (result.ResultError, UnicodeDecodeError) as exc:
            self.lost.append(f"a worker's result could not be read: {exc}")
            return
        self.results.append(value)
        if value.status == "failed" and not self.keep_going:
            self.abort()  # one share's fatal failure ends the round, as in one process

    def _take_error(self, payload: bytes) -> None:
        try:
            error = json.loads(payload)
            self.errors.append((str(error["kind"]), str(error["message"])))
        except (ValueError, KeyError, TypeError):
            self.errors.append(("RunError", "a worker could not say why it failed"))
        self.abort()

    async def _lose(self, worker: WorkerProcess) -> None:
        self._running.discard(worker)
        worker.channel.close()
        with trio.move_on_after(STOP_TIMEOUT):
            await worker.wait()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        self.lost.append(f"worker {worker.index} {worker.how_it_ended()} without a result")

    def merged(self, *, interrupted: bool) -> Result:
        if not self.results:
            if self.errors:
                kind, message = self.errors[0]
                raise _ERRORS.get(kind, RunError)(message)
            raise RunError("; ".join(self.lost) or "no worker left a result")
        value = result.merge(self.results, tool_name=SOURCE_PROG, tool_version=__version__)
        kept = "; the others' results are kept" if self.lost else ""
        failures = [r.failure for r in self.results if r.failure]
        failures += ["; ".join(self.lost) + kept] if self.lost else []
        failures += [message for _, message in self.errors]
        failed = any(r.status == "failed" for r in self.results) or self.lost or self.errors
        status: RunStatus = "interrupted" if interrupted else "failed" if failed else "completed"
        failure = "; ".join(dict.fromkeys(failures)) or None
        return dataclasses.replace(value, status=status, failure=failure)


async def _tell(worker: WorkerProcess, kind: Kind, payload: bytes) -> None:
    with contextlib.suppress(ChannelClosed):
        await worker.send(kind, payload)


def _relog(payload: bytes) -> None:
    """A worker's log record, as if it had been made here."""
    try:
        record = json.loads(payload)
        logging.getLogger(str(record["name"])).log(int(record["level"]), "%s",
                                                   str(record["message"]))
    except (ValueError, KeyError, TypeError):
        pass  # a malformed record is dropped: it is only a log line
