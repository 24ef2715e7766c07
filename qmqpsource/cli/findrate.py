"""qmqp-source --find-rate: the highest --rate at which every --check holds.

The search is the library's (load/search.py); this prints it: one line per step on
stderr as it is judged, the answer last.

The JSON result (--json) is that of the judged run of the step at the answer (the
highest rate that held), judged by the checks; or, when no step held, of the first
step. Beside its usual fields, ``find_rate`` has the whole search.

Exit status: 0 when a rate held; 3 when none did (the first step failed, or its
sessions were the limit); 1 for a step that could not run; 130, 143 or 129 when a
signal stopped the search (the steps so far are reported, JSON included).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import partial

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource.cli import finish
from qmqpsource.cli.common import UsageFailure, fatal
from qmqpsource.cli.launch import Display, command_words, drive, forked_pool
from qmqpsource.errors import ConfigError, QmqpsourceError
from qmqpsource.load.control import LoadControl
from qmqpsource.load.run import plan_load
from qmqpsource.load.search import FoundRate, find_rate, whole_search
from qmqpsource.load.start import NOW, Start
from qmqpsource.load.workers import WorkerPool
from qmqpsource.results.checks import Check
from qmqpsource.results.findrate import HEADER, Step, answer_line, step_line
from qmqpsource.source.config import SourceConfig
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
    verbose: int = 0,
    json_path: str | None,
    embedded_sink_args: Sequence[str] | None,
    start: Start = NOW,
) -> int:
    """Search, print the steps and the answer, write the JSON; the exit status.

    ``whole`` is the run's config with --rate as the start rate and --step-duration as
    its duration.
    """
    assert whole.duration is not None
    try:
        plan = plan_load(whole_search(whole, whole.duration), workers)
    except ConfigError as exc:
        raise UsageFailure(_in_flags(str(exc))) from None
    signals: list[int] = []
    with forked_pool(plan) as pool:
        json_file = finish.open_json(json_path)  # now: a bad path fails before the search
        table = _Table(quiet, whole)
        body = partial(_search, whole, checks, pool or workers, embedded_sink_args, start,
                       table.step)
        try:
            found = drive(body, Display(quiet=True, verbose=verbose), signals)
        except QmqpsourceError as exc:
            fatal(PROG, command_words(exc))
    extra = {"find_rate": found.to_dict()}
    if not quiet:
        sys.stderr.write(answer_line(PROG, extra["find_rate"]))
        sys.stderr.flush()
    if json_file is not None:
        finish.write_json(json_file, found.result, extra)
    if signals:
        return finish.exit_status(signals[0])
    return 0 if found.rate is not None else 3


async def _search(whole: SourceConfig, checks: Sequence[Check], workers: int | WorkerPool,
                  embedded_sink_args: Sequence[str] | None, start: Start,
                  on_step: Callable[[Step], None], control: LoadControl) -> FoundRate:
    assert whole.duration is not None
    return await find_rate(whole, checks=checks, step_duration=whole.duration,
                           workers=workers, embedded_sink=embedded_sink_args,
                           control=control, on_step=on_step, start_at=start.at,
                           run_id=start.run_id)


class _Table:
    """The step table on stderr, a line per step as it is judged (its header with the
    first: a search that cannot run its first step says only why); the warning where
    the sessions, not the server, were the limit."""

    def __init__(self, quiet: bool, whole: SourceConfig) -> None:
        self.quiet = quiet
        self.whole = whole
        self.steps = 0

    def step(self, step: Step) -> None:
        self.steps += 1
        if not self.quiet:
            head = HEADER + "\n" if self.steps == 1 else ""
            sys.stderr.write(head + step_line(self.steps, step.to_dict()))
        if step.verdict is StepVerdict.SESSIONS:
            sys.stderr.write(_sessions_warning(step, self.whole))
        sys.stderr.flush()


def _in_flags(text: str) -> str:
    """A search's refusal in the command's words."""
    return text.replace("step_duration", "--step-duration")


def _sessions_warning(step: Step, whole: SourceConfig) -> str:
    behind = step.result.behind_schedule
    return (f"{PROG}: warning: at {step.rate:.1f} msg/s, {behind} of "
            f"{step.result.attempted} messages started behind schedule with all "
            f"{whole.sessions} sessions busy: the sessions, not the server, were the limit; "
            "raise -s (or --workers) to search higher. The search stops here.\n")
