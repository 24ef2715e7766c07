"""How --find-rate runs one step: a settling run at the step's rate (not judged), then
the judged run, both open loop; in this process, or over --workers.

In this process, a step is one trio loop: an embedded sink (--embedded-sink) stays up
for both runs of the step. With --workers, each run is one round of workers (as a
plain --workers run is), merged; --embedded-sink is refused there (a sink started for
each round would lose what the settling run is for).

A stop signal ends the step as it ends a plain run (a grace for the messages in flight;
a second one, at once); the search then stops.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import trio

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource import __version__
from qmqpsource.addresses import AddressError
from qmqpsource.cli.finish import STOP_SIGNALS
from qmqpsource.cli.launch import GRACE_SECONDS
from qmqpsource.results import result
from qmqpsource.results.stats import RunStats
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.connector import Endpoint, resolve
from qmqpsource.source.ratesearch import settle_seconds
from qmqpsource.source.request import RequestFactory
from qmqpsource.source.runner import Runner

__all__ = ["InProcessSteps", "StepError", "StepRun", "StepRuns", "WorkerSteps"]


class StepError(Exception):
    """A step that could not run (no target, a lost worker): the search ends, fatally."""


class StepRun(NamedTuple):
    """A step's judged result (or, if stopped during the settling run, that one's), and
    the stop signals received during the step."""

    result: result.Result
    signals: list[int]


class StepRuns(Protocol):
    def run(self, rate: float, seconds: float) -> StepRun: ...


def _configs(whole: SourceConfig, rate: float, seconds: float) -> tuple[SourceConfig, ...]:
    """The step's settling run's config, then its judged run's. Failed messages do not
    end a step: they are what the checks judge (-A)."""
    step = dataclasses.replace(whole, rate=rate, keep_going=True)
    return (dataclasses.replace(step, duration=settle_seconds(seconds)),
            dataclasses.replace(step, duration=seconds))


class InProcessSteps:
    """Steps in this process, each in a trio loop of its own, whose signal watcher spans
    the whole step (the embedded sink's start included)."""

    def __init__(self, whole: SourceConfig, embedded_sink_args: Sequence[str] | None) -> None:
        self.whole = whole
        self.requests = RequestFactory(whole)
        self.embedded_sink_args = embedded_sink_args
        self._runner: Runner | None = None  # the load under way, for the watcher

    def run(self, rate: float, seconds: float) -> StepRun:
        signals: list[int] = []
        value = trio.run(self._main, _configs(self.whole, rate, seconds), signals)
        return StepRun(value, signals)

    async def _main(self, configs: Sequence[SourceConfig], signals: list[int]) -> result.Result:
        async with trio.open_nursery() as nursery:
            # Signals can only be caught in the main thread (tests run this in others).
            if threading.current_thread() is threading.main_thread():
                await nursery.start(self._watch_signals, signals)
            value = await self._step(configs, signals)
            nursery.cancel_scope.cancel()
        return value

    async def _step(self, configs: Sequence[SourceConfig], signals: list[int]) -> result.Result:
        if self.embedded_sink_args is None:
            return await self._runs(self.whole.target, configs, signals)
        # Imported here: only --embedded-sink needs the child process machinery.
        from qmqpsource.cli.embedded import EmbeddedSinkError, embedded_sink

        try:
            async with embedded_sink(self.embedded_sink_args) as sink:
                return await self._runs(sink.target, configs, signals)
        except EmbeddedSinkError as exc:
            raise AddressError(f"embedded sink: {exc}") from None

    async def _runs(
        self, target: str, configs: Sequence[SourceConfig], signals: list[int]
    ) -> result.Result:
        endpoint = await resolve(target, self.whole.family)
        for config in configs:
            value = await self._load(endpoint, config, signals)
            if signals:
                break
        return value

    async def _load(
        self, endpoint: Endpoint, config: SourceConfig, signals: list[int]
    ) -> result.Result:
        stats = RunStats(config.recipients, self.requests.size)
        stats.begin()
        runner = self._runner = Runner(config, endpoint, self.requests, stats)
        if signals:
            runner.stop(GRACE_SECONDS)  # stopped before it began: a result of no message
        try:
            run_result = await runner.run()
        finally:
            self._runner = None
        stats.finish()
        if run_result.failure is not None:
            raise StepError(run_result.failure)
        return result.from_stats(stats, config.as_dict(), tool_name=PROG,
                                 tool_version=__version__,
                                 status="interrupted" if signals else "completed")

    async def _watch_signals(
        self, signals: list[int], *, task_status: trio.TaskStatus[None]
    ) -> None:
        """As a plain run: the first stop signal gives a grace, a second one ends at once."""
        with trio.open_signal_receiver(*STOP_SIGNALS) as incoming:
            task_status.started()
            async for signum in incoming:
                first = not signals
                signals.append(signum)
                if self._runner is not None:
                    if first:
                        self._runner.stop(GRACE_SECONDS)
                    else:
                        self._runner.abort()


class WorkerSteps:
    """Steps over --workers: each run forks its round of workers and merges them."""

    def __init__(self, whole: SourceConfig, workers: int) -> None:
        self.whole = whole
        self.workers = workers

    def run(self, rate: float, seconds: float) -> StepRun:
        from qmqpsource.cli.plan import plan_run
        from qmqpsource.cli.workers import run_merged
        from qmqpsource.source.shard import Shard

        for config in _configs(self.whole, rate, seconds):
            plan = plan_run(config, Shard(0, 1), self.workers)
            value, signals = run_merged(plan.configs, keep_going=True)
            if signals:
                break
        if value.status == "failed":
            raise StepError(value.failure or "a worker failed")
        return StepRun(value, signals)

