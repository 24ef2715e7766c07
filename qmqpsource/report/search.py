"""The page's view of a --find-rate search: latency by rate, the step table, the answer.

Each run that is a --find-rate result has its own search (the searches of several files
do not merge: each chose its rates from its own verdicts), overlaid in one chart as the
other charts overlay runs: x is the rate asked, y the step's p50 and p99 of the total
latency on a log scale (a failed step's p99 of seconds would flatten the steps that held
to the axis), one marker per step whose shape is its verdict, and a rule at the answer. The
lines join the steps in order of rate, not in the order the search ran them (it doubles,
then bisects back): a curve of latency against load.
"""

from __future__ import annotations

from collections.abc import Sequence

from qmqpsource.report.charts import Chart
from qmqpsource.report.svg import Axis, Line, Rule, plot
from qmqpsource.report.view import RunView, Search, SearchStep
from qmqpsource.results.findrate import answer_words, verdict_words

__all__ = ["HEAD", "SHAPES", "answer", "search_chart", "step_rows", "verdict"]

TITLE = "Latency by rate: each step's p50 and p99"
# A step's verdict -> its marker's shape, and the legend's word for it.
SHAPES = {"held": ("filled", "held"), "failed": ("open", "failed"),
          "sessions": ("square", "sessions busy (not judged)")}
HEAD = ("step", "rate asked (msg/s)", "achieved (msg/s)", "p50 (ms)", "p99 (ms)", "failed",
        "verdict")


def _rate(value: float) -> str:
    return f"{value:.1f}"


def verdict(step: SearchStep) -> str:
    """As the step table on stderr words it."""
    return verdict_words(step.verdict, step.missed, step.failed)


def answer(search: Search) -> str:
    return answer_words(search.rate, len(search.steps), search.stopped)


def step_rows(search: Search) -> list[list[str]]:
    return [[str(s.number), _rate(s.rate), _rate(s.achieved), f"{s.p50_ms:.3f}",
             f"{s.p99_ms:.3f}", str(s.failed), verdict(s)] for s in search.steps]


def _tip(label: str, step: SearchStep) -> str:
    return (f"{label}: step {step.number}, {_rate(step.rate)} msg/s asked, "
            f"{_rate(step.achieved)} achieved: p50 {step.p50_ms:.3f} ms, p99 {step.p99_ms:.3f} ms, "
            f"{step.failed} failed; {verdict(step)}")


def _lines(n: int, run: RunView, search: Search) -> list[Line]:
    steps = sorted(search.steps, key=lambda s: (s.rate, s.number))
    lines = []
    for key in ("p50", "p99"):
        points = tuple((s.rate, s.p50_ms if key == "p50" else s.p99_ms) for s in steps)
        tips = tuple(_tip(run.label, s) for s in steps)
        marks = tuple(SHAPES.get(s.verdict, SHAPES["failed"])[0] for s in steps)
        lines.append(Line(n, key, f"{run.label}: {key}", points, tips, marks))
    return lines


def search_chart(runs: Sequence[RunView]) -> Chart | None:
    """The chart of every run's search; None when no run is a --find-rate result."""
    lines: list[Line] = []
    rules = []
    for n, run in enumerate(runs):
        if run.search is None:
            continue
        lines += _lines(n, run, run.search)
        if run.search.rate is not None:
            rules.append(Rule(run.search.rate, n, f"{run.label}: answer "
                                                  f"{_rate(run.search.rate)} msg/s"))
    if not any(run.search is not None for run in runs):
        return None
    keys = tuple(SHAPES.values())
    if not any(line.points for line in lines):
        return Chart("search", TITLE, None, (), "No steps in these searches.")
    svg = plot("search", TITLE, Axis("rate asked (msg/s)"),
               Axis("total latency (ms), log scale", log=True), lines, rules=rules)
    return Chart("search", TITLE, svg, tuple(lines), keys=keys)
