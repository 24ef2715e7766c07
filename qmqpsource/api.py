"""The Python API: put a load on a server, or run a qmqp-sink, from a trio program or a test.

    from qmqpsource import SinkConfig, SourceConfig, open_sink, run_load

    async with open_sink(SinkConfig(endpoint="127.0.0.1:0")) as sink:
        result = await run_load(SourceConfig(target=sink.address, sessions=4, messages=50))
    assert result.counts.accepted == 50

Both run in the caller's trio loop, under its cancel scopes: cancel the caller and the
sessions (or the sink) stop, with every socket closed. ``run_load_sync`` is for callers
without a trio loop; ``find_rate`` is qmqp-source --find-rate. Nothing here touches
signals, the terminal or files: that is the command line's business.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from qmqpsource import SOURCE_PROG, __version__, values
from qmqpsource.results import result
from qmqpsource.results.checks import Check, judge, parse_check
from qmqpsource.results.findrate import Step, take_step
from qmqpsource.results.result import Result
from qmqpsource.results.stats import RunStats
from qmqpsource.results.timeline import DEFAULT_INTERVAL, check_interval
from qmqpsource.sink.config import SinkConfig
from qmqpsource.sink.server import Sink
from qmqpsource.sink.stats import SinkStats
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.connector import resolve
from qmqpsource.source.limits import check_resources
from qmqpsource.source.ratesearch import START_RATE, RateSearch, settle_seconds
from qmqpsource.source.request import RequestFactory
from qmqpsource.source.runner import Runner
from qmqpsource.trio_required import require_trio
from qmqpsource.values import MAX_COUNT

__all__ = ["FoundRate", "RunningSink", "find_rate", "open_sink", "run_load", "run_load_sync"]


async def run_load(
    config: SourceConfig, *, checks: Sequence[str | Check] = (),
    interval: float = DEFAULT_INTERVAL,
) -> Result:
    """Run the load that ``config`` describes; its result, with ``checks`` judged, and
    its ``timeline`` in steps of ``interval`` seconds (at least MIN_INTERVAL).

    Raises AddressError (a bad or unknown target), LimitError (more sessions or memory
    than this machine has), CheckError (a check that cannot be parsed), ValueProblem (an
    ``interval`` that is no step), all before the
    run starts. A failed message ends the run as on the command line, unless
    ``config.keep_going``: the result's ``status`` and ``failure`` say so.
    """
    require_trio("run_load")
    judged = [c if isinstance(c, Check) else parse_check(c) for c in checks]
    check_interval(interval)
    check_resources(config)
    requests = RequestFactory(config)
    stats = RunStats(config.recipients, requests.size, interval)
    endpoint = await resolve(config.target, config.family)
    stats.begin()
    run_result = await Runner(config, endpoint, requests, stats).run()
    stats.finish()
    value = result.from_stats(
        stats, config.as_dict(), tool_name=SOURCE_PROG, tool_version=__version__,
        status="completed" if run_result.failure is None else "failed",
        failure=run_result.failure,
    )
    return dataclasses.replace(value, checks=tuple(judge(judged, value)))


def run_load_sync(
    config: SourceConfig, *, checks: Sequence[str | Check] = (),
    interval: float = DEFAULT_INTERVAL,
) -> Result:
    """``run_load`` for a caller without a trio loop (it runs one of its own)."""
    return trio.run(partial(run_load, config, checks=checks, interval=interval))


@dataclass(frozen=True)
class FoundRate:
    """What ``find_rate`` found: the highest rate that held (None: none did), why the
    search stopped, and its steps (each with its rate, result, verdicts and verdict)."""

    rate: float | None
    stopped: str
    steps: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        """As the command line's JSON field ``find_rate`` has it (its steps, answer)."""
        return {"rate": self.rate, "stopped": self.stopped,
                "steps": [step.to_dict() for step in self.steps]}


async def find_rate(
    config: SourceConfig, *, checks: Sequence[str | Check], step_duration: float = 10.0
) -> FoundRate:
    """qmqp-source --find-rate in this trio loop: the highest rate at which every check
    holds, from ``config.rate`` (10 msg/s if None) up, as the README's "Finding the rate
    a server takes" says. ``config.messages`` and ``config.duration`` are not used; failed
    messages do not end a step. Raises ValueError without checks, and what ``run_load``
    raises before a run.
    """
    require_trio("find_rate")
    judged = [c if isinstance(c, Check) else parse_check(c) for c in checks]
    if not judged:
        raise ValueError("find_rate needs at least one check")
    values.seconds("step_duration", step_duration)
    whole = dataclasses.replace(config, messages=MAX_COUNT, keep_going=True,
                                rate=config.rate or START_RATE, duration=step_duration)
    search = RateSearch(config.rate or START_RATE)
    steps: list[Step] = []
    while (rate := search.next_rate()) is not None:
        for seconds in (settle_seconds(step_duration), step_duration):
            value = await run_load(dataclasses.replace(whole, rate=rate, duration=seconds))
        take_step(search, steps, judged, rate, step_duration, value)
    assert search.stop is not None
    return FoundRate(search.answer, search.stop.value, tuple(steps))


@dataclass(frozen=True)
class RunningSink:
    """A sink that ``open_sink`` runs: where it listens, and its live counts."""

    address: str  # the first listening address, as a target: "127.0.0.1:PORT"
    addresses: list[str]
    stats: SinkStats
    sink: Sink


@asynccontextmanager
async def open_sink(config: SinkConfig) -> AsyncIterator[RunningSink]:
    """Run a qmqp-sink in this trio loop while the block runs (port 0: a free one).

    Its log lines (``config.verbose``) go to stderr, and -c's counts to stdout, as on
    the command line. Raises SinkError (ListenError) when it cannot listen.
    """
    require_trio("open_sink")
    sink = Sink(config)
    async with trio.open_nursery() as nursery:
        addresses: list[str] = await nursery.start(sink.serve)
        try:
            yield RunningSink(addresses[0], addresses, sink.stats, sink)
        finally:
            nursery.cancel_scope.cancel()
