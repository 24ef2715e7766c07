"""A rate search (--find-rate): the highest rate at which every check holds, in one trio
loop: the target (an embedded sink, if asked) and the worker pool stay up for all steps.

The search (source/ratesearch.py) proposes each step's rate; a step is a short settling
run, then a judged open-loop run of ``step_duration`` seconds; its verdict
(results/findrate.py) goes back to the search. ``on_step`` hears of each step as it is
judged. A step that could not connect (refused: nothing listens any more) ends the
search with a RunError: a dead server is no verdict. A stop (``control``) ends the
search before its next step, or cuts the step under way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qmqpsource import values
from qmqpsource.errors import ConfigError, RunError
from qmqpsource.load.control import LoadControl
from qmqpsource.load.plan import RunPlan
from qmqpsource.load.run import (
    check_config,
    parse_checks,
    plan_load,
    pool_for,
    preflight,
    run_plan,
    target_of,
)
from qmqpsource.load.start import start_of
from qmqpsource.load.workers import WorkerPool
from qmqpsource.results.checks import Check
from qmqpsource.results.findrate import Step, baseline, take_step
from qmqpsource.results.identity import Shards
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.result import Result
from qmqpsource.results.timeline import DEFAULT_INTERVAL
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.ratesearch import START_RATE, RateSearch, settle_seconds
from qmqpsource.source.request import RequestFactory
from qmqpsource.trio_required import require_trio
from qmqpsource.values import MAX_COUNT

__all__ = ["MIN_STEP_MESSAGES", "MIN_STEP_SECONDS", "FoundRate", "find_rate", "whole_search"]

# A step shorter than this, or one that asks for fewer messages, cannot be judged: its
# settling run would be a blink, its percentiles those of a handful of messages.
MIN_STEP_SECONDS = 0.5
MIN_STEP_MESSAGES = 10
# Outcomes that say nothing listens at the target: the server is gone, not slow.
_DEAD = (Outcome.REFUSED, Outcome.CONNECT_ERROR)


@dataclass(frozen=True)
class FoundRate:
    """What a search found: the highest rate that held (None: none did), why it stopped,
    its steps, and the result it reports (the judged run at the answer; else the first
    step's; else, stopped before any step ended, the run that was cut short)."""

    rate: float | None
    stopped: str
    steps: tuple[Step, ...]
    step_duration: float
    result: Result

    def to_dict(self) -> dict[str, Any]:
        """As the JSON field ``find_rate`` has it."""
        return {
            "rate": self.rate,
            "stopped": self.stopped,
            "step_duration_s": self.step_duration,
            "settle_s": settle_seconds(self.step_duration),
            "steps": [step.to_dict() for step in self.steps],
        }


def whole_search(config: SourceConfig, step_duration: float) -> SourceConfig:
    """The config every step runs, but for its rate and length: no count, failures
    counted and judged rather than fatal, from ``config.rate`` (START_RATE if None)."""
    start = config.rate if config.rate is not None else START_RATE
    step_duration = values.seconds("step_duration", step_duration)
    whole = dataclasses.replace(config, messages=MAX_COUNT, keep_going=True, rate=start,
                                duration=step_duration)
    if step_duration < MIN_STEP_SECONDS:
        raise ConfigError(f"step_duration must be at least {MIN_STEP_SECONDS} s to be "
                          f"judged, not {step_duration}", field="step_duration")
    if start * step_duration < MIN_STEP_MESSAGES:
        raise ConfigError(f"a step of {step_duration:g} s at {start:g} msg/s asks for "
                          f"{start * step_duration:g} messages, too few to judge: at least "
                          f"{MIN_STEP_MESSAGES} (raise the rate or the step's duration)",
                          field="rate")
    return whole


async def find_rate(
    config: SourceConfig,
    *,
    checks: Sequence[str | Check],
    step_duration: float = 10.0,
    workers: int | WorkerPool = 1,
    embedded_sink: Sequence[str] | None = None,
    control: LoadControl | None = None,
    on_step: Callable[[Step], object] | None = None,
    start_at: datetime | None = None,
    run_id: str | None = None,
) -> FoundRate:
    """The highest rate at which every check holds, from ``config.rate`` up (docs/find-rate.md:
    "Finding the rate a server takes"). ``config.messages`` and ``duration`` are not
    used; ``start_at`` and ``run_id`` are run_load's. Raises ConfigError without checks
    or for steps too short to judge, what run_load raises before a run, and RunError
    for a step that could not run."""
    require_trio("find_rate")
    check_config(config)
    judged = parse_checks(checks)
    if not judged:
        raise ConfigError("find_rate needs at least one check, such as 'p99<200ms'",
                          field="checks")
    if config.shard_count != 1:
        raise ConfigError("find_rate judges each step whole, on one host: shard_count must "
                          f"be 1, not {config.shard_count} (use workers)", field="shard_count")
    if on_step is not None and not callable(on_step):
        raise ConfigError(f"on_step must be a function of a Step, not {on_step!r}",
                          field="on_step")
    whole = whole_search(config, step_duration)
    start = start_of(start_at, run_id)
    asked = len(workers) if isinstance(workers, WorkerPool) else workers
    plan = plan_load(whole, asked)
    preflight(plan.configs[0])
    search = _Search(whole, plan, asked, judged, control, on_step)
    async with target_of(whole, embedded_sink) as target, pool_for(plan, workers) as pool:
        await start.wait(control)
        await search.run(target[0].address, pool)
    found = search.found()
    reported = dataclasses.replace(
        found.result, run_id=start.run_id_of(found.result.started_at, 1),
        shards=Shards.one(0, 1))
    return dataclasses.replace(found, result=reported)


class _Search:
    def __init__(self, whole: SourceConfig, plan: RunPlan, workers: int,
                 checks: Sequence[Check], control: LoadControl | None,
                 on_step: Callable[[Step], object] | None) -> None:
        assert whole.rate is not None and whole.duration is not None
        self.whole, self.plan, self.workers, self.checks = whole, plan, workers, checks
        self.control = control
        self.on_step = on_step
        self.seconds = whole.duration
        self.search = RateSearch(whole.rate)
        self.steps: list[Step] = []
        self.last: Result | None = None  # the last run, for a search stopped in its first
        self.requests = RequestFactory(whole) if not plan.workers else None

    @property
    def stopped(self) -> bool:
        return self.control is not None and self.control.stopped

    async def run(self, target: str, pool: WorkerPool | None) -> None:
        while not self.stopped and (rate := self.search.next_rate()) is not None:
            for seconds in (settle_seconds(self.seconds), self.seconds):
                value = self.last = await self._run(target, pool, rate, seconds)
                _refuse_dead_server(value, rate, target)
                if self.stopped:
                    return
            step = take_step(self.search, self.steps, self.checks, rate, self.seconds, value)
            if self.on_step is not None:
                self.on_step(step)

    async def _run(self, target: str, pool: WorkerPool | None, rate: float,
                   seconds: float) -> Result:
        config = dataclasses.replace(self.whole, rate=rate, duration=seconds)
        plan = plan_load(config, self.workers)
        value = await run_plan(plan, target, interval=DEFAULT_INTERVAL, pool=pool,
                               control=self.control, requests=self.requests)
        return dataclasses.replace(value, workers=len(plan.configs)) if plan.workers else value

    def found(self) -> FoundRate:
        search = self.search
        stopped = "interrupted" if self.stopped else search.stop.value if search.stop else ""
        return FoundRate(search.answer, stopped, tuple(self.steps), self.seconds,
                         self._reported())

    def _reported(self) -> Result:
        chosen = baseline(self.steps, self.search.answer) or (
            self.steps[0] if self.steps else None)
        if chosen is None:
            if self.last is None:
                raise RunError("the search was stopped before its first run began")
            return self.last
        value = dataclasses.replace(chosen.result, checks=chosen.checks)
        return dataclasses.replace(value, status="interrupted") if self.stopped else value


def _refuse_dead_server(value: Result, rate: float, target: str) -> None:
    refused, unreached = (value.outcomes[outcome] for outcome in _DEAD)
    if refused or unreached:
        why = ", ".join(text for count, text in ((refused, f"{refused} refused"),
                                                 (unreached, f"{unreached} could not connect"))
                        if count)
        raise RunError(f"at {rate:g} msg/s, {refused + unreached} of {value.attempted} "
                       f"messages found no server at {target} ({why}): a server that is "
                       "down is no verdict on a rate")
