"""What one qmqp-source command runs: this host's share of the run (--shard), in this
process or in --workers processes, each with its config, and whether the workers take
their messages from one budget.

Pure arithmetic on configs, no processes and no I/O: the command line decides from it,
and the tests pin it.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from qmqpsource.source.config import SourceConfig
from qmqpsource.source.shard import Shard
from qmqpsource.values import MAX_COUNT

__all__ = ["RunPlan", "plan_run", "share_of"]


class RunPlan(NamedTuple):  # not a dataclass: ~0.2 ms less at every start
    """The processes of a run, one config each; none when this host's share is empty."""

    configs: tuple[SourceConfig, ...]
    # Run as --workers, also when only one is left (--workers 4 -s 1).
    workers: bool = False
    # The messages that the workers take from one budget; None: each does its config's -m.
    budget: int | None = None


def share_of(whole: SourceConfig, shard: Shard) -> SourceConfig | None:
    """``shard``'s share of the ``whole`` run's -m, -s and --rate; None: no message in it.

    -m MAX_COUNT is a run without a count (--duration without -m): every share runs
    until the clock ends it.
    """
    messages = whole.messages if whole.messages == MAX_COUNT else shard.share(whole.messages)
    if messages == 0:
        return None
    return dataclasses.replace(
        whole,
        sessions=shard.share_at_least_one(whole.sessions),
        messages=messages,
        rate=shard.rate(whole.rate) if whole.rate is not None else None,
        shard_index=shard.index,
        shard_count=shard.count,
    )


def plan_run(whole: SourceConfig, shard: Shard, workers: int) -> RunPlan:
    """This host's ``shard`` of the ``whole`` run (shard 0/1), in ``workers`` processes."""
    this = share_of(whole, shard)
    if this is None:
        return RunPlan(())
    if workers <= 1:
        return RunPlan((this,))
    # -s is the run's concurrency: a worker has at least one session of it.
    workers = min(workers, this.sessions)
    if whole.rate is None and whole.messages != MAX_COUNT:
        # So many messages as fast as they go: one budget the workers take from, each
        # with its share of the sessions, numbering as this process would.
        workers = min(workers, this.messages)
        configs = tuple(
            dataclasses.replace(this, sessions=Shard(w, workers).share_at_least_one(this.sessions))
            for w in range(workers)
        )
        return RunPlan(configs, workers=True, budget=this.messages)
    # At a rate, or for a time: each worker is a finer shard, as hosts are with --shard.
    shares = [Shard(shard.index + shard.count * w, shard.count * workers) for w in range(workers)]
    configs = tuple(c for c in (share_of(whole, s) for s in shares) if c is not None)
    return RunPlan(configs, workers=True)
