"""A whole load: checked before it starts, run in this process or over worker processes,
against its target or an embedded sink, then judged once.

``run_load`` is what ``qmqp-source`` does and what the API's ``run_load`` is: the
command line only parses, calls this in its trio loop, and finishes (summary, JSON,
exit status). Nothing here prints or touches signals.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import NamedTuple

from qmqpsource.errors import CheckError, ConfigError, RunError
from qmqpsource.load.control import LoadControl
from qmqpsource.load.embedded import EMBEDDED_TARGET, EmbeddedSinkError, embedded_sink
from qmqpsource.load.inprocess import run_in_process
from qmqpsource.load.plan import RunPlan, plan_run
from qmqpsource.load.rounds import run_round
from qmqpsource.load.start import start_of
from qmqpsource.load.workers import WorkerPool, spawn_pool
from qmqpsource.results.checks import Check, judge, parse_check
from qmqpsource.results.identity import Shards
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.result import Result
from qmqpsource.results.timeline import DEFAULT_INTERVAL, check_interval
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.limits import check_resources
from qmqpsource.source.request import RequestFactory, message_file_size
from qmqpsource.source.shard import Shard
from qmqpsource.trio_required import require_trio

__all__ = ["EMBEDDED_TARGET", "Target", "check_config", "parse_checks", "plan_load",
           "preflight", "run_load", "run_plan", "target_of"]


def parse_checks(checks: Sequence[str | Check]) -> list[Check]:
    """Each check parsed now, before any work: CheckError for one that cannot be."""
    # One string is a sequence too: taken as one check, it would be read a letter at a time.
    if isinstance(checks, str | bytes) or not isinstance(checks, Sequence):
        raise CheckError(f"checks must be a list of checks, not {type(checks).__name__}",
                         field="checks")
    for check in checks:
        if not isinstance(check, str | Check):
            raise CheckError("checks must be strings like 'p99<250ms' or Checks, not "
                             f"{type(check).__name__}", field="checks")
    return [c if isinstance(c, Check) else parse_check(c) for c in checks]


def check_config(config: object) -> None:
    """A SourceConfig, or one line saying what came instead (not an AttributeError deep
    in the run: a dict of options, say)."""
    if not isinstance(config, SourceConfig):
        raise ConfigError(f"config must be a SourceConfig, not {type(config).__name__}",
                          field="config")


def plan_load(config: SourceConfig, workers: int) -> RunPlan:
    """The processes that run ``config``: its share (``shard_index`` of ``shard_count``)
    in this process, or over ``workers`` processes. ConfigError if the share is empty."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number, at least 1, not {workers!r}",
                          field="workers")
    plan = plan_run(config, Shard(config.shard_index, config.shard_count), workers)
    if not plan.configs:
        raise ConfigError(f"shard {config.shard_index}/{config.shard_count} of "
                          f"{config.messages} messages has none", field="shard_index")
    return plan


def preflight(config: SourceConfig) -> None:
    """Refuse now what would fail mid-run: an unreadable message file (-F), too little
    memory for the request, too few descriptors for the sessions."""
    size = None if config.message_file is None else message_file_size(config.message_file)
    check_resources(config, message_size=size)


def check_sink_options(sink_options: object) -> None:
    """The embedded sink's options, checked before it starts: a list of strings that
    qmqp-sink takes, without those the embedded sink sets itself (ConfigError)."""
    if isinstance(sink_options, str | bytes) or not isinstance(sink_options, Sequence) or \
            not all(isinstance(option, str) and "\0" not in option for option in sink_options):
        raise ConfigError("embedded_sink must be a list of qmqp-sink's options as strings "
                          "(without NUL), like ['--tempfail', '0.1']", field="embedded_sink")
    # Parsed by qmqp-sink's own parser, which lives with the command.
    from qmqpsource.cli.common import UsageFailure
    from qmqpsource.cli.sink import check_embedded_options

    try:
        check_embedded_options(sink_options)
    except UsageFailure as exc:
        why = str(exc).removeprefix("--sink-options: ")
        raise ConfigError(f"embedded_sink: {why}", field="embedded_sink") from None


class Target(NamedTuple):
    """Where a load connects, and the embedded sink's counts once it stopped (if any)."""

    address: str
    sink_counts: dict[str, object] | None
    # Why the embedded sink is to blame for failures, if it ended before the load did.
    sink_gone: str | None = None


@contextlib.asynccontextmanager
async def target_of(
    config: SourceConfig, sink_options: Sequence[str] | None
) -> AsyncIterator[list[Target]]:
    """The load's target for the block: ``config.target``, or an embedded sink (started
    with ``sink_options``, qmqp-sink's options) that runs for the block. The list holds
    one Target, whose sink counts are filled in when the block ends."""
    if sink_options is None:
        if config.target == EMBEDDED_TARGET:
            raise ConfigError(f"target {EMBEDDED_TARGET!r} is an embedded sink: give "
                              "embedded_sink (its qmqp-sink options, [] for none)",
                              field="target")
        yield [Target(config.target, None)]
        return
    if config.target != EMBEDDED_TARGET:
        raise ConfigError(f"an embedded sink is the target: target must be "
                          f"{EMBEDDED_TARGET!r}, not {config.target!r}", field="target")
    check_sink_options(sink_options)
    holder: list[Target] = []
    try:
        async with embedded_sink(sink_options) as sink:
            holder.append(Target(sink.target, None))
            yield holder
        gone = (f"the embedded sink exited during the run (status {sink.returncode})"
                if sink.exited_early else None)
        holder[0] = Target(sink.target, dict(sink.result or {}), gone)
    except EmbeddedSinkError as exc:
        raise RunError(f"embedded sink: {exc}") from None


def _blame_the_sink(value: Result, gone: str | None) -> Result:
    """A run whose embedded sink ended before it did: its failures are the sink's end,
    not the server's answer. Said first, and the run failed (unless it was stopped)."""
    if gone is None or value.status == "interrupted":
        return value
    if value.attempted == value.outcomes[Outcome.ACCEPTED]:
        return value  # every message in before the sink went: nothing to blame on it
    return dataclasses.replace(value, status="failed",
                               failure="; ".join(filter(None, [gone, value.failure])))


async def run_plan(
    plan: RunPlan,
    target: str,
    *,
    interval: float,
    pool: WorkerPool | None,
    control: LoadControl | None,
    requests: RequestFactory | None = None,
) -> Result:
    """One run of ``plan`` against ``target``: here, or a round over ``pool``."""
    if not plan.workers:
        return await run_in_process(plan.configs[0], target, interval=interval,
                                    control=control, requests=requests)
    assert pool is not None
    budget = None
    if plan.budget is not None:
        from qmqpsource.load.budget import MessageBudget

        budget = MessageBudget(plan.budget, len(plan.configs))
    return await run_round(pool, plan.configs, target, interval=interval, budget=budget,
                           control=control)


@contextlib.asynccontextmanager
async def pool_for(plan: RunPlan, workers: int | WorkerPool) -> AsyncIterator[WorkerPool | None]:
    """The worker pool a plan runs on: the caller's, or one spawned for the block."""
    if not plan.workers:
        yield None
    elif isinstance(workers, WorkerPool):
        if len(workers) < len(plan.configs):
            raise ConfigError(f"the plan needs {len(plan.configs)} workers; the pool has "
                              f"{len(workers)}", field="workers")
        yield workers
    else:
        async with spawn_pool(len(plan.configs)) as pool:
            yield pool


async def run_load(
    config: SourceConfig,
    *,
    checks: Sequence[str | Check] = (),
    interval: float = DEFAULT_INTERVAL,
    workers: int | WorkerPool = 1,
    embedded_sink: Sequence[str] | None = None,
    control: LoadControl | None = None,
    start_at: datetime | None = None,
    run_id: str | None = None,
) -> Result:
    """Run the load that ``config`` describes and return its result, ``checks`` judged.

    ``interval``: the timeline's step. ``workers``: processes that share the load (a
    number, or a pool forked before the trio loop started). ``embedded_sink``: start a
    qmqp-sink with these options (``[]``: none) and load it, ``config.target`` being
    ``"embedded-sink"``; its counts are the result's ``sink``. ``control``: stop or
    abort the load from outside (the result then has the status "interrupted").
    ``start_at``: start then (an aware datetime), target and workers up before it.
    ``run_id``: the run this is (shared by its shards); by default made of the start
    and ``config.shard_count``. The result holds shard ``config.shard_index``.

    Raises, before the run: CheckError, ConfigError, AddressError (a target that cannot
    be resolved), LimitError; during it: RunError (a worker lost with no result, an
    embedded sink that did not start). A failed message is no exception: the result's
    ``status`` and ``failure`` say so (unless ``config.keep_going``).
    """
    require_trio("run_load")
    check_config(config)
    judged = parse_checks(checks)
    check_interval(interval)
    start = start_of(start_at, run_id)
    plan = plan_load(config, len(workers) if isinstance(workers, WorkerPool) else workers)
    preflight(plan.configs[0])
    async with target_of(config, embedded_sink) as target, pool_for(plan, workers) as pool:
        await start.wait(control)
        value = await run_plan(plan, target[0].address, interval=interval, pool=pool,
                               control=control)
    value = _blame_the_sink(value, target[0].sink_gone)
    value = dataclasses.replace(
        value, sink=target[0].sink_counts, workers=len(plan.configs) if plan.workers else None,
        run_id=start.run_id_of(value.started_at, config.shard_count),
        shards=Shards.one(config.shard_index, config.shard_count))
    return dataclasses.replace(value, checks=tuple(judge(judged, value)))
