"""qmqp-source --find-rate: the highest --rate at which every --check holds.

The search (source/ratesearch.py) proposes each step's rate; a step is a short
settling run, then a judged open-loop run of --step-duration seconds
(findrate_steps.py); its verdict (results/findrate.py) goes back to the search. One
line per step on stderr as it ends, the answer last.

The JSON result (--json) is that of the judged run of the step at the answer (the
highest rate that held), judged by the checks; or, when no step held, of the first
step. Beside its usual fields, ``find_rate`` has the whole search.

Exit status: 0 when a rate held; 3 when none did (the first step failed, or its
sessions were the limit); 1 for a step that could not run; 130, 143 or 129 when a
signal stopped the search (the steps so far are reported, JSON included).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource.addresses import AddressError
from qmqpsource.cli import finish
from qmqpsource.cli.common import UsageFailure, fatal
from qmqpsource.cli.findrate_steps import InProcessSteps, StepError, StepRuns, WorkerSteps
from qmqpsource.results.checks import Check
from qmqpsource.results.findrate import (
    HEADER,
    Step,
    answer_line,
    baseline,
    step_line,
    take_step,
)
from qmqpsource.results.result import Result
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.ratesearch import RateSearch, settle_seconds
from qmqpsource.source.ratesearch import Verdict as StepVerdict

__all__ = ["refuse_options", "run_find_rate"]


def refuse_options(
    checks: Sequence[Check], *, messages: int | None, duration: float | None,
    shard: str | None, interval: float | None, counter: bool,
) -> None:
    """What --find-rate cannot go with, each in one line."""
    if not checks:
        raise UsageFailure("--find-rate needs at least one --check, such as "
                           "--check 'p99<200ms'")
    for given, option in ((messages is not None, "-m"), (duration is not None, "--duration")):
        if given:
            raise UsageFailure(f"--find-rate sets each step's length (--step-duration): "
                               f"not with {option}")
    if shard is not None:
        raise UsageFailure("--find-rate judges each step whole, on one host: not with "
                           "--shard (use --workers)")
    if interval is not None or counter:
        raise UsageFailure("--find-rate prints a line per step: not with --interval or -c")


def run_find_rate(
    whole: SourceConfig,
    *,
    workers: int,
    checks: Sequence[Check],
    quiet: bool,
    json_path: str | None,
    embedded_sink_args: Sequence[str] | None,
) -> int:
    """Search, print the steps and the answer, write the JSON; the exit status.

    ``whole`` is the run's config with --rate as the start rate and --step-duration as
    its duration.
    """
    assert whole.rate is not None and whole.duration is not None
    if workers > 1 and embedded_sink_args is not None:
        raise UsageFailure("--find-rate with --workers needs a target, not --embedded-sink")
    json_file = finish.open_json(json_path)  # now: a bad path fails before the search
    runs: StepRuns = (
        WorkerSteps(whole, workers) if workers > 1
        else InProcessSteps(whole, embedded_sink_args)
    )
    search = RateSearch(whole.rate)
    noted: list[int] = []
    with _noting_signals(noted):
        steps, last, signals = _search(search, runs, whole, checks, quiet=quiet, noted=noted)
    find_rate = {
        "rate": search.answer,
        "stopped": "interrupted" if signals else search.stop.value if search.stop else None,
        "step_duration_s": whole.duration,
        "settle_s": settle_seconds(whole.duration),
        "steps": [step.to_dict() for step in steps],
    }
    if not quiet:
        sys.stderr.write(answer_line(PROG, find_rate))
        sys.stderr.flush()
    if json_file is not None:
        extra: dict[str, Any] = {"find_rate": find_rate}
        if workers > 1:
            extra["workers"] = workers
        reported = _reported(steps, last, search.answer)
        if signals:
            reported = dataclasses.replace(reported, status="interrupted")
        finish.write_json(json_file, reported, extra)
    if signals:
        return finish.exit_status(signals[0])
    return 0 if search.answer is not None else 3


def _search(
    search: RateSearch, runs: StepRuns, whole: SourceConfig, checks: Sequence[Check],
    *, quiet: bool, noted: list[int],
) -> tuple[list[Step], Result | None, list[int]]:
    """Run the steps the search asks for: the judged steps, the last result (of a step
    cut short, if a signal came), and the stop signals received (during a step, or
    ``noted`` between two)."""
    assert whole.duration is not None
    seconds = whole.duration
    steps: list[Step] = []
    last: Result | None = None
    if not quiet:
        sys.stderr.write(HEADER + "\n")
    while (rate := search.next_rate()) is not None:
        if noted:
            return steps, last, list(noted)
        try:
            value, signals = runs.run(rate, seconds)
        except (AddressError, StepError) as exc:
            fatal(PROG, str(exc))
        last = value
        if signals:
            return steps, last, signals
        step = take_step(search, steps, checks, rate, seconds, value)
        if not quiet:
            sys.stderr.write(step_line(len(steps), step.to_dict()))
        if step.verdict is StepVerdict.SESSIONS:
            sys.stderr.write(_sessions_warning(step, whole))
        sys.stderr.flush()
    return steps, last, []


@contextlib.contextmanager
def _noting_signals(noted: list[int]) -> Iterator[None]:
    """Between the steps' trio loops, a stop signal is noted rather than fatal, and the
    search stops before its next step. Within a step, the step's own watcher has it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be caught in the main thread (tests run this in others)
        return

    def note(signum: int, frame: object) -> None:
        noted.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in finish.STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _sessions_warning(step: Step, whole: SourceConfig) -> str:
    behind = step.result.behind_schedule
    return (f"{PROG}: warning: at {step.rate:.1f} msg/s, {behind} of "
            f"{step.result.attempted} messages started behind schedule with all {whole.sessions} "
            "sessions busy: the sessions, not the server, were the limit; raise -s (or "
            "--workers) to search higher. The search stops here.\n")


def _reported(steps: Sequence[Step], last: Result | None, answer: float | None) -> Result:
    """The usual fields of the JSON: the step at the answer's, else the first step's
    (else, stopped before any step ended, the run that was cut short)."""
    chosen = baseline(steps, answer)
    if chosen is None and steps:
        chosen = steps[0]
    if chosen is None:
        assert last is not None
        return last
    return dataclasses.replace(chosen.result, checks=chosen.checks)
