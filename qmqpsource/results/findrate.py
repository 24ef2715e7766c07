"""--find-rate's steps: each judged, as a line of the step table, and as JSON.

A step is one judged open-loop run at the rate asked. Its verdict:

- held: every check held, no message failed that no check judged (checks.
  unjudged_failures, as a plain run's exit status has it), and it ended at least
  KEPT_UP of the messages the rate asked for (messages ended / --step-duration: the
  "achieved" rate);
- sessions: otherwise, if the sessions and not the server were the limit: more than
  BEHIND_SHARE of its messages started behind schedule (every session busy); the
  server kept its speed, its mean reply latency (from the connection up to the reply:
  the server's own time; connect and total latencies count from the scheduled start,
  so they include the wait for a free session) at most SLOWDOWN times what it was at
  the highest rate that held (when one did); and the latency checks on the total hold
  on the reply latency. Rate checks are left out of that second look: they measure
  what the sessions could send. With every session busy, a server's time per message
  cannot pass sessions / its capacity, so that last test alone would blame the
  sessions for a server at its limit: the comparison with its speed at a rate that
  held tells the two apart;
- failed: anything else.

The JSON field ``find_rate`` (beside the usual fields of a result) is
``{"rate": R | null, "stopped": why, "step_duration_s", "settle_s", "steps": [...]}``,
a step ``{"rate", "achieved", "ok", "verdict", "checks", "p50_ms", "p99_ms", "failed",
"behind_schedule"}``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qmqpsource.results.checks import Check, Verdict, judge, measure, unjudged_failures
from qmqpsource.results.document import parse_json
from qmqpsource.results.histogram import COUNTS_LEN, highest_equivalent
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.result import Result
from qmqpsource.source.ratesearch import MAX_STEPS, RateSearch
from qmqpsource.source.ratesearch import Verdict as StepVerdict
from qmqpsource.values import MAX_COUNT
from qmqpsource.wording import counted

__all__ = [
    "BEHIND_SHARE", "HEADER", "KEPT_UP", "SLOWDOWN", "Step", "answer_line", "answer_words",
    "baseline", "find_rate_in", "judge_step", "parse_find_rate", "server_time_us", "step_line",
    "table", "take_step", "verdict_words",
]

# More than this share of a step's messages behind schedule: the sessions may have been
# the limit. A few are late (by more than 1 ms) whenever the machine is busy.
BEHIND_SHARE = 0.02
# A server whose time per message grew by more than this, from the highest rate that
# held, slowed down under the load: the step failed, however busy the sessions were.
SLOWDOWN = 2.0
# A step held only if it ended at least this share of the messages its rate asked for.
KEPT_UP = 0.9
HEADER = "step   rate asked   achieved      p50 ms      p99 ms   failed  verdict"


@dataclass(frozen=True)
class Step:
    """One judged step: the rate asked, its result, the checks' verdicts, the verdict."""

    rate: float
    seconds: float  # the judged run's length: achieved = messages ended / seconds
    result: Result
    checks: tuple[Verdict, ...]
    verdict: StepVerdict

    @property
    def achieved(self) -> float:
        return self.result.attempted / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.verdict is StepVerdict.HELD

    def to_dict(self) -> dict[str, Any]:
        total = self.result.latency["total"]
        p50, p99 = total.percentiles([50.0, 99.0]) if total.count else (0.0, 0.0)
        return {
            "rate": self.rate,
            "achieved": round(self.achieved, 3),
            "ok": self.ok,
            "verdict": self.verdict.value,
            "checks": [verdict.to_dict() for verdict in self.checks],
            "p50_ms": round(p50 / 1000, 3),
            "p99_ms": round(p99 / 1000, 3),
            "failed": self.result.attempted - self.result.outcomes[Outcome.ACCEPTED],
            "behind_schedule": self.result.behind_schedule,
        }


def judge_step(
    checks: Sequence[Check], rate: float, seconds: float, result: Result,
    baseline: Step | None = None,
) -> Step:
    """The step at ``rate`` whose judged run gave ``result``, with its verdict;
    ``baseline``: the step at the highest rate that held so far, if any."""
    verdicts = tuple(judge(checks, result))
    kept_up = result.attempted >= KEPT_UP * rate * seconds
    behind = result.behind_schedule > BEHIND_SHARE * max(result.attempted, 1)
    if kept_up and _holds(checks, verdicts, result):
        verdict = StepVerdict.HELD
    elif (behind and _kept_speed(result, baseline) and _holds_on_server_time(checks, result)
          and _holds(checks, (), result)):
        verdict = StepVerdict.SESSIONS
    else:
        verdict = StepVerdict.FAILED
    return Step(rate, seconds, result, verdicts, verdict)


def take_step(
    search: RateSearch, steps: list[Step], checks: Sequence[Check], rate: float,
    seconds: float, result: Result,
) -> Step:
    """Judge the step the search asked for (against the highest rate that held so far),
    tell the search its verdict, and add it to ``steps``."""
    step = judge_step(checks, rate, seconds, result, baseline(steps, search.answer))
    search.record(step.verdict)
    steps.append(step)
    return step


def baseline(steps: Sequence[Step], answer: float | None) -> Step | None:
    """The step at the highest rate that held so far (``answer``), if any."""
    return next((s for s in steps if s.ok and s.rate == answer), None)


def server_time_us(result: Result) -> float:
    """The server's mean time per message: the reply latency's mean, in us."""
    latency = result.latency
    return latency["reply"].mean if "reply" in latency else latency["total"].mean


def _kept_speed(result: Result, baseline: Step | None) -> bool:
    if baseline is None:
        return True
    return server_time_us(result) <= SLOWDOWN * max(server_time_us(baseline.result), 1.0)


def _holds(checks: Sequence[Check], verdicts: Sequence[Verdict], result: Result) -> bool:
    return all(v.ok for v in verdicts) and unjudged_failures(checks, result.outcomes) == 0


def _holds_on_server_time(checks: Sequence[Check], result: Result) -> bool:
    """The latency checks on total time, met by the reply time; the others as they
    are, but rate checks."""
    split = "reply" in result.latency
    for check in checks:
        if check.kind == "rate":
            continue
        if split and check.kind == "latency" and check.latency == "total":
            check = dataclasses.replace(check, name=f"reply.{check.figure}")
        if not check.holds(measure(check, result)):
            return False
    return True


def _rate(value: float) -> str:
    return f"{value:.1f}"


def verdict_words(verdict: str, missed: Sequence[str], failed: int) -> str:
    """A step's verdict as the table words it (stderr, qmqp-report, the page)."""
    if verdict == "failed":
        why = missed or (["failed messages"] if failed else ["fell behind the rate"])
        return "FAILED: " + ", ".join(why)
    if verdict == "sessions":
        return "SESSIONS BUSY (not judged)"
    return verdict


def answer_words(rate: float | None, steps: int, stopped: str) -> str:
    """The search's answer, as its last line says it (without the program's name)."""
    if rate is None:
        return f"no rate met the checks ({counted(steps, 'step')}, stopped: {stopped})"
    return (f"highest rate that met the checks: {_rate(rate)} msg/s "
            f"({counted(steps, 'step')}, stopped: {stopped})")


def step_line(number: int, step: Mapping[str, Any]) -> str:
    """One line of the table, from a step's JSON dict (live, or read back from a file)."""
    verdict = verdict_words(
        str(step.get("verdict", "held" if step.get("ok") else "failed")),
        [str(c.get("check")) for c in step.get("checks", []) if not c.get("ok")],
        int(step.get("failed", 0)))
    return (f"{number:>4} {_rate(step['rate']):>12} {_rate(step['achieved']):>10} "
            f"{step.get('p50_ms', 0.0):>11.3f} {step.get('p99_ms', 0.0):>11.3f} "
            f"{step.get('failed', 0):>8}  {verdict}\n")


def answer_line(prog: str, find_rate: Mapping[str, Any]) -> str:
    rate = find_rate.get("rate")
    words = answer_words(rate, len(find_rate.get("steps", [])), find_rate.get("stopped", ""))
    return f"{prog}: {words}\n"


def table(prog: str, find_rate: Mapping[str, Any]) -> str:
    """The whole step table and the answer, as the search printed them."""
    steps = find_rate.get("steps", [])
    lines = [HEADER + "\n", *(step_line(n, s) for n, s in enumerate(steps, 1))]
    return "".join(lines) + answer_line(prog, find_rate)


def find_rate_in(data: bytes) -> dict[str, Any] | None:
    """The ``find_rate`` field of a result file's bytes (already read as a result, so
    JSON); None if it has none. Raises ValueError when it is malformed."""
    if b'"find_rate"' not in data:
        return None  # most results: no second parse
    return parse_find_rate(parse_json(data.decode("utf-8")))


def parse_find_rate(obj: Any) -> dict[str, Any] | None:
    """A result's ``find_rate`` field, checked enough to print and chart; None if it has
    none. Raises ValueError with one line when it is there but malformed, or holds what
    no search writes: more than MAX_STEPS steps, a latency beyond the histograms' range
    (a p99 of 1.7e308 ms broke the chart's log axis)."""
    if not isinstance(obj, dict) or "find_rate" not in obj:
        return None
    value = obj["find_rate"]
    if not isinstance(value, dict) or not isinstance(value.get("steps"), list):
        raise ValueError("find_rate: not an object with a list of steps")
    rate = value.get("rate")
    if rate is not None and not _number(rate):
        raise ValueError("find_rate.rate: not a number")
    if len(value["steps"]) > MAX_STEPS:
        raise ValueError(f"find_rate.steps: {len(value['steps'])} steps, more than the "
                         f"{MAX_STEPS} a search runs")
    for step in value["steps"]:
        if not (isinstance(step, dict) and _number(step.get("rate"))
                and _number(step.get("achieved")) and isinstance(step.get("checks", []), list)
                and all(isinstance(c, dict) for c in step.get("checks", []))):
            raise ValueError("find_rate.steps: a step without its rate and achieved rate")
        for key, top in (("p50_ms", _TOP_MS), ("p99_ms", _TOP_MS), ("failed", MAX_COUNT)):
            if key in step and not _number(step[key], top):
                raise ValueError(f"find_rate.steps: {key} is not a number from 0 to {top:g}")
    return value


# The largest latency a histogram holds, in ms: no step's p50 or p99 is larger.
_TOP_MS = highest_equivalent(COUNTS_LEN - 1) / 1000


def _number(value: Any, top: float = math.inf) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= top)
