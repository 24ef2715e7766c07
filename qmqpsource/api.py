"""The Python API: put a load on a server, find the rate it takes, or run a qmqp-sink, from
a trio program or a test; everything the command line does.

    from qmqpsource import SinkConfig, SourceConfig, open_sink, run_load

    async with open_sink(SinkConfig(endpoint="127.0.0.1:0")) as sink:
        result = await run_load(SourceConfig(target=sink.address, sessions=4, messages=50))
    assert result.counts.accepted == 50

``run_load`` and ``find_rate`` run in the caller's trio loop, under its cancel scopes:
cancel the caller and the sessions (and worker processes, and an embedded sink) stop,
with every socket closed; a ``LoadControl`` stops one gracefully and keeps its result
so far. ``run_load_sync`` and ``find_rate_sync`` are for callers without a trio loop.
Nothing here prints, touches signals or writes files: lines go to ``logging``
(logs.py), and the command line decides what to print.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import trio

from qmqpsource.errors import ConfigError
from qmqpsource.load.control import GRACE_SECONDS, LoadControl
from qmqpsource.load.embedded import EMBEDDED_TARGET
from qmqpsource.load.run import run_load
from qmqpsource.load.search import FoundRate, find_rate
from qmqpsource.load.workers import WorkerPool
from qmqpsource.results.checks import Check
from qmqpsource.results.findrate import Step
from qmqpsource.results.result import Result
from qmqpsource.results.timeline import DEFAULT_INTERVAL
from qmqpsource.sink.config import SinkConfig
from qmqpsource.sink.server import Sink
from qmqpsource.sink.stats import SinkStats
from qmqpsource.source.config import SourceConfig
from qmqpsource.trio_required import refuse_trio, require_trio

__all__ = [
    "EMBEDDED_TARGET", "GRACE_SECONDS", "FoundRate", "LoadControl", "RunningSink", "WorkerPool",
    "find_rate", "find_rate_sync", "open_sink", "run_load", "run_load_sync",
]


def run_load_sync(
    config: SourceConfig,
    *,
    checks: Sequence[str | Check] = (),
    interval: float = DEFAULT_INTERVAL,
    workers: int = 1,
    embedded_sink: Sequence[str] | None = None,
    start_at: datetime | None = None,
    run_id: str | None = None,
) -> Result:
    """``run_load`` for a caller without a trio loop (it runs one of its own). No
    ``control``: only a call in the loop that runs the load can stop it."""
    refuse_trio("run_load_sync", "run_load")
    return trio.run(partial(run_load, config, checks=checks, interval=interval,
                            workers=workers, embedded_sink=embedded_sink,
                            start_at=start_at, run_id=run_id))


def find_rate_sync(
    config: SourceConfig,
    *,
    checks: Sequence[str | Check],
    step_duration: float = 10.0,
    workers: int = 1,
    embedded_sink: Sequence[str] | None = None,
    on_step: Callable[[Step], object] | None = None,
    start_at: datetime | None = None,
    run_id: str | None = None,
) -> FoundRate:
    """``find_rate`` for a caller without a trio loop (it runs one of its own)."""
    refuse_trio("find_rate_sync", "find_rate")
    return trio.run(partial(find_rate, config, checks=checks, step_duration=step_duration,
                            workers=workers, embedded_sink=embedded_sink, on_step=on_step,
                            start_at=start_at, run_id=run_id))


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

    Its lines go to the ``qmqpsource.sink`` loggers (logs.py). Raises SinkError when it
    cannot listen. An exception of the block comes out as itself, not in the group that
    the sink's nursery would wrap it in (``except SinkError`` and a failed ``assert``
    read as they would without a sink).
    """
    require_trio("open_sink")
    if not isinstance(config, SinkConfig):
        raise ConfigError(f"config must be a SinkConfig, not {type(config).__name__}",
                          field="config")
    sink = Sink(config)
    try:
        async with trio.open_nursery() as nursery:
            addresses: list[str] = await nursery.start(sink.serve)
            try:
                yield RunningSink(addresses[0], addresses, sink.stats, sink)
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        alone = _alone(group)
        if alone is group:
            raise
        raise alone from None


def _alone(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one ordinary exception in ``group`` (nested groups of one opened), else the
    group itself: a cancellation, or several failures, stay as trio made them."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, Exception) and not isinstance(exc, BaseExceptionGroup) \
        else group
